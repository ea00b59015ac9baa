"""Classifier-free guidance: dropout of attributes in training, guided predictions at inference.

Both sides make null attributes through one path, ``ConditioningAttributes.with_nulls``, so the
null condition a model learns in training is exactly the one its unconditional branch sees.

Notation: B batch; predictions are [B, C, ...] (channels on dim 1, as stable-audio-tools').
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from dataclasses import replace

from cuecraft.attributes import ATTRIBUTE_KINDS, AttributeKind, ConditioningAttributes
from cuecraft.errors import ConditioningInputError, ConfigError, FusionError
from cuecraft.fuser import FusedInputs

# How the unconditional branch is made: ``attributes`` (cuecraft: every attribute None, through
# the conditioners' null conditions, the same nulls as training dropout) or ``zeros``
# (stable-audio-tools' DiT: the fused inputs of the conditional branch replaced by zeros of their
# shape, with False masks).
GUIDANCE_NULLS = ("attributes", "zeros")
# The FusedInputs fields of each role the unconditional branch can keep from the conditional one.
ROLE_FIELDS = {
    "cross": ("cross_attention_src", "cross_attention_mask"),
    "prepend": ("prepend_cond", "prepend_mask"),
    "global": ("global_cond",),
    "input_concat": ("input_concat",),
}


def _check_probability(path: str, p: object) -> list[str]:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        return [f"{path}: expected a probability in [0, 1]; got {p!r}"]
    return []


def _check_batch(attributes: Sequence[ConditioningAttributes]) -> None:
    if isinstance(attributes, ConditioningAttributes) or not all(
        isinstance(a, ConditioningAttributes) for a in attributes
    ):
        raise ConditioningInputError(
            "dropout acts on a list of ConditioningAttributes; convert metadata first with "
            "ConditionProvider.to_attributes(batch)"
        )


DROPOUT_DRAWS = ("item", "batch")  # one draw per item (cuecraft), or one per batch (AudioCraft's)


def _check_per(per: object) -> list[str]:
    return [] if per in DROPOUT_DRAWS else [f"per: expected one of {', '.join(DROPOUT_DRAWS)}; got {per!r}"]


def check_keep_kinds(keep_kinds: object) -> list[str]:
    """ConfigError lines for ``keep_kinds`` (attribute kinds guidance leaves as they are)."""
    if isinstance(keep_kinds, str) or not isinstance(keep_kinds, Sequence):
        return [f"keep_kinds: expected a list of attribute kinds; got {keep_kinds!r}"]
    return [f"keep_kinds: {k!r} is not an attribute kind; kinds: {', '.join(ATTRIBUTE_KINDS)}"
            for k in keep_kinds if k not in ATTRIBUTE_KINDS]


def _nulled(item: ConditioningAttributes, keep_kinds: Sequence[str]) -> ConditioningAttributes:
    """``item`` with every attribute None but those of ``keep_kinds``."""
    if not keep_kinds:
        return item.with_nulls()
    return item.with_nulls({kind: list(getattr(item, kind)) for kind in ATTRIBUTE_KINDS if kind not in keep_kinds})


class ClassifierFreeGuidanceDropout:
    """With probability ``p`` per item, replace all of an item's attributes by None.

    ``per="batch"`` draws once for the whole batch (AudioCraft's: all items or none), a
    ``compat: exact`` setting. ``keep_kinds``: attribute kinds left as they are (AudioCraft's
    CFG dropout, also its unconditional branch, never drops ``joint_embed``: CLAP; ``compat:
    exact``). Call with a ``torch.Generator`` to make the draws reproducible.
    Returns a new list; the given attributes are not modified.
    """

    def __init__(self, p: float, per: str = "item", keep_kinds: Sequence[str] = ()):
        problems = _check_probability("p", p) + _check_per(per) + check_keep_kinds(keep_kinds)
        if problems:
            raise ConfigError(problems)
        self.p = float(p)
        self.per = per
        self.keep_kinds = tuple(keep_kinds)

    def __call__(self, attributes: Sequence[ConditioningAttributes],
                 generator: torch.Generator | None = None) -> list[ConditioningAttributes]:
        _check_batch(attributes)
        if self.per == "batch":
            drop = (torch.rand(1, generator=generator) < self.p).expand(len(attributes))
        else:
            drop = torch.rand(len(attributes), generator=generator) < self.p
        return [_nulled(a, self.keep_kinds) if d else a for a, d in zip(attributes, drop.tolist())]

    def __repr__(self) -> str:
        per = '' if self.per == 'item' else ', per=' + repr(self.per)
        keep = f", keep_kinds={list(self.keep_kinds)}" if self.keep_kinds else ''
        return f"ClassifierFreeGuidanceDropout(p={self.p}{per}{keep})"


class AttributeDropout:
    """Per attribute and per item, replace a value by None with its own probability.

    Args:
        p: ``{kind: {name: probability}}``, e.g. ``{"text": {"genre": 0.5}, "wav": {"melody": 0.25}}``.

    The draws for a batch are one [B, N] tensor over the N configured attributes (in the order
    given), from the generator passed at call time; with ``per="batch"`` one [1, N] draw for the
    whole batch (AudioCraft's).
    """

    def __init__(self, p: Mapping[AttributeKind, Mapping[str, float]], per: str = "item"):
        problems = _check_per(per)
        self.per = per
        self.entries: list[tuple[AttributeKind, str, float]] = []
        for kind, by_name in p.items():
            if kind not in ATTRIBUTE_KINDS:
                problems.append(f"{kind}: unknown attribute kind; valid kinds: {', '.join(ATTRIBUTE_KINDS)}")
                continue
            for name, probability in by_name.items():
                found = _check_probability(f"{kind}.{name}", probability)
                problems += found
                if not found:
                    self.entries.append((kind, name, float(probability)))
        if problems:
            raise ConfigError(problems)

    def __call__(self, attributes: Sequence[ConditioningAttributes],
                 generator: torch.Generator | None = None) -> list[ConditioningAttributes]:
        _check_batch(attributes)
        if not self.entries:
            return list(attributes)
        probabilities = torch.tensor([e[2] for e in self.entries])
        rows = 1 if self.per == "batch" else len(attributes)
        drawn = torch.rand(rows, len(self.entries), generator=generator) < probabilities
        drop = drawn.expand(len(attributes), -1).tolist()
        result = []
        for item, row in zip(attributes, drop):
            names: dict[AttributeKind, list[str]] = {}
            for (kind, name, _), dropped in zip(self.entries, row):
                if dropped:
                    names.setdefault(kind, []).append(name)
            result.append(item.with_nulls(names) if names else item)
        return result

    def __repr__(self) -> str:
        return f"AttributeDropout({[(k, n, p) for k, n, p in self.entries]})"


def unconditional(attributes: Sequence[ConditioningAttributes],
                  keep_kinds: Sequence[str] = ()) -> list[ConditioningAttributes]:
    """The unconditional branch: every attribute None (the same nulls dropout makes), but
    those of ``keep_kinds`` (as ``ClassifierFreeGuidanceDropout``'s)."""
    _check_batch(attributes)
    problems = check_keep_kinds(keep_kinds)
    if problems:
        raise ConfigError(problems)
    return [_nulled(a, keep_kinds) for a in attributes]


def guidance_batch(attributes: Sequence[ConditioningAttributes],
                   negative: Sequence[ConditioningAttributes] | None = None,
                   keep_kinds: Sequence[str] = ()) -> list[ConditioningAttributes]:
    """2B items for one backbone pass: the conditional items, then their negative (when given)
    or unconditional counterparts (``keep_kinds`` as in ``unconditional``). Split the
    prediction with ``apply_guidance``."""
    _check_batch(attributes)
    if negative is None:
        return list(attributes) + unconditional(attributes, keep_kinds)
    _check_batch(negative)
    if len(negative) != len(attributes):
        raise ConditioningInputError(
            f"negative conditions must match the batch: {len(negative)} given for {len(attributes)} items"
        )
    return list(attributes) + list(negative)


def combine_guidance(conditional: torch.Tensor, unconditional: torch.Tensor, scale: float,
                     rescale_phi: float = 0.0) -> torch.Tensor:
    """``u + scale * (c - u)``, optionally rescaled towards the conditional prediction's std.

    With ``rescale_phi`` φ > 0 the result g becomes ``φ * g * std(c) / std(g) + (1 - φ) * g``,
    the std taken over dim 1 (channels) as stable-audio-tools does. Shapes: [B, C, ...].
    """
    if conditional.shape != unconditional.shape:
        raise ValueError(f"predictions differ in shape: {tuple(conditional.shape)} vs {tuple(unconditional.shape)}")
    if not 0.0 <= rescale_phi <= 1.0:
        raise ValueError(f"rescale_phi must be in [0, 1]; got {rescale_phi}")
    guided = unconditional + (conditional - unconditional) * scale
    if rescale_phi == 0.0 or scale == 1.0:
        return guided
    return rescale_guided(guided, conditional, rescale_phi)


def rescale_guided(guided: torch.Tensor, conditional: torch.Tensor, rescale_phi: float) -> torch.Tensor:
    """``φ * g * std(c) / std(g) + (1 - φ) * g``, the std over dim 1 (channels): [B, C, ...]."""
    std_conditional = conditional.std(dim=1, keepdim=True)
    std_guided = guided.std(dim=1, keepdim=True)
    ratio = torch.where(std_guided > 0, std_conditional / std_guided, torch.ones_like(std_guided))
    return rescale_phi * guided * ratio + (1.0 - rescale_phi) * guided


def apply_guidance(prediction: torch.Tensor, scale: float, rescale_phi: float = 0.0) -> torch.Tensor:
    """Split a [2B, ...] prediction made on ``guidance_batch`` items and combine it: [B, ...]."""
    if prediction.shape[0] % 2:
        raise ValueError(f"a guidance batch has an even size (conditional + unconditional); got {prediction.shape[0]}")
    conditional, other = prediction.chunk(2, dim=0)
    return combine_guidance(conditional, other, scale, rescale_phi)


def check_guidance_nulls(keep_roles: Sequence[str], null: str) -> list[str]:
    """ConfigError lines for the unconditional branch's settings (``guidance.keep_roles``,
    ``guidance.null``)."""
    problems = []
    if isinstance(keep_roles, str) or not all(isinstance(r, str) for r in keep_roles):
        problems.append(f"keep_roles: expected a list of roles; got {keep_roles!r}")
    else:
        for role in keep_roles:
            if role not in ROLE_FIELDS:
                problems.append(f"keep_roles: {role!r} cannot be kept; roles: {', '.join(ROLE_FIELDS)}")
    if null not in GUIDANCE_NULLS:
        problems.append(f"null: expected one of {', '.join(GUIDANCE_NULLS)}; got {null!r}")
    return problems


def _zeros_like(value: torch.Tensor | None) -> torch.Tensor | None:
    return None if value is None else torch.zeros_like(value)


def unconditional_inputs(conditional: FusedInputs, null: FusedInputs | None = None, *,
                         keep_roles: Sequence[str] = (), mode: str = "attributes") -> FusedInputs:
    """The unconditional (or negative) branch's FusedInputs [B, ...] for one guided pass.

    ``mode="attributes"``: ``null`` (the fused null conditions of ``unconditional(attributes)``,
    or negative conditions) with the fields of ``keep_roles`` taken from ``conditional``.
    ``mode="zeros"``: ``conditional`` with every role but ``keep_roles`` replaced by zeros (masks
    False), stable-audio-tools' unconditional branch: its DiT keeps the global condition
    (seconds_start / seconds_total) and the input-concat condition in both halves and zeroes the
    cross-attention and prepend inputs. With ``null`` given (negative conditions) ``mode`` is
    not used: the negative conditions keep ``keep_roles`` from ``conditional``.

    The fused ``input`` (prepend tokens in front of the input) cannot be split by role: roles
    are kept only for inputs fused without one.
    """
    problems = check_guidance_nulls(keep_roles, mode)
    if problems:
        raise ConfigError(problems)
    if null is None and mode == "attributes":
        raise FusionError("unconditional_inputs: mode 'attributes' needs the fused null conditions (null=...)")
    if (keep_roles or null is None) and conditional.input is not None:
        raise FusionError("unconditional_inputs: keep_roles and mode 'zeros' act on inputs fused without an input "
                          "sequence; fuse with fuser(conditions) and hand x to the backbone separately")
    if null is None:  # zeros of the conditional's shapes
        null = FusedInputs(**{name: _zeros_like(getattr(conditional, name))
                              for name in ("cross_attention_src", "cross_attention_mask", "prepend_cond",
                                           "prepend_mask", "global_cond", "input_concat")})
    kept = {name: getattr(conditional, name) for role in keep_roles for name in ROLE_FIELDS[role]}
    return replace(null, **kept) if kept else null
