"""Numeric conditioners: integers by table (``int``), reals by Fourier features (``number``).

Notation: B batch, D width. Both output [B, 1, output_dim].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
import torch
from torch import nn

from cuecraft.condition import Condition
from cuecraft.attributes import AttributeValue
from cuecraft.conditioners.base import BaseConditioner, ValueTokens, check_int, check_real, index_tokens
from cuecraft.conditioners.registry import register_conditioner
from cuecraft.errors import ConditioningInputError, ConfigError


@register_conditioner("int")
class IntConditioner(BaseConditioner):
    """An integer in [min_val, max_val] (values outside are clamped), embedded by a table.

    Args:
        output_dim: condition width.
        min_val, max_val: the range; the table has ``max_val - min_val + 1`` rows and value v
            uses row ``v - min_val``, so any ``min_val`` works.
        project_out: see BaseConditioner.

    Whole-valued floats (120.0) are accepted; 120.5 is an error. (stable-audio-tools indexes
    its table by the raw value, which only works for ``min_val = 0``; its weights trained with
    ``min_val = 0`` load here unchanged.)
    """

    kind = "number"

    def __init__(self, output_dim: int, min_val: int = 0, max_val: int = 512, project_out: bool = False):
        problems = [*check_int("min_val", min_val), *check_int("max_val", max_val)]
        if not problems and max_val < min_val:
            problems.append(f"max_val: must be >= min_val ({min_val}); got {max_val}")
        if problems:
            raise ConfigError(problems)
        super().__init__(output_dim, output_dim, project_out)
        self.min_val = min_val
        self.max_val = max_val
        self.int_embedder = nn.Embedding(max_val - min_val + 1, output_dim)

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> ValueTokens:
        low, high = self.min_val, self.max_val
        if set(map(type, values)) == {int}:  # the common case, in bulk (a huge int takes the loop)
            try:
                ids = torch.tensor(values, dtype=torch.long).clamp_(low, high).sub_(low).unsqueeze(1)
            except (OverflowError, RuntimeError, ValueError):
                pass
            else:
                return ValueTokens(ids, torch.ones(len(values), 1, dtype=torch.bool))
        rows = []
        for i, value in enumerate(values):
            if value is None:
                rows.append(None)
                continue
            if value.__class__ is float and not value.is_integer():  # type: ignore[union-attr]
                raise ConditioningInputError(f"item {i}: expected a whole number; got {value!r}")
            rows.append(min(max(int(value), low), high) - low)  # type: ignore[arg-type]
        return index_tokens(rows)

    def encode(self, tokens: ValueTokens) -> Condition:
        return Condition(self.int_embedder(tokens.values), tokens.mask)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}, " + super().extra_repr()


class LearnedFourierFeatures(nn.Module):
    """x [N] -> [N, 1 + 2F]: ``[x, sin(2π x w), cos(2π x w)]`` with F learned frequencies w."""

    def __init__(self, n_frequencies: int):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(n_frequencies))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(-1)  # [N] -> [N, 1]
        phases = x * self.weights.unsqueeze(0) * 2 * math.pi  # [N, F]
        return torch.cat((x, phases.sin(), phases.cos()), dim=-1)


class NumberEmbedder(nn.Module):
    """x [N] in [0, 1] -> [N, features]: learned Fourier features then a linear layer.

    The submodule names (``embedding.0.weights``, ``embedding.1.weight``/``bias``) are those of
    stable-audio-tools' NumberEmbedder, so its trained weights load as they are.
    """

    def __init__(self, features: int, n_frequencies: int = 128):
        super().__init__()
        self.features = features
        self.embedding = nn.Sequential(
            LearnedFourierFeatures(n_frequencies), nn.Linear(2 * n_frequencies + 1, features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x)


FLOAT32_BOUND = 1e38  # |min_val|, |max_val|: float32 holds them and their difference (max ~3.4e38)


@register_conditioner("number")
class NumberConditioner(BaseConditioner):
    """A real number, clamped to [min_val, max_val], scaled to [0, 1] and embedded.

    Args:
        output_dim: condition width.
        min_val, max_val: the range (``min_val < max_val``).
        project_out: see BaseConditioner.

    The embedding is 128 learned frequencies w giving ``[n, sin(2π n w), cos(2π n w)]`` for the
    normalised value n, then Linear(257, output_dim), as stable-audio-tools computes it.
    """

    kind = "number"

    def __init__(self, output_dim: int, min_val: float = 0, max_val: float = 1, project_out: bool = False):
        problems = [*check_real("min_val", min_val), *check_real("max_val", max_val)]
        problems += [f"{name}: must be within +-{FLOAT32_BOUND:g} (values are scaled in float32); got {value:g}"
                     for name, value in (("min_val", min_val), ("max_val", max_val))
                     if not problems and abs(value) > FLOAT32_BOUND]
        if not problems and not min_val < max_val:
            problems.append(
                f"max_val: must be greater than min_val ({min_val}) so values can be scaled to "
                f"[0, 1]; got {max_val}"
            )
        if problems:
            raise ConfigError(problems)
        super().__init__(output_dim, output_dim, project_out)
        self.min_val = float(min_val)
        self.max_val = float(max_val)
        self.embedder = NumberEmbedder(features=output_dim)

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> ValueTokens:
        low, high = self.min_val, self.max_val
        # Clamped and scaled in float32 as stable-audio-tools does: [B, 1] in [0, 1]. A value too
        # large for float32 becomes inf and clamps to max_val; None takes min_val, so scales to 0.
        if None not in values:
            try:
                raw = torch.tensor(values, dtype=torch.float32)
            except (OverflowError, RuntimeError, ValueError):  # an int beyond int64: clamp in Python first
                raw = torch.tensor([float(min(max(v, low), high)) for v in values], dtype=torch.float32)  # type: ignore[type-var]
            normalised = raw.clamp_(low, high).sub_(low).div_(high - low)
            return ValueTokens(normalised.unsqueeze(1), torch.ones(len(values), 1, dtype=torch.bool))
        clamped = [low if v is None else float(min(max(v, low), high)) for v in values]  # type: ignore[type-var]
        mask = torch.tensor([v is not None for v in values], dtype=torch.bool).unsqueeze(1)
        normalised = (torch.tensor(clamped, dtype=torch.float32) - low) / (high - low)
        return ValueTokens(normalised.unsqueeze(1), mask)

    def encode(self, tokens: ValueTokens) -> Condition:
        dtype = self.embedder.embedding[1].weight.dtype
        values = tokens.values.to(dtype)  # [B, 1]
        embedding = self.embedder(values.reshape(-1)).reshape(*values.shape, -1)  # [B, 1, D]
        return Condition(embedding, tokens.mask)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}, " + super().extra_repr()
