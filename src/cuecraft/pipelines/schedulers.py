"""Diffusion schedulers by name, built from a pipeline's own scheduler config.

A pretrained pipeline ships one scheduler config (its noise schedule: ``num_train_timesteps``,
``beta_start``, ``beta_end``, ``beta_schedule``, ``prediction_type``...). Every scheduler named
here is the diffusers class built with ``from_config`` on that config, so swapping the sampler
never changes the noise schedule the model was trained with; only the settings in the table
below are set on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from cuecraft._optional import require
from cuecraft.errors import ConfigError


class SchedulerChoice(NamedTuple):
    """A diffusers scheduler class and the settings it gets beyond the pipeline's config."""

    class_name: str
    overrides: Mapping[str, Any]


SCHEDULERS: Mapping[str, SchedulerChoice] = MappingProxyType({
    "ddim": SchedulerChoice("DDIMScheduler", {}),
    # PLMS, as diffusers' text-to-image pipelines run PNDM: no Runge-Kutta warm-up steps.
    "pndm": SchedulerChoice("PNDMScheduler", {"skip_prk_steps": True}),
    "lms": SchedulerChoice("LMSDiscreteScheduler", {}),
    "euler": SchedulerChoice("EulerDiscreteScheduler", {}),
    "euler-ancestral": SchedulerChoice("EulerAncestralDiscreteScheduler", {}),
    # DPM-Solver++(2M): second order, multistep.
    "dpm-solver++": SchedulerChoice("DPMSolverMultistepScheduler",
                                    {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "unipc": SchedulerChoice("UniPCMultistepScheduler", {}),
})


def check_scheduler_name(name: Any, field: str = "scheduler") -> list[str]:
    """ConfigError lines for a scheduler name; empty when it is one of SCHEDULERS."""
    if name not in SCHEDULERS:
        return [f"{field}: unknown scheduler {name!r}; valid names: {', '.join(SCHEDULERS)}"]
    return []


def make_scheduler(name: str, config: Mapping[str, Any]) -> Any:
    """The diffusers scheduler called ``name`` (see SCHEDULERS), configured from ``config``.

    ``config`` is a scheduler config, typically ``pipeline.scheduler.config``. Raises ConfigError
    listing the valid names for an unknown one.
    """
    problems = check_scheduler_name(name)
    if problems:
        raise ConfigError(problems)
    choice = SCHEDULERS[name]
    diffusers = require("diffusers", extra="musicldm", purpose=f"the {name} scheduler")
    scheduler_class = getattr(diffusers, choice.class_name)
    return scheduler_class.from_config(config, **choice.overrides)
