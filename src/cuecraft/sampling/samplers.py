"""Diffusion samplers with one signature (k-diffusion's idea, written for cuecraft's objectives).

Every sampler is ``sample_NAME(denoiser, x, timesteps, *, objective, generator=None,
callback=None, **options) -> x0`` where

- ``denoiser(x_t [B, D, L], t [B]) -> x0_hat [B, D, L]`` is the data estimate (``Denoiser``
  wraps a model and an objective into one, guidance included);
- ``x`` [B, D, L] is the state at ``timesteps[0]`` (``sigma(t_max) * noise``);
- ``timesteps`` [N + 1] descends to exactly 0 (``cuecraft.sampling.timesteps``);
- ``objective`` gives alpha(t), sigma(t) (``cuecraft.models.objectives``);
- ``generator`` draws any fresh noise (DDIM with eta > 0); the ODE samplers draw none;
- ``callback(SamplerStep)`` is called after each step's first denoiser evaluation.

The solvers:
- ``euler`` / ``heun``: the probability-flow ODE dx/dt = alpha'(t) x0_hat + sigma'(t) eps_hat in
  the objective's own time t (for rectified flow, the textbook x + dt * velocity; for v, dt *
  pi/2 * v_hat). Heun averages the slopes at t and t_next (2 evaluations a step).
- ``ddim``: x_next = alpha_next x0_hat + sqrt(sigma_next^2 - c^2) eps_hat + c z, with c = eta *
  sigma_next * sqrt(1 - e^{-2h}) (eta = 0: deterministic). What k-diffusion calls Euler on a v
  model (Euler in its VE sigma = sigma/alpha) is this DDIM with eta = 0.
- ``dpmpp_2m``: DPM-Solver++(2M), second-order multistep in lambda = log(alpha / sigma), written
  with the ratios sigma_next / sigma and e^{-h} = (alpha sigma_next) / (sigma alpha_next) so that
  t = 1 (alpha = 0, lambda = -inf) needs no special case.

The last step (to t = 0) of every sampler returns the denoiser's estimate at the last node: the
DDIM step to alpha = 1, sigma = 0, exact when the estimate is (as k-diffusion's samplers land on
the denoised when sigma_next = 0). Heun's last step is therefore one evaluation (2N - 1 in all).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from cuecraft.errors import GenerationInputError
from cuecraft.models.objectives import Objective

DenoiserFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SamplerStep:
    """What a sampler reports after each step's first denoiser evaluation."""

    i: int  # step index, 0 .. N-1
    t: float  # the timestep of x
    t_next: float  # where this step goes
    x: torch.Tensor  # [B, D, L] the state at t
    denoised: torch.Tensor  # [B, D, L] the denoiser's x0 estimate at (x, t)


Callback = Callable[[SamplerStep], None]


def _grid(timesteps: torch.Tensor, x: torch.Tensor) -> list[float]:
    """Check ``timesteps`` and ``x``; the timesteps as Python floats (float64 arithmetic)."""
    problems = []
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        problems.append(f"x: expected a tensor [B, D, L]; got {type(x).__name__} "
                        f"{tuple(x.shape) if isinstance(x, torch.Tensor) else ''}")
    values = torch.as_tensor(timesteps).detach().double().flatten().tolist()
    if len(values) < 2:
        problems.append(f"timesteps: expected at least 2 values (one step); got {len(values)}")
    elif not all(0.0 <= v <= 1.0 for v in values) or any(a <= b for a, b in zip(values, values[1:])):
        problems.append(f"timesteps: expected strictly decreasing values in [0, 1]; got {values}")
    elif values[-1] != 0.0:
        problems.append(f"timesteps: the last value must be exactly 0 (the data); got {values[-1]}")
    if problems:
        raise GenerationInputError(problems)
    return values


def _check_fits(name: str, objective: Objective) -> None:
    if name not in objective.samplers:
        extra = " (for rectified flow, DDIM with eta = 0 is exactly the Euler step: use 'euler')" \
            if name == "ddim" and objective.name == "rectified_flow" else ""
        raise GenerationInputError(f"sampler {name!r} does not fit the {objective.name!r} objective{extra}; "
                                   f"samplers for it: {', '.join(objective.samplers)}")


def _coefficients(objective: Objective, t: float) -> tuple[float, float, float, float]:
    """(alpha, sigma, d alpha/dt, d sigma/dt) at t, as floats."""
    tt = torch.tensor(t, dtype=torch.float64)
    alpha, sigma = objective.alpha_sigma(tt)
    d_alpha, d_sigma = objective.alpha_sigma_derivative(tt)
    return float(alpha), float(sigma), float(d_alpha), float(d_sigma)


def _denoise(denoiser: DenoiserFn, x: torch.Tensor, t: float) -> torch.Tensor:
    return denoiser(x, torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device))


def _velocity(objective: Objective, x: torch.Tensor, t: float, x0: torch.Tensor) -> torch.Tensor:
    """dx/dt of the probability-flow ODE at (x, t) for the estimate x0 (t > 0)."""
    alpha, sigma, d_alpha, d_sigma = _coefficients(objective, t)
    eps = (x - alpha * x0) / sigma
    return d_alpha * x0 + d_sigma * eps


def _report(callback: Callback | None, i: int, t: float, t_next: float, x: torch.Tensor, x0: torch.Tensor) -> None:
    if callback is not None:
        callback(SamplerStep(i, t, t_next, x, x0))


def sample_euler(denoiser: DenoiserFn, x: torch.Tensor, timesteps: torch.Tensor, *, objective: Objective,
                 generator: torch.Generator | None = None, callback: Callback | None = None) -> torch.Tensor:
    """Euler on the probability-flow ODE in t: N evaluations. Returns x0 [B, D, L]."""
    _check_fits("euler", objective)
    grid = _grid(timesteps, x)
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        x0 = _denoise(denoiser, x, t)
        _report(callback, i, t, t_next, x, x0)
        x = x0 if t_next == 0.0 else x + (t_next - t) * _velocity(objective, x, t, x0)
    return x


def sample_heun(denoiser: DenoiserFn, x: torch.Tensor, timesteps: torch.Tensor, *, objective: Objective,
                generator: torch.Generator | None = None, callback: Callback | None = None) -> torch.Tensor:
    """Heun (trapezoidal predictor-corrector) on the ODE in t: 2N - 1 evaluations. Returns x0."""
    _check_fits("heun", objective)
    grid = _grid(timesteps, x)
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        x0 = _denoise(denoiser, x, t)
        _report(callback, i, t, t_next, x, x0)
        if t_next == 0.0:
            x = x0
            continue
        slope = _velocity(objective, x, t, x0)
        predicted = x + (t_next - t) * slope
        slope_next = _velocity(objective, predicted, t_next, _denoise(denoiser, predicted, t_next))
        x = x + (t_next - t) * 0.5 * (slope + slope_next)
    return x


def _exp_neg_h(objective: Objective, t: float, t_next: float) -> tuple[float, float, float, float]:
    """(alpha_next, sigma_next / sigma, e^{-h}, h) for h = lambda(t_next) - lambda(t) (t_next > 0)."""
    alpha, sigma, _, _ = _coefficients(objective, t)
    alpha_next, sigma_next, _, _ = _coefficients(objective, t_next)
    ratio = sigma_next / sigma
    decay = alpha * sigma_next / (sigma * alpha_next)  # e^{-h}: 0 when alpha = 0 (t = 1)
    h = math.inf if decay == 0.0 else -math.log(decay)
    return alpha_next, ratio, decay, h


def sample_ddim(denoiser: DenoiserFn, x: torch.Tensor, timesteps: torch.Tensor, *, objective: Objective,
                generator: torch.Generator | None = None, callback: Callback | None = None,
                eta: float = 0.0) -> torch.Tensor:
    """DDIM: N evaluations; ``eta`` in [0, 1] (0 deterministic, 1 the DDPM posterior's noise,
    drawn from ``generator``). Returns x0 [B, D, L]."""
    _check_fits("ddim", objective)
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
        raise GenerationInputError(f"eta: expected a number in [0, 1]; got {eta!r}")
    grid = _grid(timesteps, x)
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        x0 = _denoise(denoiser, x, t)
        _report(callback, i, t, t_next, x, x0)
        if t_next == 0.0:
            x = x0
            continue
        alpha, sigma, _, _ = _coefficients(objective, t)
        alpha_next, sigma_next, _, _ = _coefficients(objective, t_next)
        _, _, decay, _ = _exp_neg_h(objective, t, t_next)
        eps = (x - alpha * x0) / sigma
        fresh = eta * sigma_next * math.sqrt(max(0.0, 1.0 - decay * decay))  # c: std of the new noise
        x = alpha_next * x0 + math.sqrt(max(0.0, sigma_next ** 2 - fresh ** 2)) * eps
        if fresh > 0.0:
            x = x + fresh * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x


def sample_dpmpp_2m(denoiser: DenoiserFn, x: torch.Tensor, timesteps: torch.Tensor, *, objective: Objective,
                    generator: torch.Generator | None = None, callback: Callback | None = None) -> torch.Tensor:
    """DPM-Solver++(2M): N evaluations, second order from the second step. Returns x0 [B, D, L]."""
    _check_fits("dpmpp_2m", objective)
    grid = _grid(timesteps, x)
    previous: torch.Tensor | None = None
    h_previous = math.inf
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        x0 = _denoise(denoiser, x, t)
        _report(callback, i, t, t_next, x, x0)
        if t_next == 0.0:
            x = x0
            continue
        alpha_next, ratio, decay, h = _exp_neg_h(objective, t, t_next)
        estimate = x0
        if previous is not None and math.isfinite(h) and math.isfinite(h_previous):
            # D = (1 + 1/(2r)) x0 - 1/(2r) x0_prev with r = h_prev / h.
            k = h / (2.0 * h_previous)
            estimate = (1.0 + k) * x0 - k * previous
        x = ratio * x + alpha_next * (1.0 - decay) * estimate
        previous, h_previous = x0, h
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "euler": sample_euler,
    "heun": sample_heun,
    "dpmpp_2m": sample_dpmpp_2m,
    "ddim": sample_ddim,
}


def get_sampler(name: str) -> Callable[..., torch.Tensor]:
    """The sampler named ``name`` (one of SAMPLERS)."""
    if name not in SAMPLERS:
        raise GenerationInputError(f"sampler: unknown sampler {name!r}; valid samplers: {', '.join(SAMPLERS)}")
    return SAMPLERS[name]
