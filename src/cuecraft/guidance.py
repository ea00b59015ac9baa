"""Classifier-free guidance: dropout of attributes in training, guided predictions at inference.

Both sides make null attributes through one path, ``ConditioningAttributes.with_nulls``, so the
null condition a model learns in training is exactly the one its unconditional branch sees.

Notation: B batch; predictions are [B, C, ...] (channels on dim 1, as stable-audio-tools').
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from cuecraft.attributes import ATTRIBUTE_KINDS, AttributeKind, ConditioningAttributes
from cuecraft.errors import ConditioningInputError, ConfigError


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


class ClassifierFreeGuidanceDropout:
    """With probability ``p`` per item, replace all of an item's attributes by None.

    Call with a ``torch.Generator`` to make the draws reproducible. Returns a new list; the
    given attributes are not modified.
    """

    def __init__(self, p: float):
        problems = _check_probability("p", p)
        if problems:
            raise ConfigError(problems)
        self.p = float(p)

    def __call__(self, attributes: Sequence[ConditioningAttributes],
                 generator: torch.Generator | None = None) -> list[ConditioningAttributes]:
        _check_batch(attributes)
        drop = torch.rand(len(attributes), generator=generator) < self.p
        return [a.with_nulls() if d else a for a, d in zip(attributes, drop.tolist())]

    def __repr__(self) -> str:
        return f"ClassifierFreeGuidanceDropout(p={self.p})"


class AttributeDropout:
    """Per attribute and per item, replace a value by None with its own probability.

    Args:
        p: ``{kind: {name: probability}}``, e.g. ``{"text": {"genre": 0.5}, "wav": {"melody": 0.25}}``.

    The draws for a batch are one [B, N] tensor over the N configured attributes (in the order
    given), from the generator passed at call time.
    """

    def __init__(self, p: Mapping[AttributeKind, Mapping[str, float]]):
        problems = []
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
        drop = (torch.rand(len(attributes), len(self.entries), generator=generator) < probabilities).tolist()
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


def unconditional(attributes: Sequence[ConditioningAttributes]) -> list[ConditioningAttributes]:
    """The unconditional branch: every attribute None (the same nulls dropout makes)."""
    _check_batch(attributes)
    return [a.with_nulls() for a in attributes]


def guidance_batch(attributes: Sequence[ConditioningAttributes],
                   negative: Sequence[ConditioningAttributes] | None = None) -> list[ConditioningAttributes]:
    """2B items for one backbone pass: the conditional items, then their negative (when given)
    or unconditional counterparts. Split the prediction with ``apply_guidance``."""
    _check_batch(attributes)
    if negative is None:
        return list(attributes) + unconditional(attributes)
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
