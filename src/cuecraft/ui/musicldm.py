"""The web UI's MusicLDM tab as a plain function over ``cuecraft.pipelines.MusicLDMPipeline``.

Text to music with a local MusicLDM model: a prompt, an optional negative prompt, a length and the
sampler settings; several candidates are ranked by CLAP text-audio similarity, best first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from cuecraft.errors import GenerationInputError
from cuecraft.ui.actions import MAX_CANDIDATES, whole_number, pcm16

SCORES_HEADER = ("candidate", "CLAP similarity")
DEFAULTS = {"seconds": 10.0, "steps": 50, "guidance": 2.0}  # those of `cuecraft musicldm`
Progress = Callable[[int, int], None]  # (steps done, total)


@dataclass(frozen=True)
class MusicLDMInputs:
    """The MusicLDM tab's widget values, in the order the page (and its ``/musicldm`` API) passes them."""

    prompt: str | None = None
    negative_prompt: str | None = None
    seconds: float = DEFAULTS["seconds"]
    steps: int | float = DEFAULTS["steps"]
    guidance: float = DEFAULTS["guidance"]
    seed: int | float = 0
    candidates: int | float = 1

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def musicldm_clicked(pipeline: Any, inputs: MusicLDMInputs, progress: Progress | None = None,
                     ) -> tuple[list[tuple[int, np.ndarray]], list[list[Any]]]:
    """(audio (sample_rate, int16 [T]) per candidate best first, rows under SCORES_HEADER)."""
    import torch

    problems: list[str] = []
    if not isinstance(inputs.prompt, str) or not inputs.prompt.strip():
        problems.append("prompt: empty; describe the music to generate")
    steps, seed = whole_number("steps", inputs.steps, problems), whole_number("seed", inputs.seed, problems)
    candidates = whole_number("candidates", inputs.candidates, problems)
    if candidates is not None and not 1 <= candidates <= MAX_CANDIDATES:
        problems.append(f"candidates: expected 1 to {MAX_CANDIDATES}; got {candidates}")
    if problems:
        raise GenerationInputError(problems)

    def on_step_end(pipe: Any, i: int, t: Any, tensors: dict) -> dict:
        if progress is not None:
            progress(i + 1, len(pipe.scheduler.timesteps))
        return tensors

    negative = inputs.negative_prompt if isinstance(inputs.negative_prompt, str) and \
        inputs.negative_prompt.strip() else None
    output = pipeline(inputs.prompt.strip(), audio_length_in_s=inputs.seconds, num_inference_steps=steps,
                      guidance_scale=inputs.guidance, negative_prompt=negative, num_waveforms_per_prompt=candidates,
                      num_waveforms_to_keep=candidates, generator=torch.Generator().manual_seed(seed),
                      clip_output=True, callback_on_step_end=on_step_end)
    audio = [(int(pipeline.sample_rate), pcm16(np.asarray(clip))) for clip in output.audios]
    scores = [None] * len(audio) if output.scores is None else output.scores.reshape(-1).tolist()
    return audio, [[i + 1, "-" if s is None else round(float(s), 4)] for i, s in enumerate(scores)]
