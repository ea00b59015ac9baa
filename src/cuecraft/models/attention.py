"""Masked multi-head attention shared by cuecraft's backbones.

Notation: B batch, H heads, L query length, S key length, E head width, D model width.
A key padding mask is bool [B, S] with True = attend. A query row whose keys are all masked (a
fully null condition) gives zeros, never NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cuecraft.models.positions import apply_rotary


def masked_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     key_mask: torch.Tensor | None) -> torch.Tensor:
    """Attention over keys where ``key_mask`` [B, S] is True; rows with no valid key give zeros.

    query [B, H, L, E], key/value [B, H, S, E] -> [B, H, L, E].
    """
    if key_mask is None:
        return F.scaled_dot_product_attention(query, key, value)
    has_key = key_mask.any(dim=-1)  # [B]
    # A row with no valid key attends everywhere (any finite result), then is zeroed below.
    safe_mask = key_mask | ~has_key.unsqueeze(-1)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=safe_mask[:, None, None, :])
    return out * has_key[:, None, None, None].to(out.dtype)


class Attention(nn.Module):
    """Multi-head attention with a key padding mask, optional q/k RMS norm and rotary positions.

    Args:
        dim: width D of the queries (and of the output).
        heads: number of heads H; ``dim`` must be a multiple of it.
        context_dim: width of the keys' source (None: self-attention over the queries).
        qk_norm: RMS-normalise queries and keys per head before the product (stabilises training).
        eps: the RMS norm's epsilon.

    ``forward(x [B, L, D], context [B, S, C] | None, key_mask bool [B, S] | None,
    rotary (cos, sin) [L, E/2] | None) -> [B, L, D]``. Rotary positions apply to self-attention
    only (queries and keys share the positions).
    """

    def __init__(self, dim: int, heads: int, context_dim: int | None = None, *, qk_norm: bool = False,
                 eps: float = 1e-6):
        super().__init__()
        assert dim % heads == 0, "dim must be a multiple of heads"  # validated by the configs
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        head_dim = dim // heads
        self.q_norm = nn.RMSNorm(head_dim, eps=eps) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(head_dim, eps=eps) if qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, key_mask: torch.Tensor | None = None,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        split = lambda t: t.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # [B, L, D] -> [B, H, L, E]
        key, value = self.kv(x if context is None else context).chunk(2, dim=-1)
        query, key, value = split(self.q(x)), split(key), split(value)
        query, key = self.q_norm(query.float()), self.k_norm(key.float())  # float32 norms (and rotary)
        if rotary is not None:
            cos, sin = rotary
            query, key = apply_rotary(query, cos, sin), apply_rotary(key, cos, sin)
        # Back to the projections' dtype (bfloat16 under autocast): SDPA needs one dtype.
        query, key = query.to(value.dtype), key.to(value.dtype)
        attended = masked_attention(query, key, value, key_mask)
        return self.out(attended.transpose(1, 2).flatten(-2))  # [B, H, L, E] -> [B, L, D]
