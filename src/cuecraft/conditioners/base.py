"""The conditioner contract: ``tokenize`` (CPU) then ``forward`` -> ``Condition``.

Notation: B batch, T condition length, D width.

A conditioner consumes one attribute kind (text, wav, joint_embed or number). ``tokenize(values)``
takes one value per item (None for "no value") and does all CPU-side preparation, returning CPU
tensors and never touching the device, so it can run in a data-loader worker. ``forward(tokens)``
moves the tokens to the conditioner's device, embeds them ([B, T, dim]), applies the optional
output projection to ``output_dim`` and zeroes every masked position, so padding and null
conditions are exact zeros whatever the projection's bias.

Null condition: a None value gives a row of zeros with an all-False mask. A batch where every
value is None has length ``null_length`` (1 unless a conditioner documents otherwise).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from cuecraft.attributes import AttributeKind, AttributeValue, check_value
from cuecraft.condition import Condition
from cuecraft.errors import ConfigError


class Tokens(NamedTuple):
    """A conditioner's CPU-side preparation of a batch.

    values: [B, T] ids or numbers (meaning is the conditioner's). mask: bool [B, T].
    """

    values: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device) -> Tokens:
        return Tokens(
            self.values.to(device, non_blocking=True), self.mask.to(device, non_blocking=True)
        )


class BaseConditioner(nn.Module, ABC):
    """Base of every conditioner.

    Args:
        dim: width of the conditioner's own embedding.
        output_dim: width of the returned condition.
        project_out: add a linear projection even when ``dim == output_dim``. A projection
            ``proj_out`` (Linear(dim, output_dim)) exists whenever the widths differ or this is
            set; otherwise ``proj_out`` is the identity (stable-audio-tools' convention).
    """

    kind: ClassVar[AttributeKind]
    # T of a batch where every value is None; a class default a conditioner may set per instance.
    null_length: int = 1
    # Length T of every output, or None when it depends on the input (a text's token count);
    # a class default a conditioner may set per instance (e.g. from its max_length).
    output_length: int | None = 1

    def __init__(self, dim: int, output_dim: int, project_out: bool = False):
        super().__init__()
        problems = [*check_int("dim", dim, minimum=1), *check_int("output_dim", output_dim, minimum=1)]
        if not isinstance(project_out, bool):
            problems.append(f"project_out: expected true or false; got {project_out!r}")
        if problems:
            raise ConfigError(problems)
        self.dim = dim
        self.output_dim = output_dim
        self.proj_out: nn.Module = (
            nn.Linear(dim, output_dim) if (dim != output_dim or project_out) else nn.Identity()
        )

    @property
    def device(self) -> torch.device:
        """Where the conditioner's parameters (else buffers) are; CPU when it has none."""
        for tensor in (*self.parameters(), *self.buffers()):
            return tensor.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of its parameters (else buffers); float32 when it has none."""
        for tensor in (*self.parameters(), *self.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
        return torch.float32

    def check_values(self, values: Sequence[Any]) -> list[AttributeValue]:
        """Check every value against this conditioner's kind; errors name the item index."""
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"tokenize takes a sequence of values, one per item; got {type(values).__name__}")
        if len(values) == 0:
            raise ValueError("tokenize needs at least one value (an empty batch has no shape)")
        kind = self.kind
        return [check_value(kind, value, lambda: f"item {i}") for i, value in enumerate(values)]

    @abstractmethod
    def tokenize(self, values: Sequence[Any]) -> Tokens:
        """CPU-side preparation of one value per item (None for no value)."""

    @abstractmethod
    def encode(self, tokens: Tokens) -> Condition:
        """Embed tokens already on this conditioner's device: [B, T, dim] and mask [B, T]."""

    def forward(self, tokens: Tokens) -> Condition:
        """Tokens -> Condition(embedding [B, T, output_dim], mask bool [B, T])."""
        embedding, mask = self.encode(tokens.to(self.device))
        embedding = self.proj_out(embedding)
        embedding = embedding * mask.unsqueeze(-1).to(embedding.dtype)
        return Condition(embedding, mask)

    def condition(self, values: Sequence[Any]) -> Condition:
        """``forward(tokenize(values))``."""
        return self(self.tokenize(values))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, output_dim={self.output_dim}"


def index_tokens(rows: Sequence[int | None]) -> Tokens:
    """One table row per item (None: no value) -> ids [B, 1] (0 where None) and mask [B, 1]."""
    ids = torch.tensor([0 if r is None else r for r in rows], dtype=torch.long).unsqueeze(1)
    mask = torch.tensor([r is not None for r in rows], dtype=torch.bool).unsqueeze(1)
    return Tokens(ids, mask)


def check_int(name: str, value: Any, *, minimum: int | None = None) -> list[str]:
    """Problems (as ConfigError lines) with an int-valued setting; empty when it is fine."""
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{name}: expected an int; got {type(value).__name__} {value!r}"]
    if minimum is not None and value < minimum:
        return [f"{name}: must be >= {minimum}; got {value}"]
    return []


def check_real(name: str, value: Any) -> list[str]:
    """Problems with a finite real-valued setting; empty when it is fine."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return [f"{name}: expected a finite number; got {type(value).__name__} {value!r}"]
    return []
