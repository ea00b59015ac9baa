"""Named generation settings for the MusicLDM pipeline.

- ``diffusers``: the defaults of diffusers' ``MusicLDMPipeline`` (and of cuecraft's ``__call__``):
  200 steps, guidance 2.0, deterministic DDIM (eta 0), one waveform per prompt, all the waveforms
  generated returned (ranked best first), output as decoded.
- ``original``: the inference of the MusicLDM paper's code: stochastic DDIM (eta 1.0), five
  candidates per prompt of which the best by CLAP text-audio similarity is kept, and the
  waveform cleaned for writing (NaNs to 0, clipped to [-1, 1]).

``musicldm_preset("original", num_inference_steps=50)`` gives the keyword arguments to pass to the
pipeline, with any of them overridden.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cuecraft.errors import ConfigError


@dataclass(frozen=True)
class MusicLDMPreset:
    """Generation settings: each field is the ``MusicLDMPipeline.__call__`` argument of that name."""

    num_inference_steps: int  # denoising steps
    guidance_scale: float  # classifier-free guidance weight (> 1 turns guidance on)
    eta: float  # DDIM's eta: 0 deterministic, 1 as stochastic as DDPM (DDIM only)
    num_waveforms_per_prompt: int  # candidates generated per prompt
    num_waveforms_to_keep: int | None  # best candidates returned per prompt, by CLAP similarity (None: all)
    clip_output: bool  # NaNs to 0 and samples clipped to [-1, 1]

    def kwargs(self) -> dict[str, Any]:
        """The settings as keyword arguments for the pipeline."""
        return dataclasses.asdict(self)


PRESETS = MappingProxyType({
    "diffusers": MusicLDMPreset(num_inference_steps=200, guidance_scale=2.0, eta=0.0, num_waveforms_per_prompt=1,
                                num_waveforms_to_keep=None, clip_output=False),
    "original": MusicLDMPreset(num_inference_steps=200, guidance_scale=2.0, eta=1.0, num_waveforms_per_prompt=5,
                               num_waveforms_to_keep=1, clip_output=True),
})


def musicldm_preset(name: str, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of preset ``name`` with ``overrides`` applied (values are checked by the
    pipeline's ``check_inputs``). Raises ConfigError for an unknown preset or setting."""
    problems = []
    if name not in PRESETS:
        problems.append(f"preset: unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    fields = [f.name for f in dataclasses.fields(MusicLDMPreset)]
    for key in overrides:
        if key not in fields:
            problems.append(f"{key}: not a preset setting; settings: {', '.join(fields)}")
    if problems:
        raise ConfigError(problems)
    return {**PRESETS[name].kwargs(), **overrides}
