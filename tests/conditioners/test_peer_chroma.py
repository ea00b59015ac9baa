"""AudioCraft's chroma (1.3.0 ``audiocraft/modules/chroma.py`` + ``ChromaStemConditioner``) as a
MusicGen-melody checkpoint saw it, computed here from its formula with torch and librosa only:
torchaudio's Spectrogram(power=2, center=True, normalized=True) is a reflect-padded STFT whose
power is divided by sum(window^2); then librosa's filter bank and an inf-norm with eps 1e-6."""

import numpy as np
import pytest
import torch

from cuecraft import WavCondition
from cuecraft.audio.chroma import chroma_filter_bank
from cuecraft.conditioners import ChromaStemConditioner
from cuecraft.config import build_stack
from cuecraft.errors import ConfigError
from tests.audio.synth import SCALE, melody

pytest.importorskip("librosa")
RATE = 8000
PEER = dict(pad_mode="reflect", normalized=True, silent_frames="c", pad_to_duration=False)


def peer_chroma(wav, rate, radix2_exp, argmax=False):
    n_fft = 2 ** radix2_exp
    if wav.shape[-1] < n_fft:  # AudioCraft pads a short (or null) waveform to n_fft, centred
        extra = n_fft - wav.shape[-1]
        wav = torch.nn.functional.pad(wav, (extra // 2, extra // 2 + extra % 2))
    window = torch.hann_window(n_fft)
    spec = torch.stft(wav, n_fft, n_fft // 4, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = spec.abs() ** 2 / window.pow(2).sum()
    raw = torch.einsum("cf,ft->ct", chroma_filter_bank(rate, n_fft), power)
    chroma = torch.nn.functional.normalize(raw, p=float("inf"), dim=-2, eps=1e-6).T  # [T, 12]
    if argmax:
        chroma = torch.nn.functional.one_hot(chroma.argmax(-1), 12).float()
    return chroma


def condition(**settings):
    return ChromaStemConditioner(output_dim=12, sample_rate=RATE, radix2_exp=10, duration=1.0, stems="none",
                                 **settings)


def test_reflect_padding_and_the_normalised_power_are_the_peers():
    tune = torch.from_numpy(melody(SCALE[:5], 0.2, RATE).astype(np.float32))  # 8000 samples
    peer = condition(**PEER).tokenize([WavCondition(tune, RATE)], train=True).features[0]
    expected = peer_chroma(tune, RATE, 10)
    assert peer.shape == expected.shape == (1 + 8000 // 256, 12)
    torch.testing.assert_close(peer, expected, rtol=1e-5, atol=1e-6)
    own = condition().tokenize([WavCondition(tune, RATE)], train=True).features[0]
    edges = (own - expected).abs().amax(dim=-1)  # zero padding moves the first and last frames
    assert edges[[0, 1, -2, -1]].min() > 1e-3 and edges[4:-4].max() < 1e-4


def test_silent_and_near_silent_frames_as_the_peer_makes_them():
    silence = torch.zeros(4000)
    quiet = 1e-5 * torch.from_numpy(melody(SCALE[:2], 0.25, RATE).astype(np.float32))
    peer = condition(**PEER, argmax=True).tokenize([WavCondition(silence, RATE)], train=True).features[0]
    assert torch.equal(peer, peer_chroma(silence, RATE, 10, argmax=True)) and peer[:, 0].eq(1).all()  # C
    own = condition(argmax=True).tokenize([WavCondition(silence, RATE)], train=True).features[0]
    assert torch.count_nonzero(own) == 0  # cuecraft: silence is silence
    near = condition(**PEER).tokenize([WavCondition(quiet, RATE)], train=True).features[0]
    torch.testing.assert_close(near, peer_chroma(quiet, RATE, 10), rtol=1e-5, atol=1e-6)
    assert near.max() < 0.5  # peak below eps: divided by eps, on the normalised power's scale


def test_without_looping_10_s_give_79_frames():
    tone = torch.sin(torch.arange(320000) * 2 * torch.pi * 440 / 32000)
    peer = ChromaStemConditioner(output_dim=12, duration=30.0, stems="none", match_len_on_eval=False, **PEER)
    own = ChromaStemConditioner(output_dim=12, duration=30.0, stems="none", match_len_on_eval=False)
    assert peer.tokenize([WavCondition(tone, 32000)]).features.shape == (1, 79, 12)
    assert own.tokenize([WavCondition(tone, 32000)]).features.shape == (1, 235, 12)  # padded to duration
    assert peer.tokenize([None]).mask.shape == (1, 5)  # a one-sample null wav, padded to n_fft


def test_audiocraft_reader_gives_the_peer_chroma():
    config = {"transformer_lm": {"dim": 8}, "fuser": {"prepend": ["self_wav"]},
              "conditioners": {"self_wav": {"model": "chroma_stem", "chroma_stem": {
                  "sample_rate": RATE, "n_chroma": 12, "radix2_exp": 10, "argmax": True,
                  "match_len_on_eval": False, "duration": 1.0}}}}
    chroma = build_stack({**config}, seed=0).provider.conditioners["self_wav"]
    assert (chroma.extractor.pad_mode, chroma.extractor.normalized, chroma.silent_frames,
            chroma.pad_to_duration) == ("reflect", True, "c", False)


EXACT = dict(PEER, null_melody="silence", batch_layout="padded")


def peer_loop(chroma, length):
    """AudioCraft's match_len_on_eval on a [B, T, N] batch: repeat ceil(length / T) times, cut."""
    return chroma.repeat(1, -(-length // chroma.shape[1]), 1)[:, :length]


def test_exact_inference_null_melody_is_the_projection_of_a_one_hot_c_unmasked():
    # MusicGen.generate: a None melody (and the CFG null, nullify_wav) is a zero wav of 1 sample,
    # length 0; its chroma (padded to n_fft) is silent, argmax makes each frame a C, the batch is
    # looped to chroma_len and, with _use_masking False, projected (Linear with bias) unmasked.
    exact = ChromaStemConditioner(output_dim=8, sample_rate=RATE, radix2_exp=10, duration=1.0, stems="none",
                                  argmax=True, **EXACT)
    assert exact.chroma_len == 32
    tokens = exact.tokenize([None, WavCondition(torch.zeros(0), RATE)])  # None and an empty wave
    peer_features = peer_loop(peer_chroma(torch.zeros(1), RATE, 10, argmax=True)[None], 32).expand(2, -1, -1)
    assert peer_features.shape == (2, 32, 12) and peer_features[..., 0].eq(1).all()
    assert torch.equal(tokens.features, peer_features) and tokens.mask.all()
    embedding, mask = exact(tokens)
    weight, bias = exact.proj_out.weight, exact.proj_out.bias
    torch.testing.assert_close(embedding, (weight[:, 0] + bias).expand(2, 32, 8), rtol=1e-5, atol=1e-6)
    assert mask.shape == (2, 32) and mask.all()
    # training (train=True) saw what dropout made: the masked null, zeros
    trained = exact.tokenize([None], train=True)
    assert torch.count_nonzero(trained.features) == 0 and not trained.mask.any() and trained.mask.shape == (1, 5)
    # cuecraft (and compat "inputs"): the same null at inference as in training, zeros, masked
    own = ChromaStemConditioner(output_dim=8, sample_rate=RATE, radix2_exp=10, duration=1.0, stems="none",
                                argmax=True, **PEER)
    own.load_state_dict(exact.state_dict())
    embedding, mask = own(own.tokenize([None]))
    assert torch.count_nonzero(embedding) == 0 and not mask.any()


def test_exact_loops_a_mixed_length_batch_with_its_zero_padding():
    long_tune = torch.from_numpy(melody(SCALE[:4], 0.125, RATE).astype(np.float32))  # 4000 samples
    short_tune = torch.from_numpy(melody(SCALE[4:6], 0.1, RATE).astype(np.float32))  # 1600 samples
    values = [WavCondition(long_tune, RATE), WavCondition(short_tune, RATE), None]
    make = lambda **kw: ChromaStemConditioner(output_dim=12, sample_rate=RATE, radix2_exp=10, duration=2.0,  # noqa: E731
                                              stems="none", **kw)
    exact = make(**EXACT)
    assert exact.chroma_len == 63
    # the peer: ConditionProvider._collate_wavs zero-pads to the longest wave, the chroma is taken
    # on that batch (16 frames each), the null wave is silent, and the [B, 16, 12] batch is looped
    padded = torch.stack([long_tune, torch.nn.functional.pad(short_tune, (0, 2400)), torch.zeros(4000)])
    expected = peer_loop(torch.stack([peer_chroma(w, RATE, 10) for w in padded]), 63)
    tokens = exact.tokenize(values)
    assert tokens.features.shape == (3, 63, 12) and tokens.mask.all()
    torch.testing.assert_close(tokens.features, expected, rtol=1e-5, atol=1e-6)
    assert torch.count_nonzero(tokens.features[1, 9:16]) == 0  # frames past the short item: its padding
    assert torch.count_nonzero(tokens.features[1, 16:20]) > 0
    # cuecraft's default (and compat "inputs"): each item looped on its own 7 frames, nulls masked
    own = make(**PEER).tokenize(values)
    own_short = peer_chroma(short_tune, RATE, 10)
    assert own_short.shape == (7, 12)
    torch.testing.assert_close(own.features[1], own_short.repeat(9, 1)[:63], rtol=1e-5, atol=1e-6)
    assert own.mask[:2].all() and not own.mask[2].any()
    assert (tokens.features[1, 7:16] - own.features[1, 7:16]).abs().amax() > 0.5  # padding vs the loop
    # in training the padded layout keeps each item's own frames of the padded batch's chroma
    trained = exact.tokenize(values, train=True)
    assert trained.mask.sum(-1).tolist() == [16, 7, 0]
    torch.testing.assert_close(trained.features[1, :7], expected[1, :7], rtol=1e-5, atol=1e-6)


def test_compat_exact_sets_the_inference_layout_and_bad_values_are_refused():
    config = {"transformer_lm": {"dim": 8}, "fuser": {"prepend": ["self_wav"]},
              "conditioners": {"self_wav": {"model": "chroma_stem", "chroma_stem": {
                  "sample_rate": RATE, "n_chroma": 12, "radix2_exp": 10, "argmax": True, "duration": 1.0}}}}
    inputs = build_stack(config, seed=0).provider.conditioners["self_wav"]
    exact = build_stack(config, seed=0, compat="exact").provider.conditioners["self_wav"]
    assert (inputs.null_melody, inputs.batch_layout) == ("null", "items")
    assert (exact.null_melody, exact.batch_layout) == ("silence", "padded")
    with pytest.raises(ConfigError) as error:
        condition(null_melody="c", batch_layout="batch")
    assert error.value.problems == ["null_melody: expected one of null, silence; got 'c'",
                                    "batch_layout: expected one of items, padded; got 'batch'"]
