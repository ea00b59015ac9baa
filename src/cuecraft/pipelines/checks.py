"""``check_inputs`` of the MusicLDM pipeline: every argument of a call, all problems at once.

Notation: B prompts, N waveforms per prompt, D CLAP width, C latent channels, H latent frames,
W latent mel bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from cuecraft._numbers import is_finite_number
from cuecraft.errors import GenerationInputError

OUTPUT_TYPES = ("np", "pt", "latent")
CALLBACK_TENSOR_INPUTS = ("latents", "prompt_embeds")


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:57] + '...' if len(text) > 60 else text}"


def _positive_int(name: str, value: Any, minimum: int = 1) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return [f"{name}: expected an int >= {minimum}; got {_describe(value)}"]
    return []


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


_finite = is_finite_number


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(v, str) for v in value)


def batch_size(prompt: Any, prompt_embeds: Any) -> int:
    """B: the number of prompts (or rows of ``prompt_embeds``). Call after ``check_inputs``."""
    if isinstance(prompt, str):
        return 1
    return len(prompt) if prompt is not None else prompt_embeds.shape[0]


def check_inputs(*, prompt: Any, negative_prompt: Any, prompt_embeds: Any, negative_prompt_embeds: Any,
                 audio_length_in_s: Any, sample_rate: int, num_inference_steps: Any, guidance_scale: Any,
                 num_waveforms_per_prompt: Any, num_waveforms_to_keep: Any, eta: Any, generator: Any,
                 latents: Any, latent_shape: tuple[int, int, int] | None, callback: Any, callback_steps: Any,
                 callback_on_step_end: Any, callback_on_step_end_tensor_inputs: Any, cross_attention_kwargs: Any,
                 output_type: Any, return_dict: Any, clip_output: Any, embed_dim: int,
                 can_rank: bool) -> None:
    """Raise GenerationInputError listing every problem with a call's arguments.

    ``latent_shape`` is (C, H, W) for the requested length (None when the length itself is
    invalid); ``embed_dim`` is D; ``can_rank`` says whether a feature extractor is present.
    """
    problems: list[str] = []
    batch = None
    if prompt is not None and prompt_embeds is not None:
        problems.append("prompt, prompt_embeds: give one of them, not both")
    elif prompt is None and prompt_embeds is None:
        problems.append("prompt: give a prompt (a str or a list of str), or prompt_embeds")
    elif prompt is not None and not (isinstance(prompt, str) or _is_text_list(prompt)):
        problems.append(f"prompt: expected a str or a non-empty list of str; got {_describe(prompt)}")
    elif prompt is not None:
        batch = batch_size(prompt, None)
    elif not (isinstance(prompt_embeds, torch.Tensor) and prompt_embeds.dim() == 2
              and prompt_embeds.shape[0] > 0 and prompt_embeds.shape[1] == embed_dim):
        shape = tuple(prompt_embeds.shape) if isinstance(prompt_embeds, torch.Tensor) else _describe(prompt_embeds)
        problems.append(f"prompt_embeds: expected a tensor [B, {embed_dim}] (CLAP text embeddings); got {shape}")
    else:
        batch = prompt_embeds.shape[0]

    if negative_prompt is not None and negative_prompt_embeds is not None:
        problems.append("negative_prompt, negative_prompt_embeds: give one of them, not both")
    elif negative_prompt is not None:
        if not (isinstance(negative_prompt, str) or _is_text_list(negative_prompt)):
            problems.append(f"negative_prompt: expected a str or a list of str; got {_describe(negative_prompt)}")
        elif isinstance(negative_prompt, list) and batch is not None and len(negative_prompt) != batch:
            problems.append(f"negative_prompt: {_count(len(negative_prompt), 'negative prompt')} for "
                            f"{_count(batch, 'prompt')}; "
                            "give one per prompt, or one str for all")
    elif negative_prompt_embeds is not None and batch is not None:
        if not (isinstance(negative_prompt_embeds, torch.Tensor)
                and tuple(negative_prompt_embeds.shape) == (batch, embed_dim)):
            shape = (tuple(negative_prompt_embeds.shape) if isinstance(negative_prompt_embeds, torch.Tensor)
                     else _describe(negative_prompt_embeds))
            problems.append(f"negative_prompt_embeds: expected a tensor [{batch}, {embed_dim}], one row per "
                            f"prompt; got {shape}")

    if audio_length_in_s is not None and not (_finite(audio_length_in_s)
                                              and round(audio_length_in_s * sample_rate) >= 1):
        problems.append(f"audio_length_in_s: expected a number of seconds long enough for one sample "
                        f"(>= {0.5 / sample_rate:.3g} s at {sample_rate} Hz); got {_describe(audio_length_in_s)}")
    problems += _positive_int("num_inference_steps", num_inference_steps)
    if not _finite(guidance_scale):
        problems.append(f"guidance_scale: expected a finite number; got {_describe(guidance_scale)}")
    count_problems = _positive_int("num_waveforms_per_prompt", num_waveforms_per_prompt)
    problems += count_problems
    count = None if count_problems else num_waveforms_per_prompt  # N, once known to be valid
    if count is not None and (isinstance(num_waveforms_to_keep, bool) or not isinstance(num_waveforms_to_keep, int)
                              or not 1 <= num_waveforms_to_keep <= count):
        problems.append(f"num_waveforms_to_keep: expected an int in [1, {count}] (num_waveforms_per_prompt); "
                        f"got {_describe(num_waveforms_to_keep)}")
    if not (_finite(eta) and eta >= 0):
        problems.append(f"eta: expected a number >= 0; got {_describe(eta)}")
    if count is not None and count > 1 and not can_rank:
        problems.append("num_waveforms_per_prompt: ranking several waveforms per prompt needs the pipeline's "
                        "feature_extractor (ClapFeatureExtractor), and it has none")
    if count is not None and output_type == "latent" and num_waveforms_to_keep != count:
        problems.append("output_type: 'latent' returns latents before decoding, so candidates cannot be ranked; "
                        f"set num_waveforms_to_keep={count} (all candidates) or decode")

    total = batch * count if batch is not None and count is not None else None
    if isinstance(generator, Sequence) and not isinstance(generator, str):
        if not all(isinstance(g, torch.Generator) for g in generator):
            problems.append(f"generator: expected torch.Generator objects; got {_describe(generator)}")
        elif total is not None and len(generator) != total:
            problems.append(f"generator: {_count(len(generator), 'generator')} for {_count(total, 'waveform')} "
                            f"({_count(batch, 'prompt')} x {count}); give one per waveform, or a single generator")
    elif generator is not None and not isinstance(generator, torch.Generator):
        problems.append(f"generator: expected a torch.Generator, a list of them, or None; got {_describe(generator)}")
    if latents is not None and total is not None and latent_shape is not None:
        expected = (total, *latent_shape)
        if not isinstance(latents, torch.Tensor) or tuple(latents.shape) != expected:
            shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else _describe(latents)
            problems.append(f"latents: expected a tensor of shape {expected} [B * N, C, H, W] for this length "
                            f"and batch; got {shape}")

    if callback is not None and not callable(callback):
        problems.append(f"callback: expected a callable or None; got {_describe(callback)}")
    problems += _positive_int("callback_steps", callback_steps)
    if callback_on_step_end is not None and not callable(callback_on_step_end):
        problems.append(f"callback_on_step_end: expected a callable or None; got {_describe(callback_on_step_end)}")
    if not (isinstance(callback_on_step_end_tensor_inputs, (list, tuple))
            and set(callback_on_step_end_tensor_inputs) <= set(CALLBACK_TENSOR_INPUTS)):
        problems.append(f"callback_on_step_end_tensor_inputs: expected a list drawn from "
                        f"{list(CALLBACK_TENSOR_INPUTS)}; got {_describe(callback_on_step_end_tensor_inputs)}")
    if cross_attention_kwargs is not None and not isinstance(cross_attention_kwargs, dict):
        problems.append(f"cross_attention_kwargs: expected a dict or None; got {_describe(cross_attention_kwargs)}")
    if output_type not in OUTPUT_TYPES:
        problems.append(f"output_type: expected one of {', '.join(OUTPUT_TYPES)}; got {_describe(output_type)}")
    for name, value in (("return_dict", return_dict), ("clip_output", clip_output)):
        if not isinstance(value, bool):
            problems.append(f"{name}: expected True or False; got {_describe(value)}")
    if problems:
        raise GenerationInputError(problems)
