"""``DiTConfig``: the settings of cuecraft's diffusion transformer, validated in one place.

Build it from keywords or, at a config edge, from a mapping with ``DiTConfig.from_dict`` (unknown
and missing keys are errors there, with the field's path). Every problem is reported together as
one ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cuecraft._text import short_repr
from cuecraft.errors import ConfigError

POSITIONS = ("rotary", "sinusoidal")
# Fuser role -> the DiTConfig field giving the width the DiT reads from it.
ROLE_WIDTHS = {"cross": "cross_attention_dim", "global": "global_dim", "prepend": "prepend_dim",
               "input_concat": "input_concat_dim"}
# Roles that add to the input sequence itself. The fuser can only apply them to an input, and the
# DiT's conditions are fused once per batch without one, so the DiT cannot read them.
INPUT_ROLES = ("sum", "input_interpolate")
# Bounds checked before anything is allocated (a depth of 10^6 exhausts memory while building).
MAX_WIDTH = 65_536  # dim, latent_dim, the condition widths, timestep_dim
MAX_DEPTH = 1_024
MAX_PATCH = 1_024  # frames per token
MAX_MLP_RATIO = 64.0
MAX_PARAMETERS = 2**31  # about 8 GiB of float32 weights (``parameter_estimate``)


@dataclass(frozen=True)
class DiTConfig:
    latent_dim: int  # D: channels of the representation, x [B, D, L]
    patch_size: int = 1  # frames per token
    dim: int = 256  # transformer width
    depth: int = 8  # number of blocks
    heads: int = 4  # attention heads; dim must be a multiple
    mlp_ratio: float = 4.0  # MLP hidden width = int(dim * mlp_ratio)
    positions: str = "rotary"  # "rotary" (on q/k of self-attention) or "sinusoidal" (added to tokens)
    rotary_base: float = 10000.0  # rotary frequency base
    cross_attention_dim: int | None = None  # width of fused.cross_attention_src (None: no cross-attention)
    global_dim: int | None = None  # width of fused.global_cond (None: none)
    prepend_dim: int | None = None  # width of fused.prepend_cond (None: none)
    input_concat_dim: int = 0  # channels of fused.input_concat concatenated to x (0: none)
    timestep_dim: int = 256  # sinusoidal timestep features before the timestep MLP (even)
    timestep_scale: float = 1000.0  # t is multiplied by this before its features (1000 for t in [0, 1])
    qk_norm: bool = True  # RMS-normalise queries and keys per head
    output_conv: int = 0  # kernel (odd, frames) of a residual conv along time after unpatchifying; 0: none
    norm_eps: float = 1e-6  # epsilon of every layer norm
    # Continuation and inpainting: D + 1 more input channels per frame, the known latent (zero where
    # unknown) and a 0/1 mask (1 = known frame); the output stays D channels (cuecraft.models.dit).
    inpaint: bool = False

    def __post_init__(self) -> None:
        problems = _problems(dataclasses.asdict(self))
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_dict(cls, mapping: Any, *, path: str = "") -> DiTConfig:
        """A config from ``mapping`` (e.g. the ``backbone`` block); ``path`` prefixes the fields
        in the error (``backbone`` -> ``backbone.heads``). Unknown and missing keys are errors."""
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"{path or 'DiTConfig'}: expected a mapping of settings; got {type(mapping).__name__}")
        prefix = f"{path}." if path else ""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        problems = [f"{prefix}{key}: unknown key; valid keys: {', '.join(fields)}"
                    for key in mapping if key not in fields]
        problems += [f"{prefix}{name}: required" for name, f in fields.items()
                     if f.default is dataclasses.MISSING and name not in mapping]
        known = {key: value for key, value in mapping.items() if key in fields}
        defaults = {name: f.default for name, f in fields.items() if f.default is not dataclasses.MISSING}
        problems += [prefix + p for p in _problems({**defaults, **known})]
        if problems:
            raise ConfigError(problems)
        return cls(**known)

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def mlp_dim(self) -> int:
        return int(self.dim * self.mlp_ratio)

    @property
    def input_channels(self) -> int:
        """Channels per frame the patch embedding reads: x, input_concat, and with ``inpaint`` the
        known latent and its mask (D + 1)."""
        return self.latent_dim + self.input_concat_dim + (self.latent_dim + 1 if self.inpaint else 0)

    def check_routing(self, routing: Mapping[str, Sequence[str]], *, path: str = "backbone") -> None:
        """Build-time check of a fuser routing ``{role: [names]}`` against what the DiT reads.

        Raises ConfigError when a role the DiT cannot read (``sum``, ``input_interpolate``) is
        used, or when a role is routed but its width field is unset, or the reverse.
        """
        prefix = f"{path}." if path else ""
        problems = []
        for role in INPUT_ROLES:
            if routing.get(role):
                problems.append(f"fuser.{role}: the DiT does not support role '{role}' ({list(routing[role])}): "
                                "its conditions are fused once per batch without the input; route them to "
                                "'input_concat' instead")
        for role, field in ROLE_WIDTHS.items():
            width = getattr(self, field)
            routed = bool(routing.get(role))
            if routed and not width:
                problems.append(f"{prefix}{field}: conditions {list(routing[role])} are routed to '{role}' but "
                                f"{field} is {width!r}; set it to their width")
            elif width and not routed:
                problems.append(f"{prefix}{field}: is {width} but no condition is routed to '{role}'")
        if problems:
            raise ConfigError(problems)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite int or float (a huge int is finite; NaN and infinities are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def parameter_estimate(values: Mapping[str, Any]) -> int:
    """An upper estimate of a DiT's parameter count from its settings (checked ones), without building it."""
    dim, depth, patch, latent = values["dim"], values["depth"], values["patch_size"], values["latent_dim"]
    mlp = int(dim * values["mlp_ratio"])
    cross, global_, prepend = (values.get(name) or 0 for name in ("cross_attention_dim", "global_dim", "prepend_dim"))
    inputs = (2 * latent + 1 + values.get("input_concat_dim", 0)) * patch
    per_block = 16 * dim * dim + 2 * dim * mlp + 2 * cross * dim + 16 * dim
    outside = dim * (inputs + values.get("timestep_dim", 256) + global_ + prepend + 5 * dim + latent * patch) + 4 * dim
    return depth * per_block + outside


def _problems(values: Mapping[str, Any]) -> list[str]:
    """Every problem of ``values`` as ``"field: message"``; absent fields are skipped (the
    caller reports them as missing)."""
    problems: list[str] = []

    def check(field: str, ok: Callable[[Any], bool], allowed: str) -> bool:
        if field not in values:
            return False
        if not ok(values[field]):
            problems.append(f"{field}: expected {allowed}; got {short_repr(values[field])}")
            return False
        return True

    positive = lambda v: _is_int(v) and 1 <= v <= MAX_WIDTH
    number_in = lambda low, high: (lambda v: _is_number(v) and low < v <= high)
    sizes_ok = [check("latent_dim", positive, f"an integer in [1, {MAX_WIDTH:,}]"),
                check("patch_size", lambda v: _is_int(v) and 1 <= v <= MAX_PATCH, f"an integer in [1, {MAX_PATCH:,}]"),
                check("depth", lambda v: _is_int(v) and 1 <= v <= MAX_DEPTH, f"an integer in [1, {MAX_DEPTH:,}]")]
    shape_ok = all([check("dim", positive, f"an integer in [1, {MAX_WIDTH:,}]"),
                    check("heads", positive, f"an integer in [1, {MAX_WIDTH:,}]")])
    mlp_ok = check("mlp_ratio", number_in(0, MAX_MLP_RATIO), f"a number in (0, {MAX_MLP_RATIO:g}]")
    positions_ok = check("positions", lambda v: v in POSITIONS, f"one of {', '.join(POSITIONS)}")
    check("rotary_base", number_in(1, 1e12), "a number in (1, 1e12]")
    for field in ("cross_attention_dim", "global_dim", "prepend_dim"):
        sizes_ok.append(check(field, lambda v: v is None or positive(v), f"None or an integer in [1, {MAX_WIDTH:,}]"))
    sizes_ok.append(check("input_concat_dim", lambda v: _is_int(v) and 0 <= v <= MAX_WIDTH,
                          f"an integer in [0, {MAX_WIDTH:,}] (0: no input_concat)"))
    sizes_ok.append(check("timestep_dim", lambda v: positive(v) and v % 2 == 0,
                          f"an even integer in [2, {MAX_WIDTH:,}]"))
    check("timestep_scale", number_in(0, 1e9), "a number in (0, 1e9]")
    check("qk_norm", lambda v: isinstance(v, bool), "true or false")
    check("output_conv", lambda v: _is_int(v) and (v == 0 or (v % 2 == 1 and 1 <= v <= 31)),
          "0 (none) or an odd kernel size in [1, 31]")
    check("inpaint", lambda v: isinstance(v, bool), "true or false")
    check("norm_eps", number_in(0, 1), "a number in (0, 1]")

    if not shape_ok:
        return problems
    dim, heads = values["dim"], values["heads"]
    if dim % heads:
        problems.append(f"dim: {dim} is not a multiple of heads ({heads})")
    elif positions_ok and values["positions"] == "rotary" and (dim // heads) % 2:
        problems.append(f"heads: rotary positions need an even head width; dim {dim} / heads {heads} = {dim // heads}")
    if positions_ok and values["positions"] == "sinusoidal" and dim % 2:
        problems.append(f"dim: sinusoidal positions need an even width; got {dim}")
    if mlp_ok and int(dim * values["mlp_ratio"]) < 1:
        problems.append(f"mlp_ratio: dim {dim} * mlp_ratio {values['mlp_ratio']} leaves no MLP width")
    elif mlp_ok and all(sizes_ok) and parameter_estimate(values) > MAX_PARAMETERS:
        problems.append(f"depth: a DiT of depth {values['depth']} and width {dim} (mlp_ratio {values['mlp_ratio']:g}) "
                        f"has about {parameter_estimate(values):,} parameters; at most {MAX_PARAMETERS:,}")
    return problems
