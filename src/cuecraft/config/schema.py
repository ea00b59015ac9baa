"""cuecraft's own conditioning config, validated strictly at the edge.

A config (JSON or YAML) looks like::

    {
      "cond_dim": 64,                       # default output_dim of every conditioner
      "conditioners": [
        {"id": "prompt", "type": "lut", "roles": ["cross"],
         "config": {"n_bins": 4096, "dim": 64}},
        {"id": "seconds_total", "type": "number", "roles": ["cross", "global"],
         "config": {"min_val": 0, "max_val": 512}}
      ],
      "default_keys": {"prompt": "description"},
      "fuser": {"cross_attention_pos_emb": false, "cross_attention_pos_emb_scale": 1.0},
      "dropout": {"cfg": 0.1, "attributes": {"text": {"prompt": 0.2}}}
    }

Unknown keys, wrong types and out-of-range values are errors whose path names the field
(``conditioners[1].config.min_val``); all errors of a file are reported together.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from cuecraft.errors import ConfigError
from cuecraft.fuser import FUSER_ROLES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ConditionerSpec(_Strict):
    id: StrictStr = Field(min_length=1)  # the condition's name; also the metadata key it reads
    type: StrictStr  # a registered conditioner type (see cuecraft.conditioners.registered_conditioners)
    config: dict[str, Any] = Field(default_factory=dict)  # the conditioner's own settings
    roles: list[StrictStr] = Field(min_length=1)  # fuser roles this condition feeds


class FuserSpec(_Strict):
    cross_attention_pos_emb: StrictBool = False  # sinusoidal positions on the cross-attention source
    cross_attention_pos_emb_scale: StrictFloat | StrictInt = 1.0


class DropoutSpec(_Strict):
    cfg: StrictFloat | StrictInt = Field(default=0.0, ge=0, le=1)  # classifier-free guidance dropout
    attributes: dict[StrictStr, dict[StrictStr, StrictFloat | StrictInt]] = Field(default_factory=dict)


class GuidanceSpec(_Strict):
    scale: StrictFloat | StrictInt = Field(default=1.0, ge=0)  # classifier-free guidance scale at inference
    rescale_phi: StrictFloat | StrictInt = Field(default=0.0, ge=0, le=1)  # std rescaling (0: off)


class BackboneSpec(_Strict):
    """Widths the backbone expects; each given one is checked against the routed conditions."""

    cross_attention_dim: StrictInt | None = Field(default=None, ge=1)  # token width of ``cross``
    global_dim: StrictInt | None = Field(default=None, ge=1)  # ΣD of ``global``
    prepend_dim: StrictInt | None = Field(default=None, ge=1)  # token width of ``prepend``
    input_concat_dim: StrictInt | None = Field(default=None, ge=1)  # ΣD of ``input_concat``


class ConditioningConfig(_Strict):
    cond_dim: StrictInt = Field(ge=1)  # output_dim given to conditioners that do not set their own
    conditioners: list[ConditionerSpec] = Field(min_length=1)
    default_keys: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    # Conditions whose metadata values are already embeddings ([T, D] or [D] tensors).
    pre_encoded_keys: list[StrictStr] = Field(default_factory=list)
    fuser: FuserSpec = Field(default_factory=FuserSpec)
    dropout: DropoutSpec = Field(default_factory=DropoutSpec)
    guidance: GuidanceSpec = Field(default_factory=GuidanceSpec)
    backbone: BackboneSpec = Field(default_factory=BackboneSpec)


def field_path(location: tuple[Any, ...]) -> str:
    """('conditioners', 2, 'config') -> 'conditioners[2].config'."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def parse_config(data: Any) -> ConditioningConfig:
    """Validate a config mapping; a ConfigError lists every problem with its field path."""
    try:
        config = ConditioningConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError([
            f"{field_path(e['loc'])}: {e['msg']}; got {_short(e.get('input'))}" for e in error.errors()
        ]) from None
    problems = []
    ids = [spec.id for spec in config.conditioners]
    for i, spec in enumerate(config.conditioners):
        if ids.index(spec.id) != i:
            problems.append(f"conditioners[{i}].id: {spec.id!r} is already used by conditioners[{ids.index(spec.id)}]")
        for j, role in enumerate(spec.roles):
            if role not in FUSER_ROLES:
                problems.append(f"conditioners[{i}].roles[{j}]: unknown role {role!r}; valid roles: {', '.join(FUSER_ROLES)}")
    for i, key in enumerate(config.pre_encoded_keys):
        if key not in ids:
            problems.append(f"pre_encoded_keys[{i}]: no conditioner has id {key!r}; ids: {ids}")
    for name in config.default_keys:
        if name not in ids:
            problems.append(f"default_keys.{name}: no conditioner has id {name!r}; ids: {ids}")
    if problems:
        raise ConfigError(problems)
    return config


def dump_config(config: ConditioningConfig) -> dict[str, Any]:
    """The canonical mapping of ``config`` (defaults left out), ready to write as JSON or YAML."""
    return config.model_dump(mode="json", exclude_defaults=True)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
