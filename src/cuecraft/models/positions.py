"""Timestep features and rotary positions for the diffusion backbones.

Notation: B batch, H heads, L length, E head width. The additive sinusoidal positions are the
fuser's ``sinusoidal_embedding`` (one definition in the package).
"""

from __future__ import annotations

import math

import torch


def timestep_features(t: torch.Tensor, dim: int, *, scale: float = 1000.0,
                      max_period: float = 10000.0) -> torch.Tensor:
    """t [B] (any float timestep) -> [B, dim] ``[cos(s t f_i), sin(s t f_i)]``, float32.

    ``f_i = max_period^(-i / (dim/2))`` and ``s = scale``: with t in [0, 1] the default scale gives
    the spread of frequencies that integer timesteps 0..1000 would.
    """
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    phase = (scale * t.float()).unsqueeze(-1) * frequencies  # [B, half]
    return torch.cat((phase.cos(), phase.sin()), dim=-1)


def rotary_angles(length: int, head_dim: int, *, base: float = 10000.0,
                  device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each [length, head_dim/2] float32, for positions 0..length-1."""
    inverse = base ** (-torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)  # [E/2]
    angles = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(-1) * inverse  # [L, E/2]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, H, L, E] by the angles (cos, sin) [L, E/2]; the halves of E form the pairs.

    Computed in float32; returns float32 (the caller casts to the attention's dtype).
    """
    first, second = x.float().chunk(2, dim=-1)  # [B, H, L, E/2] each
    return torch.cat((first * cos - second * sin, first * sin + second * cos), dim=-1)
