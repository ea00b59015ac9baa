"""A small reference transformer that consumes ``FusedInputs`` and honours every mask.

It exists to pin down the contract between the fuser and a backbone: prepended tokens and the
cross-attention source arrive with masks, and a masked position never influences the output.
A row whose keys are all masked (a fully null condition) contributes nothing, not NaN.

Notation: B batch, P prepended length, T input length, S cross-attention length, D width.
"""

from __future__ import annotations

import torch
from torch import nn

from cuecraft.fuser import FusedInputs
from cuecraft.models.attention import Attention, masked_attention

__all__ = ["ReferenceTransformer", "masked_attention"]  # masked_attention: re-exported from its old home


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, cross_dim: int | None):
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attention = Attention(dim, heads)
        self.norm_cross = nn.LayerNorm(dim) if cross_dim else None
        self.cross_attention = Attention(dim, heads, cross_dim) if cross_dim else None
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, cross: torch.Tensor | None,
                cross_mask: torch.Tensor | None) -> torch.Tensor:
        h = self.norm_self(x)
        x = x + self.self_attention(h, h, x_mask)
        if self.cross_attention is not None and cross is not None:
            x = x + self.cross_attention(self.norm_cross(x), cross, cross_mask)
        return x + self.ff(self.norm_ff(x))


class ReferenceTransformer(nn.Module):
    """Pre-norm transformer over ``FusedInputs``.

    Args:
        dim: width of ``fused.input``.
        heads, layers: attention heads and blocks.
        cross_dim: width of ``fused.cross_attention_src`` (None: no cross-attention).
        global_dim: width of ``fused.global_cond`` (None: none); it is projected and added to
            every position.

    ``forward(fused) -> [B, T, dim]``: the outputs at the input positions (prepended tokens are
    context and are dropped from the output).
    """

    def __init__(self, dim: int, heads: int = 2, layers: int = 2, cross_dim: int | None = None,
                 global_dim: int | None = None):
        super().__init__()
        self.global_proj = nn.Linear(global_dim, dim) if global_dim else None
        self.blocks = nn.ModuleList(_Block(dim, heads, cross_dim) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, fused: FusedInputs) -> torch.Tensor:
        if fused.input is None or fused.input_mask is None:
            raise ValueError("ReferenceTransformer needs FusedInputs made with an input sequence")
        x = fused.input
        if self.global_proj is not None and fused.global_cond is not None:
            x = x + self.global_proj(fused.global_cond).unsqueeze(1)
        for block in self.blocks:
            x = block(x, fused.input_mask, fused.cross_attention_src, fused.cross_attention_mask)
        prepended = 0 if fused.prepend_cond is None else fused.prepend_cond.shape[1]
        return self.norm(x[:, prepended:])
