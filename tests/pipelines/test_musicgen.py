"""MusicGen through cuecraft's conditioning: the tokens are those of transformers' ``generate``.

Tiny random models built in code (tests/pipelines/musicgen_models.py), saved in transformers'
layout and read back through ``MusicGenPipeline.from_pretrained``.
"""

from __future__ import annotations

import pytest
import torch

from cuecraft.attributes import WavCondition
from tests.pipelines.musicgen_models import (CHROMA, CODEBOOKS, HOP, SAMPLE_RATE, melody_wave, save, tiny_musicgen,
                                             tiny_musicgen_melody)

pytest.importorskip("transformers")

PROMPTS = ["warm piano ballad with synths", "techno"]  # two lengths: the shorter one is padded
FRAMES = 20
SECONDS = FRAMES * HOP / SAMPLE_RATE  # 0.4 s, 20 frames


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    from cuecraft.pipelines.musicgen import MusicGenPipeline

    folder = save(tmp_path_factory.mktemp("musicgen") / "model", *tiny_musicgen(seed=0))
    pipe = MusicGenPipeline.from_pretrained(folder)
    return pipe, pipe.model, pipe.tokenizer  # transformers' generate runs the very model cuecraft runs


@pytest.fixture(scope="module")
def melody_model(tmp_path_factory):
    from cuecraft.pipelines.musicgen import MusicGenPipeline

    folder = save(tmp_path_factory.mktemp("musicgen-melody") / "model", *tiny_musicgen_melody(seed=0))
    pipe = MusicGenPipeline.from_pretrained(folder)
    return pipe, pipe.model, pipe.tokenizer


def reference(model, **settings):
    """transformers' ``generate``: (the codes [M, K, F] it decodes, its waveforms [M, T])."""
    seen = {}
    decode = model.audio_encoder.decode

    def capture(codes, *args, **kwargs):
        seen["codes"] = codes[0]
        return decode(codes, *args, **kwargs)

    model.audio_encoder.decode = capture
    try:
        audio = model.generate(**settings)
    finally:
        del model.audio_encoder.decode
    return seen["codes"], audio[:, 0]


def test_greedy_tokens_and_waveforms_are_transformers(text_model):
    pipe, model, tokenizer = text_model
    codes, audio = reference(model, **tokenizer(PROMPTS, padding=True, return_tensors="pt"), do_sample=False,
                             guidance_scale=3.0, max_new_tokens=FRAMES + CODEBOOKS - 1)
    out = pipe(PROMPTS, seconds=SECONDS, top_k=1, guidance=3.0, output_type="pt")
    assert out.tokens.shape == (2, CODEBOOKS, FRAMES)
    assert torch.equal(out.tokens, codes)
    assert out.audio.shape == (2, FRAMES * HOP)
    torch.testing.assert_close(out.audio, audio, rtol=0, atol=1e-6)
    assert len(set(out.tokens.flatten().tolist())) > 10  # not a degenerate model


@pytest.mark.parametrize("settings", [
    dict(top_k=20, temperature=0.8, guidance=2.5),
    dict(top_k=0, top_p=0.9, guidance=3.0),
    dict(top_k=50, top_p=0.8, temperature=1.3, guidance=1.0),  # guidance 1: the conditional branch alone
], ids=["top-k", "top-p", "no-guidance"])
def test_sampled_tokens_are_transformers_for_the_same_seed(text_model, settings):
    pipe, model, tokenizer = text_model
    # Two candidates per prompt are the prompts repeated: transformers' num_return_sequences
    # repeats MusicGen's rows codebook by codebook, so its candidates mix codebooks.
    repeated = [p for p in PROMPTS for _ in range(2)]
    torch.manual_seed(7)
    codes, _ = reference(model, **tokenizer(repeated, padding=True, return_tensors="pt"), do_sample=True,
                         top_k=settings["top_k"], top_p=settings.get("top_p", 1.0),
                         temperature=settings.get("temperature", 1.0), guidance_scale=settings["guidance"],
                         max_new_tokens=FRAMES + CODEBOOKS - 1)
    out = pipe(PROMPTS, seconds=SECONDS, candidates=2, generator=torch.Generator().manual_seed(7), **settings)
    assert torch.equal(out.tokens, codes)
    other = pipe(PROMPTS, seconds=SECONDS, candidates=2, generator=torch.Generator().manual_seed(8), **settings)
    assert not torch.equal(other.tokens, codes)


def test_continuation_starts_with_the_clip_and_is_transformers(text_model):
    pipe, model, tokenizer = text_model
    clip = melody_wave(0.2, seed=3)  # 640 samples: 10 frames
    codes, audio = reference(model, **tokenizer(["techno piano"], return_tensors="pt"), input_values=clip[None, None],
                             do_sample=False, guidance_scale=3.0, max_new_tokens=15 + CODEBOOKS - 1)
    out = pipe("techno piano", audio_prompt=WavCondition(clip, SAMPLE_RATE), seconds=15 * HOP / SAMPLE_RATE, top_k=1,
               output_type="pt")
    prompt_codes = model.audio_encoder.encode(clip[None, None]).audio_codes[0]
    assert out.tokens.shape == (1, CODEBOOKS, 25)
    assert torch.equal(out.tokens[..., :10], prompt_codes)  # its first 0.2 s are the clip's tokens
    assert torch.equal(out.tokens, codes)
    assert out.audio.shape == (1, 640 + 15 * HOP)
    torch.testing.assert_close(out.audio, audio, rtol=0, atol=1e-6)


def test_seconds_are_exact_and_progress_is_per_token_step(text_model):
    pipe = text_model[0]
    steps = []
    out = pipe("techno", seconds=0.123, top_k=1, progress=lambda done, total: steps.append((done, total)))
    assert out.audio.shape == (1, round(0.123 * SAMPLE_RATE))  # 394 samples, from 7 frames
    frames = out.tokens.shape[-1]
    assert frames == 7 and steps == [(i, frames + CODEBOOKS - 1) for i in range(1, frames + CODEBOOKS)]
    assert out.options.seconds == 0.123 and set(out.timings) == {"conditioning", "tokens", "decode"}


def test_two_step_guidance_matches_batched_for_text(text_model):
    """MusicGen's null text is zeros whatever its padding, so separate passes give the same tokens."""
    pipe = text_model[0]
    batched = pipe(PROMPTS, seconds=SECONDS, top_k=1, guidance=3.0)
    two_step = pipe(PROMPTS, seconds=SECONDS, top_k=1, guidance=3.0, two_step_cfg=True)
    assert torch.equal(batched.tokens, two_step.tokens)
    negative = pipe(PROMPTS, seconds=SECONDS, top_k=1, guidance=3.0, negative_prompt="loud drums")
    assert not torch.equal(negative.tokens, batched.tokens)


def _chroma_features(pipe, melody):
    """The one-hot chroma [1, F, 12] of ``melody`` (not looped): what transformers' feature extractor gives."""
    conditioner = pipe.conditioning.provider.conditioners["melody"]
    raw = conditioner.item_features([melody])[0][None]
    return conditioner.one_hot(raw, torch.ones(raw.shape[:2], dtype=torch.bool))


@pytest.mark.parametrize("sample", [False, True], ids=["greedy", "sampled"])
def test_melody_tokens_are_transformers(melody_model, sample):
    pipe, model, tokenizer = melody_model
    melody = WavCondition(melody_wave(0.6), SAMPLE_RATE)  # 16 chroma frames, looped to 26
    features = _chroma_features(pipe, melody)
    assert features.shape == (1, 16, 12)
    settings = dict(top_k=10, temperature=0.9) if sample else dict(top_k=1)
    torch.manual_seed(3)
    codes, audio = reference(model, **tokenizer(["warm piano"], return_tensors="pt"), input_features=features,
                             do_sample=sample, guidance_scale=3.0, max_new_tokens=FRAMES + CODEBOOKS - 1,
                             **({"top_k": 10, "temperature": 0.9} if sample else {}))
    out = pipe("warm piano", melody=melody, seconds=SECONDS, guidance=3.0, generator=torch.Generator().manual_seed(3),
               output_type="pt", **settings)
    assert torch.equal(out.tokens, codes)
    torch.testing.assert_close(out.audio, audio, rtol=0, atol=1e-6)


def test_melody_changes_the_output_and_its_absence_is_transformers(melody_model):
    pipe, model, tokenizer = melody_model
    codes, _ = reference(model, **tokenizer(["warm piano"], return_tensors="pt"), do_sample=False,
                         guidance_scale=3.0, max_new_tokens=FRAMES + CODEBOOKS - 1)
    plain = pipe("warm piano", seconds=SECONDS, top_k=1)
    assert torch.equal(plain.tokens, codes)  # no melody: the chroma of silence, as transformers
    with_melody = pipe("warm piano", melody=WavCondition(melody_wave(0.6), SAMPLE_RATE), seconds=SECONDS, top_k=1)
    other_melody = pipe("warm piano", melody=WavCondition(melody_wave(0.6, seed=1).flip(0), SAMPLE_RATE),
                        seconds=SECONDS, top_k=1)
    assert (with_melody.tokens != plain.tokens).float().mean() > 0.2
    assert not torch.equal(with_melody.tokens, other_melody.tokens)


def test_melody_model_guidance_variants_run(melody_model):
    pipe = melody_model[0]
    melody = WavCondition(melody_wave(0.6), SAMPLE_RATE)
    base = pipe("warm piano", melody=melody, seconds=0.2, top_k=1).tokens
    double = pipe("warm piano", melody=melody, seconds=0.2, top_k=1, guidance_text=2.0).tokens
    two_step = pipe("warm piano", melody=melody, seconds=0.2, top_k=1, two_step_cfg=True, guidance_text=2.0).tokens
    assert double.shape == two_step.shape == base.shape == (1, CODEBOOKS, 10)
    assert not torch.equal(double, base)
    clip = WavCondition(melody_wave(0.2, seed=2), SAMPLE_RATE)
    continued = pipe("warm piano", melody=melody, audio_prompt=clip, seconds=0.2, top_k=1)
    assert continued.audio.shape == (1, 640 + 640)
    assert torch.equal(continued.tokens[..., :10], pipe.model.audio_encoder.encode(clip.wav[None, None]).audio_codes[0])


def test_melody_is_read_by_cuecraft_chroma_with_audiocraft_settings(melody_model):
    pipe = melody_model[0]
    chroma = pipe.conditioning.provider.conditioners["melody"]
    assert (chroma.sample_rate, chroma.extractor.n_fft, chroma.chroma_len) == (3200, 512, CHROMA["chroma_length"])
    assert (chroma.extractor.pad_mode, chroma.extractor.normalized, chroma.argmax, chroma.null_melody) == \
        ("reflect", True, True, "silence")
    assert chroma.proj_out is pipe.model.audio_enc_to_dec_proj
    assert pipe.conditioning.provider.conditioners["prompt"].proj_out is pipe.model.enc_to_dec_proj


def test_every_bad_argument_is_reported_at_once(melody_model):
    from cuecraft.errors import GenerationInputError

    pipe = melody_model[0]
    melody = WavCondition(melody_wave(0.6), SAMPLE_RATE)
    with pytest.raises(GenerationInputError) as caught:
        pipe(["a", "b"], negative_prompt=["x"], melody=[melody, melody, None], seconds=float("nan"), guidance=-1,
             guidance_text=2.0, two_step_cfg="yes", top_k=2.5, top_p=1.5, temperature=-0.1, candidates=0,
             generator="seed", progress=3)
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "negative_prompt", "melody", "seconds", "guidance", "guidance_text", "two_step_cfg", "top_k", "top_p",
        "temperature", "candidates", "generator", "progress"]
    with pytest.raises(GenerationInputError, match="give a melody for every prompt"):
        pipe("a", guidance_text=2.0, seconds=0.1)
    with pytest.raises(GenerationInputError, match="a batch continues clips of one length"):
        pipe(["a", "b"], audio_prompt=[WavCondition(melody_wave(0.2), SAMPLE_RATE), None], seconds=0.1)
