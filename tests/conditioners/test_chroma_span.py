"""chroma_stem separates only the span it keeps (the first ``duration`` seconds plus a context
margin) outside training, with the frames the whole waveform gives; with a cache, or in
training, or with demucs, it still takes the whole waveform."""

import numpy as np
import pytest
import torch

from cuecraft import WavCondition
from cuecraft.audio.stems import HPSSStems, NoStems
from cuecraft.conditioners import ChromaStemConditioner
from tests.audio.synth import SCALE, drums, melody

RATE = 8000


def song(seconds, rate=RATE):
    """A C-major scale looped over a drum loop: harmonic and percussive parts everywhere."""
    notes = melody(SCALE, 0.25, rate)
    tune = np.resize(notes, int(seconds * rate))
    return torch.from_numpy(0.5 * tune + 0.5 * drums(tune.shape[0], rate)).float()


def recording(conditioner, monkeypatch):
    """The lengths of the waveforms the stem backend is handed."""
    seen, backend = [], conditioner.stem_backend
    original = type(backend).__call__

    def recorded(self, wav, sample_rate):
        seen.append(wav.shape[-1])
        return original(self, wav, sample_rate)

    monkeypatch.setattr(type(backend), "__call__", recorded)
    return seen


@pytest.mark.parametrize("rate", [RATE, 16000])
def test_a_long_file_is_separated_for_its_used_span_only(monkeypatch, rate):
    conditioner = ChromaStemConditioner(output_dim=12, sample_rate=RATE, radix2_exp=9, duration=2.0).eval()
    value = WavCondition(song(40.0, rate), rate)
    whole = conditioner.compute_features([conditioner.prepare(value)])[0][: conditioner.chroma_len]
    seen = recording(conditioner, monkeypatch)
    tokens = conditioner.tokenize([value])
    context = HPSSStems().context_samples(RATE)
    assert context == 2 * 512 + (13 // 2 + 1) * 128  # n_fft 512, hop 128, a 13-frame harmonic kernel
    needed = (conditioner.chroma_len - 1) * 128 + 512 + context + (RATE // 10 if rate != RATE else 0)  # 0.1 s to resample
    assert seen == [pytest.approx(needed, abs=2)] and seen[0] < 3 * RATE  # not 40 s
    assert tokens.features.shape == (1, conditioner.chroma_len, 12) and tokens.mask.all()
    torch.testing.assert_close(tokens.features[0], whole, atol=1e-4, rtol=1e-4)


def test_training_and_the_cache_still_take_the_whole_waveform(tmp_path, monkeypatch):
    value = WavCondition(song(8.0), RATE)
    conditioner = ChromaStemConditioner(output_dim=12, sample_rate=RATE, radix2_exp=9, duration=2.0)
    seen = recording(conditioner, monkeypatch)
    conditioner.tokenize([value], train=True)
    cached = ChromaStemConditioner(output_dim=12, sample_rate=RATE, radix2_exp=9, duration=2.0,
                                   cache_path=str(tmp_path / "cache"))
    cached.tokenize([value])
    assert seen == [8 * RATE, 8 * RATE]


def test_short_waveforms_and_the_none_backend():
    conditioner = ChromaStemConditioner(output_dim=12, sample_rate=RATE, radix2_exp=9, duration=2.0, stems="none")
    short = WavCondition(song(1.0), RATE)
    assert conditioner.used_span(short) is short  # nothing to cut: looped to 2 s by fit_length
    assert NoStems().context_samples(RATE) == 0
    long = WavCondition(song(30.0), RATE)
    cut = conditioner.used_span(long)
    assert cut.length == (conditioner.chroma_len - 1) * 128 + 512
    whole = conditioner.compute_features([conditioner.prepare(long)])[0][: conditioner.chroma_len]
    torch.testing.assert_close(conditioner.tokenize([long]).features[0], whole)
    assert conditioner.used_span(None) is None
