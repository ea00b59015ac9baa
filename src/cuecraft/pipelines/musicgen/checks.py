"""``check_inputs`` of the MusicGen pipeline: every argument of a call, all problems at once.

It needs the model's spec and a token counter only, not its weights, so the command line runs it
before the weights are read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cuecraft.attributes import WavCondition
from cuecraft.errors import GenerationInputError
from cuecraft.pipelines.musicgen.spec import MusicGenSpec


@dataclass(frozen=True)
class MusicGenOptions:
    """The settings of one generation (carried on its result).

    seconds: length of each output (with an audio prompt: seconds added after it).
    guidance: s, classifier-free guidance of all conditions (AudioCraft's ``cfg_coef``; 1: off).
    guidance_text: s_g, the text on top of s (double CFG; 0: off). AudioCraft's
        ``cfg_coef_beta`` β is ``guidance_text = guidance * (β - 1)``.
    two_step_cfg: run each guidance branch as its own pass (own padding, own cache), as
        AudioCraft's ``two_step_cfg``; else one batched pass.
    top_k, top_p, temperature: sampling (see ``sampling.Sampler``). candidates: outputs per prompt.
    """

    seconds: float = 10.0
    guidance: float = 3.0
    guidance_text: float = 0.0
    two_step_cfg: bool = False
    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0
    candidates: int = 1


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:57] + '...' if len(text) > 60 else text}"


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int)


def _per_prompt(name: str, value: Any, batch: int | None, kind: type, what: str,
                problems: list[str]) -> list[Any] | None:
    """``value`` as one entry per prompt (a single value is used for all), or None with a problem."""
    if value is None:
        return None
    if isinstance(value, kind):
        return [value] * (batch or 1)
    if not isinstance(value, (list, tuple)) or not all(v is None or isinstance(v, kind) for v in value):
        problems.append(f"{name}: expected {what}, a list of them (one per prompt, None for none) or None; "
                        f"got {_describe(value)}")
        return None
    if batch is not None and len(value) != batch:
        problems.append(f"{name}: {len(value)} given for {batch} prompt{'s' * (batch != 1)}; give one per prompt, "
                        "or one for all")
        return None
    return list(value)


def check_inputs(spec: MusicGenSpec, count_tokens: Callable[[Sequence[str]], list[int]], *, prompt: Any,
                 negative_prompt: Any, melody: Any, audio_prompt: Any, options: MusicGenOptions, generator: Any,
                 progress: Any) -> None:
    """Raise GenerationInputError listing every problem of a call (see ``MusicGenPipeline.__call__``)."""
    problems: list[str] = []
    batch = None
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, (list, tuple)) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = list(prompt)
    else:
        prompts = []
        problems.append(f"prompt: expected a str or a non-empty list of str; got {_describe(prompt)}")
    if prompts:
        batch = len(prompts)
    negatives = _per_prompt("negative_prompt", negative_prompt, batch, str, "a str", problems)
    texts = prompts + [n for n in negatives or [] if n is not None]
    if texts:
        limit = spec.max_text_tokens
        for name, text, count in zip(["prompt"] * len(prompts) + ["negative_prompt"] * len(texts), texts,
                                     count_tokens(texts)):
            if count > limit:
                problems.append(f"{name}: {text[:40]!r}{'...' if len(text) > 40 else ''} is {count} tokens; this "
                                f"model's text encoder takes at most {limit} (its tokenizer's model_max_length)")
    melodies = _per_prompt("melody", melody, batch, WavCondition, "a WavCondition", problems)
    if melodies is not None and any(m is not None for m in melodies) and not spec.melody:
        problems.append("melody: this model (musicgen) reads text alone; a melody needs a MusicGen-melody model "
                        "(model_type musicgen_melody, e.g. facebook/musicgen-melody)")
    prompts_audio = _per_prompt("audio_prompt", audio_prompt, batch, WavCondition, "a WavCondition", problems)
    lengths = [0 if a is None else a.length * spec.sample_rate / a.sample_rate for a in prompts_audio or []]
    if prompts_audio is not None and any(a is not None and a.length == 0 for a in prompts_audio):
        problems.append("audio_prompt: a clip to continue is empty (0 samples)")
    if prompts_audio is not None and len({round(n) for n in lengths}) > 1:
        problems.append(f"audio_prompt: a batch continues clips of one length, one per prompt; got lengths "
                        f"{sorted({round(n) for n in lengths})} samples at {spec.sample_rate} Hz (0: none)")

    o = options
    if not (_number(o.seconds) and o.seconds > 0):
        problems.append(f"seconds: expected a number of seconds > 0; got {_describe(o.seconds)}")
    elif round(o.seconds * spec.sample_rate) < 1:
        problems.append(f"seconds: {o.seconds} s is less than one sample at {spec.sample_rate} Hz")
    elif texts:
        tokens = max(count_tokens(texts)) if spec.melody else 0
        prompt_samples = round(max(lengths, default=0))
        frames = spec.frames_for(prompt_samples + round(o.seconds * spec.sample_rate))
        most = spec.max_frames(tokens)
        if frames > most:
            room = most * spec.hop_length / spec.sample_rate - prompt_samples / spec.sample_rate
            what = " after the audio prompt" if prompt_samples else ""
            prefix = (f" after its prefix of {spec.chroma.chroma_length} chroma frames and {tokens} text tokens"
                      if spec.chroma is not None else "")
            problems.append(f"seconds: {o.seconds:g} s{what} needs {frames} frames, beyond this model's "
                            f"{spec.max_positions} position embeddings{prefix}; at most {max(room, 0):.2f} s")
    if not (_number(o.guidance) and o.guidance >= 0):
        problems.append(f"guidance: expected a finite number >= 0 (1: no guidance); got {_describe(o.guidance)}")
    if not (_number(o.guidance_text) and o.guidance_text >= 0):
        problems.append(f"guidance_text: expected a finite number >= 0 (0: off); got {_describe(o.guidance_text)}")
    elif o.guidance_text > 0 and not spec.melody:
        problems.append("guidance_text: double CFG weighs the text against the other conditions, and this model "
                        "(musicgen) has the text alone; use a MusicGen-melody model with a melody")
    elif o.guidance_text > 0 and not (melodies and all(m is not None for m in melodies)):
        problems.append("guidance_text: double CFG weighs the text against the melody; give a melody for every "
                        "prompt (without one the text's branch is the unconditional one)")
    if not isinstance(o.two_step_cfg, bool):
        problems.append(f"two_step_cfg: expected True or False; got {_describe(o.two_step_cfg)}")
    if not (_int(o.top_k) and o.top_k >= 0):
        problems.append(f"top_k: expected an int >= 0 (0: all tokens); got {_describe(o.top_k)}")
    if not (_number(o.top_p) and 0 <= o.top_p <= 1):
        problems.append(f"top_p: expected a number in [0, 1] (0 or 1: all tokens); got {_describe(o.top_p)}")
    if not (_number(o.temperature) and o.temperature >= 0):
        problems.append(f"temperature: expected a finite number >= 0 (0: greedy); got {_describe(o.temperature)}")
    if not (_int(o.candidates) and o.candidates >= 1):
        problems.append(f"candidates: expected an int >= 1; got {_describe(o.candidates)}")
    if generator is not None and not isinstance(generator, torch.Generator):
        problems.append(f"generator: expected a torch.Generator or None; got {_describe(generator)}")
    if progress is not None and not callable(progress):
        problems.append(f"progress: expected a callable (step, total) or None; got {_describe(progress)}")
    if problems:
        raise GenerationInputError(problems)
