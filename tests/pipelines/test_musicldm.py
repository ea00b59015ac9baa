"""The MusicLDM pipeline: parity with diffusers, conditioning through cuecraft, lengths, outputs."""

import numpy as np
import pytest
import torch

from cuecraft.errors import ConfigError
from cuecraft.pipelines import MusicLDMPipeline

PROMPT = "fast techno with synths"
FAST = dict(num_inference_steps=3, audio_length_in_s=0.032)  # 128 mel frames -> 512 samples


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("settings", [
    dict(guidance_scale=6.0),
    dict(guidance_scale=2.5, negative_prompt="slow piano ballad"),
    dict(guidance_scale=1.0),  # no guidance: no unconditional branch
    dict(guidance_scale=2.0, eta=1.0),  # stochastic DDIM draws from the generator every step
], ids=["guidance", "negative", "no-guidance", "eta-1"])
def test_waveform_equals_diffusers(pipe, diffusers_pipe, settings):
    ours = pipe(PROMPT, generator=seeded(), **FAST, **settings).audios
    theirs = diffusers_pipe(PROMPT, generator=seeded(), **FAST, **settings).audios
    assert ours.shape == theirs.shape == (1, 512)
    assert ours.std() > 0.01  # a real signal, so the tolerance below means something
    assert np.abs(ours - theirs).max() <= 1e-5


def test_parity_holds_for_another_scheduler_and_for_latents(pipe, diffusers_pipe):
    pipe.set_scheduler("dpm-solver++")
    diffusers_pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    ours = pipe(PROMPT, generator=seeded(3), output_type="latent", **FAST).audios
    theirs = diffusers_pipe(PROMPT, generator=seeded(3), output_type="latent", **FAST).audios
    assert ours.shape == theirs.shape == (1, 4, 64, 4)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0)


def test_prompt_goes_through_cuecraft_clap_conditioner(pipe, musicldm_components):
    clap, tokenizer = musicldm_components["text_encoder"], musicldm_components["tokenizer"]
    assert pipe.fuser.routing["global"] == ("prompt",)
    assert pipe.provider.conditioners["prompt"] is pipe.text_conditioner
    texts = [PROMPT, ""]
    with torch.no_grad():
        ours = pipe.encode_prompt(texts)
        tokens = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
        features = clap.get_text_features(tokens.input_ids, attention_mask=tokens.attention_mask)
        features = features if isinstance(features, torch.Tensor) else features.pooler_output
    assert ours.shape == (2, 32)
    assert torch.allclose(ours, features, atol=1e-6)
    # MusicLDM's unconditional token is CLAP's embedding of "", a unit vector, not cuecraft's zeros
    assert torch.allclose(ours[1].norm(), torch.tensor(1.0), atol=1e-5)


def test_negative_prompt_and_embeddings_are_interchangeable(pipe):
    with torch.no_grad():
        embeds = pipe.encode_prompt([PROMPT, "bass"])
        negatives = pipe.encode_prompt(["slow piano", "slow piano"])
    settings = dict(generator=seeded(), guidance_scale=8.0, **FAST)
    from_text = pipe([PROMPT, "bass"], negative_prompt="slow piano", **settings).audios
    settings["generator"] = seeded()
    from_embeds = pipe(prompt_embeds=embeds, negative_prompt_embeds=negatives, **settings).audios
    settings["generator"] = seeded()
    plain = pipe([PROMPT, "bass"], **settings).audios
    np.testing.assert_allclose(from_text, from_embeds, atol=1e-6, rtol=0)
    assert np.abs(from_text - plain).max() > 1e-3  # the negative prompt changes the result


@pytest.mark.parametrize("seconds", [0.0101, 0.016, 0.0203, 0.029, 0.04])
def test_output_has_exactly_the_requested_length(pipe, seconds):
    audios = pipe(PROMPT, audio_length_in_s=seconds, num_inference_steps=2, generator=seeded()).audios
    assert audios.shape == (1, round(seconds * 16000))
    assert np.abs(audios[0, -4:]).max() > 0  # trimmed from generated audio, not zero padding


def test_default_length_and_diffusers_short_output(pipe, diffusers_pipe):
    # Default: the UNet's sample_size (32 latent frames) -> 32 * 2 (VAE) * 4 (hop) = 256 samples.
    assert pipe(PROMPT, num_inference_steps=2, generator=seeded()).audios.shape == (1, 256)
    # 0.0101 s is 161.6 samples: diffusers truncates twice and returns 160; cuecraft rounds to 162.
    theirs = diffusers_pipe(PROMPT, audio_length_in_s=0.0101, num_inference_steps=2, generator=seeded()).audios
    assert theirs.shape == (1, 160)


def test_output_types(pipe):
    as_numpy = pipe(PROMPT, generator=seeded(), **FAST)
    as_torch = pipe(PROMPT, generator=seeded(), output_type="pt", **FAST)
    latents = pipe(PROMPT, generator=seeded(), output_type="latent", **FAST)
    assert isinstance(as_numpy.audios, np.ndarray) and as_numpy.audios.dtype == np.float32
    assert isinstance(as_torch.audios, torch.Tensor) and as_torch.audios.dtype == torch.float32
    np.testing.assert_array_equal(as_numpy.audios, as_torch.audios.numpy())
    assert latents.audios.shape == (1, 4, 64, 4)  # [B * N, C, frames / 2, mels / 2]
    decoded = pipe.vocode(pipe.decode(latents.audios))[:, :512]
    np.testing.assert_allclose(decoded.numpy(), as_numpy.audios, atol=1e-6, rtol=0)
    assert as_numpy.candidates is None and as_numpy.scores is None
    (audios,) = pipe(PROMPT, generator=seeded(), return_dict=False, **FAST)
    np.testing.assert_array_equal(audios, as_numpy.audios)


def test_clip_output_removes_nans_and_clips(pipe, monkeypatch):
    loud = torch.tensor([[np.nan, 3.0, -2.0, 0.25] * 128])

    monkeypatch.setattr(pipe, "vocode", lambda mel: loud.clone())
    raw = pipe(PROMPT, generator=seeded(), **FAST).audios
    clipped = pipe(PROMPT, generator=seeded(), clip_output=True, **FAST).audios
    assert np.isnan(raw).sum() == 128 and np.nanmax(raw) == 3.0
    np.testing.assert_array_equal(clipped[0, :4], [0.0, 1.0, -1.0, 0.25])


def test_fast_mode_is_opt_in_and_close(pipe):
    exact = pipe(PROMPT, generator=seeded(), **FAST).audios
    fast = pipe.set_fast_mode("bfloat16", force=True)(PROMPT, generator=seeded(), **FAST).audios
    assert fast.dtype == np.float32
    relative = np.linalg.norm(fast - exact) / np.linalg.norm(exact)
    assert 1e-4 < relative < 0.1  # bfloat16 rounding, not another waveform
    np.testing.assert_array_equal(pipe.set_fast_mode("float32")(PROMPT, generator=seeded(), **FAST).audios, exact)
    with pytest.raises(ConfigError, match="autocast_dtype: expected one of auto, float32, bfloat16, float16; got 'int8'"):
        pipe.set_fast_mode("int8")


def test_callbacks(pipe):
    seen, ends = [], []

    def on_step_end(pipeline, i, t, tensors):
        ends.append((i, int(t), sorted(tensors)))
        return {"latents": tensors["latents"] * 0} if i == 2 else tensors

    out = pipe(PROMPT, generator=seeded(), callback=lambda step, t, latents: seen.append(step), callback_steps=2,
               callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"],
               num_inference_steps=3, audio_length_in_s=0.032, output_type="latent")
    assert seen == [0, 2]
    assert [(i, names) for i, _, names in ends] == [(i, ["latents", "prompt_embeds"]) for i in range(3)]
    assert [t for _, t, _ in ends] == pipe.scheduler.timesteps.tolist()
    assert torch.count_nonzero(out.audios) == 0  # what the callback returned replaced the latents


def test_components_are_checked(musicldm_components):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, in_channels=4, out_channels=4,
                                down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2,
                                class_embed_type="simple_projection", projection_class_embeddings_input_dim=16)
    with pytest.raises(ConfigError, match="unet: expected a simple_projection class embedding of width 32 "
                                          r"\(CLAP's projection_dim\); got simple_projection of width 16"):
        MusicLDMPipeline(**{**musicldm_components, "unet": unet})
