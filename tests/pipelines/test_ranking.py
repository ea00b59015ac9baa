"""CLAP ranking: each prompt among its own candidates only, with a generator-seeded crop."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cuecraft.pipelines import rank_candidates
from cuecraft.pipelines.ranking import clap_audio_embeddings, crop_starts

PROMPTS = ["fast techno with synths", "slow piano ballad", "warm jazz guitar"]


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_a_prompt_never_gets_another_prompts_candidate():
    text = torch.eye(2, 4)  # prompt 0 along axis 0, prompt 1 along axis 1
    audio = torch.tensor([[1.0, 1.0, 0, 0],   # prompt 0's candidates; this one is the best match for both
                          [1.0, 0.0, 0, 0],
                          [0.2, 0.1, 1, 0],   # prompt 1's candidates, both poor
                          [0.1, 0.3, 1, 0]])
    ranking = rank_candidates(text, audio, keep=2)
    assert ranking.indices.tolist() == [[1, 0], [3, 2]]
    expected = F.normalize(audio, dim=-1) @ text.T  # cosine similarity [4, 2]
    torch.testing.assert_close(ranking.scores, torch.stack([expected[[1, 0], 0], expected[[3, 2], 1]]))
    # diffusers' score_waveforms ranks prompt 1 against the whole batch and picks candidate 0 (prompt 0's)
    assert (F.normalize(audio, dim=-1) @ text[1]).argmax().item() == 0


def test_ties_keep_the_earlier_candidate():
    ranking = rank_candidates(torch.ones(1, 3), torch.ones(3, 3), keep=3)
    assert ranking.indices.tolist() == [[0, 1, 2]]


def test_pipeline_ranks_each_prompts_own_candidates(pipe, musicldm_components):
    settings = dict(num_inference_steps=2, audio_length_in_s=0.016, num_waveforms_per_prompt=3)
    ranked = pipe(PROMPTS, generator=seeded(), output_type="pt", num_waveforms_to_keep=3, **settings)
    kept = pipe(PROMPTS, generator=seeded(), output_type="pt", num_waveforms_to_keep=2, **settings)
    latents = pipe(PROMPTS, generator=seeded(), output_type="latent", num_waveforms_to_keep=3, **settings).audios
    generated = pipe.vocode(pipe.decode(latents))[:, :256]  # the 9 candidates, unranked

    assert ranked.audios.shape == (9, 256) and kept.audios.shape == (6, 256)
    for b in range(3):  # candidates index each prompt's own 3 (rows 3b .. 3b + 2 of the batch)
        assert sorted(ranked.candidates[b].tolist()) == [0, 1, 2]
    assert torch.all(ranked.scores[:, :-1] >= ranked.scores[:, 1:])
    rows = ranked.candidates + 3 * torch.arange(3).unsqueeze(1)
    torch.testing.assert_close(ranked.audios, generated[rows.reshape(-1)], atol=1e-6, rtol=0)
    assert kept.candidates.tolist() == ranked.candidates[:, :2].tolist()
    torch.testing.assert_close(kept.audios, ranked.audios.view(3, 3, 256)[:, :2].reshape(6, 256))

    # The scores are CLAP's cosine similarity, computed here with transformers' own calls. The
    # audio (256 samples at 16 kHz -> 128 at 8 kHz) fits CLAP's 1 s window, so nothing is cropped.
    import librosa

    clap, tokenizer = musicldm_components["text_encoder"], musicldm_components["tokenizer"]
    extractor = musicldm_components["feature_extractor"]
    audio = librosa.resample(generated.numpy(), orig_sr=16000, target_sr=8000, axis=-1)
    with torch.no_grad():
        features = extractor(list(audio), sampling_rate=8000, return_tensors="pt")
        audio_embeds = clap.get_audio_features(input_features=features["input_features"])
        tokens = tokenizer(PROMPTS, padding=True, return_tensors="pt")
        text_embeds = clap.get_text_features(tokens.input_ids, attention_mask=tokens.attention_mask)
    unwrap = lambda out: out if isinstance(out, torch.Tensor) else out.pooler_output  # noqa: E731 (transformers 4/5)
    similarity = (unwrap(text_embeds).unsqueeze(1) * unwrap(audio_embeds).view(3, 3, -1)).sum(-1)  # [B, N]
    expected = similarity.gather(1, ranked.candidates)  # each prompt's own candidate numbers
    torch.testing.assert_close(ranked.scores, expected, atol=1e-5, rtol=0)


def test_crop_starts_come_from_the_generator():
    assert crop_starts(100, 40, 3, seeded(5)) == torch.randint(0, 61, (3,), generator=seeded(5)).tolist()
    generator = seeded(5)
    state = generator.get_state()
    assert crop_starts(40, 40, 3, generator) == [0, 0, 0]
    assert torch.equal(generator.get_state(), state)  # nothing to crop: no draw
    per_waveform = crop_starts(100, 40, 2, [seeded(1), seeded(2)])
    assert per_waveform == [crop_starts(100, 40, 1, seeded(1))[0], crop_starts(100, 40, 1, seeded(2))[0]]


def test_long_audio_crop_is_reproducible_and_ignores_numpy(musicldm_components):
    clap, extractor = musicldm_components["text_encoder"], musicldm_components["feature_extractor"]
    time = torch.arange(3 * 16000) / 16000  # 3 s at 16 kHz; CLAP's window is 1 s
    waveforms = torch.stack([torch.sin(2 * torch.pi * 220 * time) * time, torch.randn(3 * 16000, generator=seeded(9))])

    def embed(seed, numpy_seed):
        np.random.seed(numpy_seed)
        with torch.no_grad():
            return clap_audio_embeddings(clap, extractor, waveforms, 16000, seeded(seed))

    first = embed(0, numpy_seed=1)
    assert first.shape == (2, 32)
    torch.testing.assert_close(first.norm(dim=-1), torch.ones(2))
    assert torch.equal(first, embed(0, numpy_seed=2))  # the same generator seed: the same crops
    assert not torch.allclose(first, embed(1, numpy_seed=1))  # another seed: other crops


@pytest.mark.parametrize("keep", [1, 2])
def test_ranked_generation_is_reproducible(pipe, keep):
    settings = dict(num_inference_steps=2, audio_length_in_s=0.016, num_waveforms_per_prompt=2,
                    num_waveforms_to_keep=keep)
    first = pipe(PROMPTS[:2], generator=seeded(4), **settings)
    second = pipe(PROMPTS[:2], generator=seeded(4), **settings)
    np.testing.assert_array_equal(first.audios, second.audios)
    assert torch.equal(first.candidates, second.candidates)
