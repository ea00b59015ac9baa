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

from typing import Annotated, Any

from pydantic import AllowInfNan, BaseModel, Strict, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from cuecraft._text import short_name, short_repr
from cuecraft.errors import ConfigError

# Every real-valued setting is finite (NaN or Infinity would give NaN conditions).
# An int is a real too, within float range (a 400-digit int would overflow converting).
MAX_REAL = 10**300
Real = Annotated[float, Strict(), AllowInfNan(False)] | Annotated[StrictInt, Field(ge=-MAX_REAL, le=MAX_REAL)]
MAX_WIDTH = 2**16  # the largest cond_dim or backbone width a config may ask for
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
    cross_attention_pos_emb_scale: Real = 1.0
    prepend_order: StrictStr = "listed"  # "listed" or "reversed" (AudioCraft's: the last first)


class DropoutSpec(_Strict):
    cfg: Real = Field(default=0.0, ge=0, le=1)  # classifier-free guidance dropout
    attributes: dict[StrictStr, dict[StrictStr, Real]] = Field(default_factory=dict)
    per: StrictStr = "item"  # draws per "item", or once per "batch" (AudioCraft's, compat exact)
    # Attribute kinds CFG (dropout and the unconditional branch) leaves as they are (AudioCraft's:
    # joint_embed, its CLAP is never dropped; compat exact).
    cfg_keep_kinds: list[StrictStr] = Field(default_factory=list)


class GuidanceGroupSpec(_Strict):
    """Guidance per condition group (cuecraft.guidance_groups): checked with the conditioners in build."""

    conditions: list[StrictStr] | None = None  # the group's condition ids (None: the prompt text encoders)
    scale: Real = Field(default=0.0, ge=0)  # the group's scale s_g (0: off; cuecraft generate --guidance-text)
    branch: StrictStr = "without"  # "without" the group (MusicGen-Style) or "only" the group (JASCO)


class GuidanceSpec(_Strict):
    scale: Real = Field(default=1.0, ge=0)  # classifier-free guidance scale at inference
    rescale_phi: Real = Field(default=0.0, ge=0, le=1)  # std rescaling (0: off)
    # Roles the unconditional branch keeps from the conditional one (stable-audio-tools: global,
    # input_concat), and how it makes the rest: "attributes" (null conditions) or "zeros".
    keep_roles: list[StrictStr] = Field(default_factory=list)
    null: StrictStr = "attributes"
    group: GuidanceGroupSpec | None = None  # a second scale for a group of conditions (e.g. the text)


class BackboneSpec(_Strict):
    """Widths the backbone expects; each given one is checked against the routed conditions."""

    cross_attention_dim: StrictInt | None = Field(default=None, ge=1, le=MAX_WIDTH)  # token width of ``cross``
    global_dim: StrictInt | None = Field(default=None, ge=1, le=MAX_WIDTH)  # ΣD of ``global``
    prepend_dim: StrictInt | None = Field(default=None, ge=1, le=MAX_WIDTH)  # token width of ``prepend``
    input_concat_dim: StrictInt | None = Field(default=None, ge=1, le=MAX_WIDTH)  # ΣD of ``input_concat``


class ConditioningConfig(_Strict):
    cond_dim: StrictInt = Field(ge=1, le=MAX_WIDTH)  # output_dim given to conditioners that do not set their own
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
        part = part if isinstance(part, int) else short_name(part)
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
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
            problems.append(f"conditioners[{i}].id: {short_repr(spec.id)} is already used by conditioners[{ids.index(spec.id)}]")
        if "." in spec.id:  # torch module names cannot hold one
            problems.append(f"conditioners[{i}].id: must not contain '.' (ids name modules); got {short_repr(spec.id)}")
        for j, role in enumerate(spec.roles):
            if role not in FUSER_ROLES:
                problems.append(f"conditioners[{i}].roles[{j}]: unknown role {short_repr(role)}; valid roles: {', '.join(FUSER_ROLES)}")
    for i, key in enumerate(config.pre_encoded_keys):
        if key not in ids:
            problems.append(f"pre_encoded_keys[{i}]: no conditioner has id {short_repr(key)}; ids: {short_repr(ids, 200)}")
    for name in config.default_keys:
        if name not in ids:
            problems.append(f"default_keys.{short_name(name)}: no conditioner has id {short_repr(name)}; ids: {short_repr(ids, 200)}")
    if problems:
        raise ConfigError(problems)
    return config


def dump_config(config: ConditioningConfig) -> dict[str, Any]:
    """The canonical mapping of ``config`` (defaults left out), ready to write as JSON or YAML."""
    return config.model_dump(mode="json", exclude_defaults=True)


def _short(value: Any) -> str:
    return short_repr(value)
