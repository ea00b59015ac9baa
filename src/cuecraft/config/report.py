"""What ``cuecraft config validate`` reports: one row per condition, built and run on an example."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cuecraft.attributes import JointEmbedCondition, WavCondition
from cuecraft.conditioners.base import BaseConditioner
from cuecraft.config.build import build_parts
from cuecraft.config.formats import LoadedConfig, load_config
from cuecraft.errors import ConfigError

EXAMPLE_TEXT = "a bright synth melody over warm pads and drums"
EXAMPLE_BATCH = 2


@dataclass(frozen=True)
class ConditionRow:
    id: str
    type: str
    roles: tuple[str, ...]
    shape: tuple[int, ...] | None  # output for an example batch; None when not built
    parameters: int
    trainable: int
    note: str = ""


@dataclass
class ValidationReport:
    format: str
    rows: list[ConditionRow]
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def example_value(conditioner: BaseConditioner) -> Any:
    """A plausible value of the conditioner's kind (a valid label, a number in range, ...)."""
    if hasattr(conditioner, "options"):
        return conditioner.options[0]
    if conditioner.kind == "text":
        return EXAMPLE_TEXT
    if conditioner.kind == "number":
        return getattr(conditioner, "min_val", 1)
    if conditioner.kind == "wav":
        rate = int(getattr(conditioner, "sample_rate", 16000))
        t = torch.arange(rate) / rate
        return WavCondition(torch.sin(2 * torch.pi * 440.0 * t).unsqueeze(0), rate)
    if conditioner.kind == "joint_embed":
        return JointEmbedCondition(text=EXAMPLE_TEXT)
    return torch.zeros(1, conditioner.output_dim)  # a pre-encoded embedding


def validate_config(source: str | Path | dict[str, Any] | LoadedConfig) -> ValidationReport:
    """Load and build a config; raise ConfigError with every problem, or report each condition.

    A pretrained model that is not available here does not fail validation: its row says so.
    """
    loaded = source if isinstance(source, LoadedConfig) else load_config(source)
    config = loaded.config
    try:  # the build path of build_stack, so validate accepts exactly what build_stack builds
        parts = build_parts(config, seed=0, missing_models="report")
    except ConfigError as error:
        raise ConfigError([loaded.translation.peer_path(p) for p in error.problems]) from None
    conditioners, unavailable, fuser = parts.conditioners, parts.unavailable, parts.fuser
    rows = []
    for spec in config.conditioners:
        roles = tuple(fuser.roles_of(spec.id))
        if spec.id in unavailable:
            rows.append(ConditionRow(spec.id, spec.type, roles, None, 0, 0,
                                     f"not built here: {unavailable[spec.id]}"))
            continue
        conditioner = conditioners[spec.id].eval()
        values = [example_value(conditioner)] * EXAMPLE_BATCH
        if spec.id in config.pre_encoded_keys:
            shape: tuple[int, ...] = (EXAMPLE_BATCH, 1, conditioner.output_dim)
        else:
            with torch.inference_mode():
                shape = tuple(conditioner.condition(values).embedding.shape)
        parameters = sum(p.numel() for p in conditioner.parameters())
        trainable = sum(p.numel() for p in conditioner.parameters() if p.requires_grad)
        rows.append(ConditionRow(spec.id, spec.type, roles, shape, parameters, trainable))
    return ValidationReport(loaded.format, rows, loaded.ignored, loaded.notes)
