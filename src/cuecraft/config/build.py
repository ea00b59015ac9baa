"""Build a ConditioningStack from a config file or mapping."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from cuecraft.conditioners import build_conditioner, conditioner_class
from cuecraft.config.schema import ConditioningConfig, parse_config
from cuecraft.errors import ConfigError
from cuecraft.fuser import ConditionFuser
from cuecraft.guidance import AttributeDropout, ClassifierFreeGuidanceDropout
from cuecraft.provider import ConditionProvider
from cuecraft.stack import ConditioningStack

EXAMPLES = Path(__file__).parent / "examples"
DEFAULT_CONFIG = EXAMPLES / "default.json"
DEFAULT_METADATA = EXAMPLES / "default_metadata.json"


def read_file(path: str | Path) -> Any:
    """Parse a JSON or YAML file (by suffix); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except ValueError as error:  # json.JSONDecodeError and yaml.YAMLError's parse errors
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {error}") from None
    except Exception as error:  # yaml raises its own hierarchy
        raise ConfigError(f"{path}: cannot be parsed: {error}") from None


def build_stack(config: ConditioningConfig | Mapping[str, Any] | str | Path, *, seed: int | None = None) -> ConditioningStack:
    """Build provider, fuser and dropouts from a config, checking everything before returning.

    ``seed`` makes the random initialisation of the conditioners' weights reproducible without
    touching the global random state.
    """
    if isinstance(config, (str, Path)):
        config = read_file(config)
    if not isinstance(config, ConditioningConfig):
        config = parse_config(config)

    problems: list[str] = []
    conditioners = {}
    rng = torch.random.fork_rng() if seed is not None else nullcontext()
    with rng:
        if seed is not None:
            torch.manual_seed(seed)
        for i, spec in enumerate(config.conditioners):
            settings = dict(spec.config)
            try:
                accepted = inspect.signature(conditioner_class(spec.type).__init__).parameters
                if "output_dim" in accepted and "output_dim" not in settings:
                    settings["output_dim"] = config.cond_dim
                conditioners[spec.id] = build_conditioner(spec.type, settings)
            except ConfigError as error:
                prefix = f"conditioners[{i}]." if error.problems[0].startswith("type:") else f"conditioners[{i}].config."
                problems += [prefix + p for p in error.problems]
    if problems:
        raise ConfigError(problems)

    routing: dict[str, list[str]] = {}
    for spec in config.conditioners:
        for role in spec.roles:
            routing.setdefault(role, []).append(spec.id)
    provider = ConditionProvider(conditioners, config.default_keys)
    fuser = ConditionFuser(routing, config.fuser.cross_attention_pos_emb,
                           config.fuser.cross_attention_pos_emb_scale)
    fuser.check_shapes({n: (c.output_length, c.output_dim) for n, c in conditioners.items()})
    try:
        attribute_dropout = AttributeDropout(config.dropout.attributes) if config.dropout.attributes else None
    except ConfigError as error:
        raise ConfigError([f"dropout.attributes.{p}" for p in error.problems]) from None
    cfg_dropout = ClassifierFreeGuidanceDropout(config.dropout.cfg) if config.dropout.cfg else None
    types = {spec.id: spec.type for spec in config.conditioners}
    return ConditioningStack(provider, fuser, types, cfg_dropout, attribute_dropout)
