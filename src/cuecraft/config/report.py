"""What ``cuecraft config validate`` reports: one row per condition, built and run on an example."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cuecraft.attributes import JointEmbedCondition, SymbolicCondition, WavCondition
from cuecraft.conditioners.base import BaseConditioner
from cuecraft.config.build import build_parts
from cuecraft.config.formats import LoadedConfig, load_checked
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


def _in_peer_words(loaded: LoadedConfig, index: int, text: str) -> str:
    """``text`` with conditioner ``index``'s setting names as the source file spells them
    (``(t5_model_name)`` -> ``(conditioners.description.t5.name)``)."""
    for key in loaded.config.conditioners[index].config:
        peer = loaded.translation.peer_path(f"conditioners[{index}].config.{key}:")[:-1]
        text = text.replace(f"({key})", f"({peer})")
    return text


@contextmanager
def _without_disk_cache(conditioner: BaseConditioner) -> Iterator[None]:
    """Run ``conditioner`` with its embedding cache (if any) detached: validating writes nothing."""
    cache = getattr(conditioner, "cache", None)
    if cache is None:
        yield
        return
    conditioner.cache = None
    try:
        yield
    finally:
        conditioner.cache = cache


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
    if conditioner.kind == "symbolic":
        return SymbolicCondition(bpm=120, time_signature="4/4", chords="C G Am F", key="C major")
    return torch.zeros(1, conditioner.output_dim)  # a pre-encoded embedding


def validate_config(source: Any, *, overrides: Sequence[str] = ()) -> ValidationReport:
    """Load and build a config; raise ConfigError with every problem, or report each condition.

    ``source``: a file, a mapping, a list of them (composed in order) or a LoadedConfig;
    ``overrides``: ``key.path=value`` strings (see ``cuecraft.config.reading``). Every problem
    that can be known is reported at once: the reader's, the schema's and the build's, in the
    file's own field names. A pretrained model (or an optional package) that is not available
    here does not fail validation: its row says so, and its shape is the one the config declares.
    Nothing is written: the example runs without the conditioners' disk caches.
    """
    loaded, problems = load_checked(source, overrides=overrides)
    parts = None
    if loaded is not None:
        try:  # the build path of build_stack, so validate accepts exactly what build_stack builds
            parts = build_parts(loaded.config, seed=0, missing_models="report")
        except ConfigError as error:
            problems += loaded.translation.peer_problems(error.problems)
    if problems or parts is None or loaded is None:
        raise ConfigError(problems or ["(top level): not a valid config"])
    config = loaded.config
    conditioners, unavailable, fuser = parts.conditioners, parts.unavailable, parts.fuser
    rows = []
    for index, spec in enumerate(config.conditioners):
        roles = tuple(fuser.roles_of(spec.id))
        if spec.id in unavailable:
            rows.append(ConditionRow(spec.id, spec.type, roles, None, 0, 0,
                                     _in_peer_words(loaded, index, f"not built here: {unavailable[spec.id]}")))
            continue
        conditioner = conditioners[spec.id].eval()
        values = [example_value(conditioner)] * EXAMPLE_BATCH
        if spec.id in config.pre_encoded_keys:
            shape: tuple[int, ...] = (EXAMPLE_BATCH, 1, conditioner.output_dim)
        else:
            with torch.inference_mode(), _without_disk_cache(conditioner):
                shape = tuple(conditioner.condition(values).embedding.shape)
        parameters = sum(p.numel() for p in conditioner.parameters())
        trainable = sum(p.numel() for p in conditioner.parameters() if p.requires_grad)
        rows.append(ConditionRow(spec.id, spec.type, roles, shape, parameters, trainable))
    return ValidationReport(loaded.format, rows, loaded.ignored, loaded.notes)


MODEL_BLOCKS = ("conditioning", "representation", "backbone")  # what marks a model config (cuecraft.config.model)


def is_model_config(data: Any) -> bool:
    """Whether a parsed document is a model config (conditioning + representation + backbone blocks)
    rather than a conditioning config."""
    return isinstance(data, dict) and all(isinstance(data.get(key), dict) for key in MODEL_BLOCKS)


@dataclass
class ModelValidationReport:
    """``cuecraft config validate`` of a model config: the conditioning rows plus the other blocks."""

    conditioning: ValidationReport
    representation: str  # e.g. "mel: 16000 Hz, 64 bands, hop 256 (62.5 frames/s), 1 channel -> 64 per frame"
    backbone: str  # e.g. "dit: width 256, depth 4, 4 heads, patch 4, rotary"
    dit_parameters: int
    objective: str  # e.g. "v, timesteps logit_normal"
    notes: list[str] = field(default_factory=list)


def validate_model_config(source: Any) -> ModelValidationReport:
    """Parse and build a model config (``parse_model_config`` / ``build_model``: every block, the
    widths against the routed conditions, latent_dim against the representation); raise ConfigError
    with every problem, or report it. A pretrained conditioner missing here is reported in its
    row, as for a conditioning config, and the rest is checked without building the stack."""
    from cuecraft.config.build import routing_of
    from cuecraft.config.model import build_model, build_representation, parse_model_config, training_problems
    from cuecraft.models.dit import DiT

    config = parse_model_config(source)
    if training_problems(config):
        raise ConfigError(training_problems(config))
    conditioning = validate_config(config.conditioning)
    notes = []
    if any(row.shape is None for row in conditioning.rows):
        config.backbone.check_routing(routing_of(config.conditioning.config))
        with torch.device("meta"):  # counted, not allocated
            dit = DiT(config.backbone)
        representation = build_representation(config.representation)
        if representation.latent_dim != config.backbone.latent_dim:
            raise ConfigError([f"backbone.latent_dim: is {config.backbone.latent_dim}, but the representation gives "
                               f"{representation.latent_dim} channels per frame"])
        notes.append("the conditioning stack was not built (a model is missing here); widths checked from the config")
    else:
        _, representation, dit, _ = build_model(config, dit_device="meta")
    options, backbone = representation.options, config.backbone
    rate = options.sample_rate / options.hop
    channels = getattr(options, "channels", 1)
    loaded = f", loaded from {config.representation.load}" if config.representation.load else ""
    represented = (f"{config.representation.kind}: {options.sample_rate} Hz, {options.n_mels} bands, hop {options.hop} "
                   f"({rate:g} frames/s), {channels} channel{'s' if channels != 1 else ''} -> "
                   f"{representation.latent_dim} per frame{loaded}")
    described = (f"dit: width {backbone.dim}, depth {backbone.depth}, {backbone.heads} heads, patch "
                 f"{backbone.patch_size}, {backbone.positions} positions")
    objective = (f"{config.objective.type}, output {config.objective.output}, timesteps {config.objective.timesteps}")
    return ModelValidationReport(conditioning, represented, described, dit.parameter_count(), objective, notes)
