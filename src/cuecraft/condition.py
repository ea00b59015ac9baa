"""``Condition``: what every conditioner returns, and the null condition.

Notation in this module: B batch, T condition length (tokens), D width.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Condition(NamedTuple):
    """One condition for a batch.

    embedding: float [B, T, D]. Positions where ``mask`` is False are exactly zero.
    mask: bool [B, T]. True where a position carries information; padding and null are False.
    A scalar condition (a number, a class label) has T = 1.
    """

    embedding: torch.Tensor
    mask: torch.Tensor


def null_condition(
    batch_size: int,
    length: int,
    dim: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Condition:
    """The null condition: zeros [B, T, D] and an all-False mask [B, T]."""
    return Condition(
        torch.zeros(batch_size, length, dim, device=device, dtype=dtype),
        torch.zeros(batch_size, length, device=device, dtype=torch.bool),
    )
