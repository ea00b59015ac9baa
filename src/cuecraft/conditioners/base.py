"""The conditioner contract: ``tokenize`` (CPU) then ``forward`` -> ``Condition``.

Notation: B batch, T condition length, D width.

A conditioner consumes one attribute kind (text, wav, joint_embed, number or symbolic).
``tokenize(values, *, train=False, generator=None)`` takes one value per item (None for "no
value") and does all CPU-side preparation, returning CPU tensors and never touching the device.
It is stateless: it reads no module state (not ``self.training``), only its arguments, so it runs
in data-loader workers and other processes with exactly the result of the main process.
``train`` selects training behaviour (text word dropout, CLAP's training source, melody lengths
as given) and ``generator`` draws its randomness (torch's global generator when None).

``tokenize`` checks the values (``check_values``) and hands them to ``tokenize_checked``, which
subclasses implement; the provider calls ``tokenize_checked`` directly with values it has already
checked, so a value is checked once on its way through a stack.

``forward(tokens)`` moves the tokens to the conditioner's device, embeds them ([B, T, dim]),
applies the optional output projection to ``output_dim`` and zeroes every masked position, so
padding and null conditions are exact zeros whatever the projection's bias.

Null condition: a None value gives a row of zeros with an all-False mask. A batch where every
value is None has length ``null_length`` (1 unless a conditioner documents otherwise).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn

from cuecraft._text import short_repr
from cuecraft.attributes import AttributeKind, AttributeValue, check_column
from cuecraft.condition import Condition
from cuecraft.errors import ConfigError


@runtime_checkable
class Tokens(Protocol):
    """What every ``tokenize`` returns: CPU tensors for ``forward``, with the condition mask.

    mask: bool [B, T_out], the mask of the condition ``forward`` will return. ``to(device)``
    returns the same tokens on ``device``. Every token type is picklable (a NamedTuple of
    tensors), so tokens cross data-loader worker processes.
    """

    @property
    def mask(self) -> torch.Tensor: ...

    def to(self, device: torch.device | str) -> Tokens: ...


class ValueTokens(NamedTuple):
    """Tokens of one tensor per batch: ids or numbers, and the mask.

    values: [B, T] ids or numbers (meaning is the conditioner's), or [B, T, D] pre-encoded
    embeddings. mask: bool [B, T].
    """

    values: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device | str) -> ValueTokens:
        return ValueTokens(self.values.to(device, non_blocking=True), self.mask.to(device, non_blocking=True))


class BaseConditioner(nn.Module, ABC):
    """Base of every conditioner.

    Args:
        dim: width of the conditioner's own embedding.
        output_dim: width of the returned condition.
        project_out: add a linear projection even when ``dim == output_dim``. A projection
            ``proj_out`` (Linear(dim, output_dim)) exists whenever the widths differ or this is
            set; otherwise ``proj_out`` is the identity (stable-audio-tools' convention).

    Subclasses set ``kind`` and implement ``tokenize_checked`` and ``encode``.
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
        self._placement: tuple[torch.device, torch.dtype] | None = None

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> BaseConditioner:
        self._placement = None  # .to() / .half() / ... may move or cast: look again
        return super()._apply(fn, *args, **kwargs)

    def _placed(self) -> tuple[torch.device, torch.dtype]:
        """(device, floating dtype) of the parameters (else buffers), remembered until moved."""
        placement = self._placement
        if placement is None:
            tensors = (*self.parameters(), *self.buffers())
            device = tensors[0].device if tensors else torch.device("cpu")
            dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)
            placement = self._placement = (device, dtype)
        return placement

    @property
    def device(self) -> torch.device:
        """Where the conditioner's parameters (else buffers) are; CPU when it has none."""
        return self._placed()[0]

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of its parameters (else buffers); float32 when it has none."""
        return self._placed()[1]

    def check_values(self, values: Sequence[Any]) -> list[AttributeValue]:
        """Check every value against this conditioner's kind; errors name the item index."""
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"tokenize takes a sequence of values, one per item; got {type(values).__name__}")
        if len(values) == 0:
            raise ValueError("tokenize needs at least one value (an empty batch has no shape)")
        return check_column(self.kind, values, lambda i: f"item {i}")

    def tokenize(self, values: Sequence[Any], *, train: bool = False,
                 generator: torch.Generator | None = None) -> Tokens:
        """CPU-side preparation of one value per item (None for no value): ``check_values``,
        then ``tokenize_checked``. Stateless: the result depends on the arguments only."""
        return self.tokenize_checked(self.check_values(values), train=train, generator=generator)

    @abstractmethod
    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> Tokens:
        """``tokenize`` for values already checked (by ``check_values`` or the provider's
        ``to_attributes``: canonical, of this conditioner's kind, at least one). It must read
        no module state; ``train`` and ``generator`` are all it knows of the mode."""

    @abstractmethod
    def encode(self, tokens: Any) -> Condition:
        """Embed tokens already on this conditioner's device: [B, T, dim] and mask [B, T]."""

    def forward(self, tokens: Tokens) -> Condition:
        """Tokens -> Condition(embedding [B, T, output_dim], mask bool [B, T])."""
        device = self._placed()[0]
        embedding, mask = self.encode(tokens if tokens.mask.device == device else tokens.to(device))
        if type(self.proj_out) is not nn.Identity:
            embedding = self.proj_out(embedding)
        if not (mask.device.type == "cpu" and bool(mask.all())):  # nothing to zero: skip (no sync on CPU)
            embedding = embedding * mask.unsqueeze(-1).to(embedding.dtype)
        return Condition(embedding, mask)

    def condition(self, values: Sequence[Any], *, train: bool = False,
                  generator: torch.Generator | None = None) -> Condition:
        """``forward(tokenize(values, train=train, generator=generator))``."""
        return self(self.tokenize(values, train=train, generator=generator))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, output_dim={self.output_dim}"


def index_tokens(rows: Sequence[int | None]) -> ValueTokens:
    """One table row per item (None: no value) -> ids [B, 1] (0 where None) and mask [B, 1]."""
    if None not in rows:
        ids = torch.tensor(rows, dtype=torch.long).unsqueeze(1)
        return ValueTokens(ids, torch.ones(len(rows), 1, dtype=torch.bool))
    ids = torch.tensor([0 if r is None else r for r in rows], dtype=torch.long).unsqueeze(1)
    mask = torch.tensor([r is not None for r in rows], dtype=torch.bool).unsqueeze(1)
    return ValueTokens(ids, mask)


def check_int(name: str, value: Any, *, minimum: int | None = None) -> list[str]:
    """Problems (as ConfigError lines) with an int-valued setting; empty when it is fine."""
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{name}: expected an int; got {type(value).__name__} {value!r}"]
    if minimum is not None and value < minimum:
        return [f"{name}: must be >= {minimum}; got {value}"]
    return []


def check_real(name: str, value: Any) -> list[str]:
    """Problems with a finite real-valued setting; empty when it is fine."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1e300 <= value <= 1e300:
        # (a comparison, not math.isfinite: a 400-digit int would overflow converting; NaN fails it)
        return [f"{name}: expected a finite number; got {type(value).__name__} {short_repr(value)}"]
    return []
