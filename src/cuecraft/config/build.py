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
from cuecraft._text import short_repr
from cuecraft.errors import ConfigError, MissingDependencyError, PretrainedModelNotFoundError
from cuecraft.fuser import ConditionFuser
from cuecraft.guidance import AttributeDropout, ClassifierFreeGuidanceDropout, check_guidance_nulls, check_keep_kinds
from cuecraft.guidance_groups import check_guidance_group
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
        # a class may choose its own (frame conditioners: their raw channels unless projecting)
        hook = getattr(conditioner_class(spec.type), "default_output_dim", None)
        settings["output_dim"] = hook(settings, config.cond_dim) if callable(hook) else config.cond_dim
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


# Bounds on sizes checked before anything is allocated: setting -> largest value built.
SIZE_BOUNDS = {"n_bins": 2**24, "dim": 2**16, "output_dim": 2**16, "max_length": 2**16, "cache_size": 2**20,
               "n_chroma": 2**10}
MAX_TABLE_ELEMENTS = 2**28  # n_bins x dim of one table (1 GiB of float32)


def check_sizes(settings: Mapping[str, Any]) -> list[str]:
    """Problems with size settings past SIZE_BOUNDS (the bound is in the message)."""
    problems = []
    for name, bound in SIZE_BOUNDS.items():
        value = settings.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > bound:
            problems.append(f"{name}: {value if value < 10**30 else 'a number of ' + str(len(str(value))) + ' digits'} "
                            f"is past the bound of {bound:,} this build allows")
    rows, width = settings.get("n_bins"), settings.get("dim")
    if (isinstance(rows, int) and isinstance(width, int) and not problems
            and rows > 0 and width > 0 and rows * width > MAX_TABLE_ELEMENTS):
        problems.append(f"n_bins: a table of n_bins x dim = {rows:,} x {width:,} is past the bound of "
                        f"{MAX_TABLE_ELEMENTS:,} values this build allows")
    return problems


def declared_shape(config: ConditioningConfig, index: int) -> tuple[int | None, int]:
    """(length or None, width) of conditioner ``index`` as its config declares them, without
    building it: a T5 output is a sequence whatever its weights. A class may declare its own
    with a ``declared_output_length(settings)`` static method."""
    spec = config.conditioners[index]
    settings = settings_of(config, index)
    width = settings.get("output_dim", config.cond_dim)
    width = width if isinstance(width, int) and not isinstance(width, bool) else config.cond_dim
    try:
        cls = conditioner_class(spec.type)
    except ConfigError:
        return 1, width
    hook = getattr(cls, "declared_output_length", None)
    if callable(hook):
        return hook(settings), width
    rule = _DECLARED_LENGTHS.get(spec.type)
    return (rule(settings) if rule else cls.output_length), width


def _text_length(settings: Mapping[str, Any], default_max: int | None = 128) -> int | None:
    return settings.get("max_length", default_max) if settings.get("padding") == "max_length" else None


_DECLARED_LENGTHS = {
    "t5": _text_length,
    "clap_text": lambda s: _text_length(s, None) if s.get("use_text_features") else 1,
    "sentence": lambda s: 1 if s.get("output", "pooled") == "pooled" else _text_length(s, None),
    "clap": lambda s: 1,
    "clap_audio": lambda s: 1,
}


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
            settings = settings_of(config, i)
            sizes = check_sizes(settings)
            if sizes:
                problems += _located(i, sizes)
                continue
            try:
                conditioners[spec.id] = build_conditioner(spec.type, settings)
            except ConfigError as error:
                problems += _located(i, error.problems)
            except (PretrainedModelNotFoundError, MissingDependencyError) as error:
                if missing_models != "report":
                    raise
                unavailable[spec.id] = error  # type: ignore[assignment]
            except (OverflowError, TypeError, ValueError, RuntimeError, MemoryError) as error:
                # a setting the conditioner did not check (a size torch cannot allocate, ...)
                problems.append(f"conditioners[{i}].config: type {spec.type!r} cannot be built from these settings "
                                f"({type(error).__name__}: {short_repr(str(error), 200)[1:-1]})")
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
                           config.fuser.cross_attention_pos_emb_scale, config.fuser.prepend_order)
    problems = []
    for check in (lambda: fuser.check_shapes(shapes),
                  lambda: check_widths(config, {name: width for name, (_, width) in shapes.items()})):
        try:
            check()
        except ConfigError as error:
            problems += error.problems
    if problems:
        raise ConfigError(problems)
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
        attribute_dropout = (AttributeDropout(config.dropout.attributes, per=config.dropout.per)
                             if config.dropout.attributes else None)
    except ConfigError as error:
        raise ConfigError([f"dropout.attributes.{p}" for p in error.problems]) from None
    kinds = condition_kinds(config)
    problems = [f"dropout.attributes.{kind}.{name}: no {kind} condition is named {name!r}; "
                + (f"{name!r} is a {kinds[name]} condition" if name in kinds else f"conditions: {sorted(kinds)}")
                for kind, name, _ in (attribute_dropout.entries if attribute_dropout else ())
                if kinds.get(name) != kind]
    if problems:
        raise ConfigError(problems)
    try:
        keep_problems = check_keep_kinds(config.dropout.cfg_keep_kinds)
        if keep_problems:
            raise ConfigError([f"cfg_{p}" for p in keep_problems])
        cfg_dropout = (ClassifierFreeGuidanceDropout(config.dropout.cfg, per=config.dropout.per,
                                                     keep_kinds=config.dropout.cfg_keep_kinds)
                       if config.dropout.cfg else None)
    except ConfigError as error:
        raise ConfigError([f"dropout.{p}" for p in error.problems]) from None
    guidance_problems = check_guidance_nulls(config.guidance.keep_roles, config.guidance.null)
    group = config.guidance.group
    if group is not None:
        guidance_problems += check_guidance_group(group.conditions, group.scale, group.branch,
                                                  {spec.id: spec.type for spec in config.conditioners})
    if guidance_problems:
        raise ConfigError([f"guidance.{p}" for p in guidance_problems])
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
    failed = False
    try:
        conditioners, unavailable = build_conditioners(config, seed=seed, missing_models=missing_models)
    except ConfigError as error:
        problems += error.problems
        failed = True
    dropouts: tuple[ClassifierFreeGuidanceDropout | None, AttributeDropout | None] = (None, None)
    try:
        dropouts = check_dropout(config)
    except ConfigError as error:
        problems += error.problems
    shapes = {n: (c.output_length, c.output_dim) for n, c in conditioners.items()}
    for i, spec in enumerate(config.conditioners):  # not built: the shape its config declares
        if spec.id not in shapes and (failed or spec.id in unavailable):
            shapes[spec.id] = declared_shape(config, i)
    try:
        fuser = checked_fuser(config, shapes)
    except ConfigError as error:
        problems += error.problems
    if problems:
        raise ConfigError(problems)
    provider = None if unavailable else ConditionProvider(conditioners, config.default_keys, config.pre_encoded_keys)
    return BuiltParts(conditioners, unavailable, provider, fuser, *dropouts)


def build_stack(config: LoadedConfig | ConditioningConfig | Mapping[str, Any] | str | Path, *,
                seed: int | None = None, compat: str = "inputs") -> ConditioningStack:
    """Build provider, fuser and dropouts from a config, checking everything before returning.

    ``config`` is a path or mapping in any format ``load_config`` reads, or an already loaded
    config. ``seed`` makes the random initialisation of the conditioners' weights reproducible
    without touching the global random state. ``compat`` (peer configs only): ``inputs``, a
    peer-trained checkpoint gets the inputs it was trained on; ``exact``, the peer's numbers bit
    for bit, its defects included (see ``config.peer_inputs``). Errors name fields as the source
    file spells them.
    """
    loaded = config if isinstance(config, LoadedConfig) else load_config(config, compat=compat)
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
                             rescale_phi=float(config.guidance.rescale_phi),
                             guidance_keep_roles=tuple(config.guidance.keep_roles),
                             guidance_null=config.guidance.null,
                             guidance_keep_kinds=tuple(config.dropout.cfg_keep_kinds),
                             **group_guidance(config))


def group_guidance(config: ConditioningConfig) -> dict[str, Any]:
    """The ConditioningStack fields of the config's ``guidance.group`` (none: group guidance off)."""
    group = config.guidance.group
    if group is None:
        return {}
    return {"guidance_group": tuple(group.conditions or ()), "guidance_group_scale": float(group.scale),
            "guidance_group_branch": group.branch}
