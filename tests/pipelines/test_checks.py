"""Every problem ``check_inputs`` reports, with its message; all problems reported together."""

import re

import pytest
import torch

from cuecraft.errors import GenerationInputError

E = torch.zeros(2, 32)  # two CLAP text embeddings (D = 32)

CASES = [
    (dict(prompt="a", prompt_embeds=E), "prompt, prompt_embeds: give one of them, not both"),
    (dict(prompt=None), "prompt: give a prompt (a str or a list of str), or prompt_embeds"),
    (dict(prompt=3), "prompt: expected a str or a non-empty list of str; got int 3"),
    (dict(prompt=[]), "prompt: expected a str or a non-empty list of str; got list []"),
    (dict(prompt=["a", None]), "prompt: expected a str or a non-empty list of str; got list ['a', None]"),
    (dict(prompt=None, prompt_embeds=torch.zeros(2, 16)),
     "prompt_embeds: expected a tensor [B, 32] (CLAP text embeddings); got (2, 16)"),
    (dict(prompt=None, prompt_embeds=torch.zeros(2, 1, 32)),
     "prompt_embeds: expected a tensor [B, 32] (CLAP text embeddings); got (2, 1, 32)"),
    (dict(negative_prompt="b", negative_prompt_embeds=E),
     "negative_prompt, negative_prompt_embeds: give one of them, not both"),
    (dict(negative_prompt=5), "negative_prompt: expected a str or a list of str; got int 5"),
    (dict(prompt=["a", "b"], negative_prompt=["c"]),
     "negative_prompt: 1 negative prompt for 2 prompts; give one per prompt, or one str for all"),
    (dict(prompt=["a"], negative_prompt_embeds=E),
     "negative_prompt_embeds: expected a tensor [1, 32], one row per prompt; got (2, 32)"),
    (dict(audio_length_in_s=0.00001),
     "audio_length_in_s: expected a number of seconds long enough for one sample (>= 3.13e-05 s at 16000 Hz); "
     "got float 1e-05"),
    (dict(audio_length_in_s=float("nan")), "audio_length_in_s: expected a number of seconds"),
    (dict(audio_length_in_s="10"), "audio_length_in_s: expected a number of seconds"),
    (dict(num_inference_steps=0), "num_inference_steps: expected an int >= 1; got int 0"),
    (dict(num_inference_steps=2.5), "num_inference_steps: expected an int >= 1; got float 2.5"),
    (dict(guidance_scale=float("inf")), "guidance_scale: expected a finite number; got float inf"),
    (dict(guidance_scale=True), "guidance_scale: expected a finite number; got bool True"),
    (dict(num_waveforms_per_prompt=0), "num_waveforms_per_prompt: expected an int >= 1; got int 0"),
    (dict(num_waveforms_per_prompt=2, num_waveforms_to_keep=3),
     "num_waveforms_to_keep: expected an int in [1, 2] (num_waveforms_per_prompt); got int 3"),
    (dict(num_waveforms_to_keep=0), "num_waveforms_to_keep: expected an int in [1, 1]"),
    (dict(eta=-0.5), "eta: expected a number >= 0; got float -0.5"),
    (dict(num_waveforms_per_prompt=2, num_waveforms_to_keep=1, output_type="latent"),
     "output_type: 'latent' returns latents before decoding, so candidates cannot be ranked; "
     "set num_waveforms_to_keep=2 (all candidates) or decode"),
    (dict(generator=[torch.Generator()] * 3, num_waveforms_per_prompt=2),
     "generator: 3 generators for 2 waveforms (1 prompt x 2); give one per waveform, or a single generator"),
    (dict(generator=[1, 2]), "generator: expected torch.Generator objects; got list [1, 2]"),
    (dict(generator=7), "generator: expected a torch.Generator, a list of them, or None; got int 7"),
    (dict(latents=torch.zeros(1, 4, 8, 4)),
     "latents: expected a tensor of shape (1, 4, 32, 4) [B * N, C, H, W] for this length and batch; got (1, 4, 8, 4)"),
    (dict(callback=3), "callback: expected a callable or None; got int 3"),
    (dict(callback_steps=0), "callback_steps: expected an int >= 1; got int 0"),
    (dict(callback_on_step_end="x"), "callback_on_step_end: expected a callable or None; got str 'x'"),
    (dict(callback_on_step_end_tensor_inputs=["noise"]),
     "callback_on_step_end_tensor_inputs: expected a list drawn from ['latents', 'prompt_embeds']; got list ['noise']"),
    (dict(cross_attention_kwargs=[1]), "cross_attention_kwargs: expected a dict or None; got list [1]"),
    (dict(output_type="wav"), "output_type: expected one of np, pt, latent; got str 'wav'"),
    (dict(return_dict=1), "return_dict: expected True or False; got int 1"),
    (dict(clip_output="yes"), "clip_output: expected True or False; got str 'yes'"),
]


@pytest.mark.parametrize("arguments, message", CASES, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(CASES)])
def test_each_problem_is_reported(pipe, arguments, message):
    call = {"prompt": "fast techno", "num_inference_steps": 1, "audio_length_in_s": 0.016, **arguments}
    with pytest.raises(GenerationInputError) as error:
        pipe(**call)
    assert len(error.value.problems) == 1, error.value.problems
    assert error.value.problems[0].startswith(message)


def test_ranking_without_a_feature_extractor_is_reported(musicldm_components):
    from cuecraft.pipelines import MusicLDMPipeline

    pipe = MusicLDMPipeline(**{**musicldm_components, "feature_extractor": None})
    with pytest.raises(GenerationInputError, match=re.escape("num_waveforms_per_prompt: ranking several waveforms per "
                                                    "prompt needs the pipeline's feature_extractor")):
        pipe("fast techno", num_waveforms_per_prompt=2, num_inference_steps=1, audio_length_in_s=0.016)
    assert pipe("fast techno", num_inference_steps=1, audio_length_in_s=0.016).audios.shape == (1, 256)


def test_all_problems_come_together(pipe):
    with pytest.raises(GenerationInputError) as error:
        pipe(prompt=3, num_inference_steps=0, guidance_scale=float("nan"), output_type="wav")
    assert [p.split(":")[0] for p in error.value.problems] == [
        "prompt", "num_inference_steps", "guidance_scale", "output_type"]
    assert str(error.value).startswith("invalid generation arguments (4 problems):")
