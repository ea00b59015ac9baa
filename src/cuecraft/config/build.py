"""Build a ConditioningStack from a config file or mapping."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cuecraft.conditioners import build_conditioner, conditioner_class
from cuecraft.conditioners.registry import check_settings
from cuecraft.config.formats import LoadedConfig, load_config
from cuecraft.config.schema import ConditioningConfig
from cuecraft.conditioners.base import BaseConditioner
from cuecraft.errors import ConfigError, PretrainedModelNotFoundError
from cuecraft.fuser import ConditionFuser
from cuecraft.guidance import AttributeDropout, ClassifierFreeGuidanceDropout
from cuecraft.provider import ConditionProvider
from cuecraft.stack import ConditioningStack

EXAMPLES = Path(__file__).parent / "examples"
DEFAULT_CONFIG = EXAMPLES / "default.json"
DEFAULT_METADATA = EXAMPLES / "default_metadata.json"


def settings_of(config: ConditioningConfig, index: int) -> dict[str, Any]:
    """Conditioner ``index``'s settings, with ``output_dim`` defaulting to ``cond_dim``."""
    spec = config.conditioners[index]
    settings = dict(spec.config)
    try:
        accepted = inspect.signature(conditioner_class(spec.type).__init__).parameters
    except ConfigError:
        return settings
    if "output_dim" in accepted and "output_dim" not in settings:
        settings["output_dim"] = config.cond_dim
    return settings


def _located(index: int, problems: list[str]) -> list[str]:
    return [f"conditioners[{index}].{p}" if p.startswith("type:") else f"conditioners[{index}].config.{p}"
            for p in problems]


def check_config_types(config: ConditioningConfig) -> None:
    """Every conditioner's type is registered and its settings are ones it takes (nothing built)."""
    problems = []
    for i, spec in enumerate(config.conditioners):
        problems += _located(i, check_settings(spec.type, settings_of(config, i)))
    if problems:
        raise ConfigError(problems)


def build_conditioners(config: ConditioningConfig, *, seed: int | None = None, missing_models: str = "raise"
                       ) -> tuple[dict[str, BaseConditioner], dict[str, PretrainedModelNotFoundError]]:
    """Build every conditioner of ``config``; ConfigError lists every problem with its path.

    ``missing_models="report"`` leaves out conditioners whose pretrained model is not available
    and returns them as ``{id: error}`` instead of raising (for ``cuecraft config validate``).
    """
    problems: list[str] = []
    conditioners: dict[str, BaseConditioner] = {}
    unavailable: dict[str, PretrainedModelNotFoundError] = {}
    rng = torch.random.fork_rng() if seed is not None else nullcontext()
    with rng:
        if seed is not None:
            torch.manual_seed(seed)
        for i, spec in enumerate(config.conditioners):
            try:
                conditioners[spec.id] = build_conditioner(spec.type, settings_of(config, i))
            except ConfigError as error:
                problems += _located(i, error.problems)
            except PretrainedModelNotFoundError as error:
                if missing_models != "report":
                    raise
                unavailable[spec.id] = error
    if problems:
        raise ConfigError(problems)
    return conditioners, unavailable


def routing_of(config: ConditioningConfig) -> dict[str, list[str]]:
    """``{role: [ids]}`` in config order."""
    routing: dict[str, list[str]] = {}
    for spec in config.conditioners:
        for role in spec.roles:
            routing.setdefault(role, []).append(spec.id)
    return routing


def checked_fuser(config: ConditioningConfig, shapes: Mapping[str, tuple[int | None, int]]) -> ConditionFuser:
    """The config's fuser, its routing checked against ``{id: (length or None, width)}`` and the
    backbone's widths (``check_widths``)."""
    fuser = ConditionFuser(routing_of(config), config.fuser.cross_attention_pos_emb,
                           config.fuser.cross_attention_pos_emb_scale)
    fuser.check_shapes(shapes)
    check_widths(config, {name: width for name, (_, width) in shapes.items()})
    return fuser


def check_widths(config: ConditioningConfig, widths: Mapping[str, int]) -> None:
    """Dimension bookkeeping: the routed widths must be what the backbone reads.

    cross (and prepend) token widths equal ``backbone.cross_attention_dim`` (``prepend_dim``),
    the cross width defaulting to ``cond_dim``; global and input_concat widths add up to
    ``backbone.global_dim`` (``input_concat_dim``) when those are given.
    """
    routing = routing_of(config)
    index = {spec.id: i for i, spec in enumerate(config.conditioners)}
    backbone = config.backbone
    problems = []
    for role, expected, source in (("cross", backbone.cross_attention_dim or config.cond_dim,
                                    "backbone.cross_attention_dim" if backbone.cross_attention_dim else "cond_dim"),
                                   ("prepend", backbone.prepend_dim, "backbone.prepend_dim")):
        for name in routing.get(role, []):
            if expected is not None and name in widths and widths[name] != expected:
                problems.append(f"conditioners[{index[name]}] ({name}): routed to '{role}' with width "
                                f"{widths[name]}, but {source} is {expected}")
    for role, expected, source in (("global", backbone.global_dim, "backbone.global_dim"),
                                   ("input_concat", backbone.input_concat_dim, "backbone.input_concat_dim")):
        names = routing.get(role, [])
        if expected is not None and names and all(n in widths for n in names):
            total = sum(widths[n] for n in names)
            if total != expected:
                parts = " + ".join(f"{n} {widths[n]}" for n in names)
                problems.append(f"{source}: is {expected}, but the conditions routed to '{role}' add up to "
                                f"{total} ({parts})")
    if problems:
        raise ConfigError(problems)


@dataclass
class BuiltParts:
    """What one build of a config makes: every check done, nothing left to validate.

    ``unavailable``: conditioners left out because their pretrained model is not on this machine
    (only with ``missing_models="report"``); with it non-empty there is no ``provider``.
    """

    conditioners: dict[str, BaseConditioner]
    unavailable: dict[str, PretrainedModelNotFoundError]
    provider: ConditionProvider | None
    fuser: ConditionFuser
    cfg_dropout: ClassifierFreeGuidanceDropout | None
    attribute_dropout: AttributeDropout | None


def condition_kinds(config: ConditioningConfig) -> dict[str, str]:
    """``{id: attribute kind}`` as the provider routes them (``embedding`` for pre-encoded keys),
    from the registered classes, so it needs no conditioner built."""
    kinds = {}
    for spec in config.conditioners:
        try:
            kinds[spec.id] = "embedding" if spec.id in config.pre_encoded_keys else conditioner_class(spec.type).kind
        except ConfigError:
            continue  # an unknown type is reported where the conditioners are built
    return kinds


def check_dropout(config: ConditioningConfig) -> tuple[ClassifierFreeGuidanceDropout | None, AttributeDropout | None]:
    """The config's dropouts, every attribute-dropout name checked against the conditions' kinds."""
    try:
        attribute_dropout = AttributeDropout(config.dropout.attributes) if config.dropout.attributes else None
    except ConfigError as error:
        raise ConfigError([f"dropout.attributes.{p}" for p in error.problems]) from None
    kinds = condition_kinds(config)
    problems = [f"dropout.attributes.{kind}.{name}: no {kind} condition is named {name!r}; "
                + (f"{name!r} is a {kinds[name]} condition" if name in kinds else f"conditions: {sorted(kinds)}")
                for kind, name, _ in (attribute_dropout.entries if attribute_dropout else ())
                if kinds.get(name) != kind]
    if problems:
        raise ConfigError(problems)
    cfg_dropout = ClassifierFreeGuidanceDropout(config.dropout.cfg) if config.dropout.cfg else None
    return cfg_dropout, attribute_dropout


def build_parts(config: ConditioningConfig, *, seed: int | None = None, missing_models: str = "raise") -> BuiltParts:
    """The one build path of ``build_stack`` and ``cuecraft config validate``.

    Conditioners, fuser routing and widths, dropouts: every problem is a ConfigError line with
    its path (all of them, as far as the earlier ones let the later checks run).
    ``missing_models="report"``: see ``build_conditioners``; the fuser then assumes an
    unavailable conditioner's configured width and any length.
    """
    problems: list[str] = []
    conditioners: dict[str, BaseConditioner] = {}
    unavailable: dict[str, PretrainedModelNotFoundError] = {}
    try:
        conditioners, unavailable = build_conditioners(config, seed=seed, missing_models=missing_models)
    except ConfigError as error:
        problems += error.problems
    dropouts: tuple[ClassifierFreeGuidanceDropout | None, AttributeDropout | None] = (None, None)
    try:
        dropouts = check_dropout(config)
    except ConfigError as error:
        problems += error.problems
    if problems:
        raise ConfigError(problems)
    shapes = {n: (c.output_length, c.output_dim) for n, c in conditioners.items()}
    for spec in config.conditioners:  # not built: assume the configured width, any length
        if spec.id in unavailable:
            shapes[spec.id] = (1, spec.config.get("output_dim", config.cond_dim))
    fuser = checked_fuser(config, shapes)
    provider = None if unavailable else ConditionProvider(conditioners, config.default_keys, config.pre_encoded_keys)
    return BuiltParts(conditioners, unavailable, provider, fuser, *dropouts)


def build_stack(config: LoadedConfig | ConditioningConfig | Mapping[str, Any] | str | Path, *,
                seed: int | None = None) -> ConditioningStack:
    """Build provider, fuser and dropouts from a config, checking everything before returning.

    ``config`` is a path or mapping in any format ``load_config`` reads, or an already loaded
    config. ``seed`` makes the random initialisation of the conditioners' weights reproducible
    without touching the global random state. Errors name fields as the source file spells them.
    """
    loaded = config if isinstance(config, LoadedConfig) else load_config(config)
    try:
        return _build(loaded.config, seed)
    except ConfigError as error:
        raise ConfigError([loaded.translation.peer_path(p) for p in error.problems]) from None


def _build(config: ConditioningConfig, seed: int | None) -> ConditioningStack:
    parts = build_parts(config, seed=seed)
    assert parts.provider is not None  # missing models raise here
    types = {spec.id: spec.type for spec in config.conditioners}
    return ConditioningStack(parts.provider, parts.fuser, types, parts.cfg_dropout, parts.attribute_dropout,
                             guidance_scale=float(config.guidance.scale),
                             rescale_phi=float(config.guidance.rescale_phi))
