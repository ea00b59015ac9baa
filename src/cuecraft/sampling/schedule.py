"""The timesteps a sampler visits: a descending grid on [0, 1] that ends at t = 0 exactly."""

from __future__ import annotations

import math

import torch

from cuecraft.errors import GenerationInputError


def timesteps(steps: int, *, t_max: float = 1.0, shift: float = 1.0,
              device: torch.device | str | None = None) -> torch.Tensor:
    """[steps + 1] float64 timesteps from ``t_max`` down to 0, spaced evenly in t, then shifted.

    Args:
        steps: number of sampler steps (>= 1).
        t_max: where sampling starts, in (0, 1]. The default 1 is pure noise for both objectives
            (alpha = 0, sigma = 1). Starting there breaks nothing: no sampler divides by alpha, and
            DPM++ / DDIM use ratios of alpha and sigma (lambda = log(alpha / sigma) = -inf at t = 1
            only makes their first step first-order). stable-audio-tools trains v models on t = 1
            exactly for this reason. With t_max < 1 the start is sigma(t_max) * noise.
        shift: time shift t -> shift * t / (1 + (shift - 1) * t) (SD3's; > 1 spends more steps
            near noise, where rectified-flow models need them); 1 keeps the even grid. It maps 0 to
            0 and 1 to 1.

    The last entry is exactly 0.0: every sampler's last step lands on the data estimate.
    """
    problems = []
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        problems.append(f"steps: expected an integer >= 1; got {steps!r}")
    if isinstance(t_max, bool) or not isinstance(t_max, (int, float)) or not 0.0 < t_max <= 1.0:
        problems.append(f"t_max: expected a number in (0, 1]; got {t_max!r}")
    if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not 0.0 < shift < math.inf:
        problems.append(f"shift: expected a positive number; got {shift!r}")
    if problems:
        raise GenerationInputError(problems)
    grid = torch.linspace(float(t_max), 0.0, steps + 1, dtype=torch.float64, device=device)
    if shift != 1.0:
        grid = shift * grid / (1.0 + (shift - 1.0) * grid)
    grid[-1] = 0.0
    return grid
