"""Diffusion objectives: what a model is trained to predict, shared by the trainer and the samplers.

Both objectives are Gaussian paths ``x_t = alpha(t) * x0 + sigma(t) * eps`` over continuous
t in [0, 1], with t = 0 the data and t = 1 pure noise (alpha(1) = 0, sigma(1) = 1):

| name             | alpha(t)     | sigma(t)     | the model predicts                      |
|------------------|--------------|--------------|-----------------------------------------|
| ``v``            | cos(pi t/2)  | sin(pi t/2)  | v = alpha * eps - sigma * x0            |
| ``rectified_flow``| 1 - t       | t            | the velocity eps - x0 (= dx_t/dt)       |

Training draws t from a timestep sampler (``uniform``, ``logit_normal``), noises x0 with
``noise``, and regresses the model's output on ``target`` with ``loss``. Samplers turn a
prediction back into the data estimate with ``denoised`` and read ``alpha_sigma`` (and its
derivative, for the ODE samplers), so training and sampling cannot disagree.

What the network outputs (``output``):

- ``"target"`` (the default): the objective's own quantity (v, or the velocity), regressed with
  plain MSE.
- ``"x0"``: the data estimate itself (x-prediction, as in Li and He, "Back to Basics: Let
  Denoising Generative Models Denoise", 2025). The loss is still the objective's: the output is
  turned into the objective's quantity and compared there, which for both paths is the x0 error
  weighted by ``1 / sigma(t)^2`` (sigma clamped at ``SIGMA_FLOOR`` so t near 0 stays bounded).
  Why it matters: a patch transformer whose token is narrower than its patch (``dim <
  patch * channels``) cannot carry the noise value by value. With v or velocity output, whatever
  it cannot carry passes through ``denoised`` as ``alpha * x_t`` -- noise left in every sample.
  With x0 output, what it cannot carry is the data's detail, and the samples stay clean.

Notation: B batch, D channels, L frames; tensors are [B, D, L] (any [B, ...] works) and t is [B].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from cuecraft.errors import ConfigError

OBJECTIVE_NAMES = ("v", "rectified_flow")
OUTPUTS = ("target", "x0")  # what the network outputs: the objective's quantity, or the data estimate
# Smallest sigma(t) the x0 output divides by (t < ~0.032 on the cosine path, t < 0.05 for rectified
# flow): bounds the loss weight 1 / sigma^2 at 400 and keeps eps estimates finite at t = 0.
SIGMA_FLOOR = 0.05
TIMESTEP_SAMPLER_NAMES = ("uniform", "logit_normal")


def _per_item(t: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """t (a number, [] or [B]) -> [B, 1, ..., 1] broadcastable against ``like`` [B, ...]."""
    t = torch.as_tensor(t, device=like.device, dtype=like.dtype)
    if t.dim() == 0:
        t = t.expand(like.shape[0])
    if t.dim() != 1 or t.shape[0] != like.shape[0]:
        raise ValueError(f"t must be a number or [B] with B = {like.shape[0]}; got shape {tuple(t.shape)}")
    return t.view(-1, *([1] * (like.dim() - 1)))


@runtime_checkable
class Objective(Protocol):
    """A Gaussian path and the quantity a model predicts along it."""

    name: str
    #: the samplers of ``cuecraft.sampling`` that fit this objective.
    samplers: tuple[str, ...]
    #: what the network outputs: "target" (the objective's quantity) or "x0".
    output: str

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """t [...] -> (alpha, sigma), each shaped as t."""
        ...

    def alpha_sigma_derivative(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """t [...] -> (d alpha / dt, d sigma / dt), each shaped as t."""
        ...

    def noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = alpha(t) x0 + sigma(t) eps: [B, ...]."""
        ...

    def target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the model is trained to output at (x_t, t): [B, ...]."""
        ...

    def denoised(self, x_t: torch.Tensor, t: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        """The data estimate x0_hat from the model's ``prediction`` at (x_t, t): [B, ...]."""
        ...

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        """The noise estimate eps_hat from the model's ``prediction``: [B, ...]."""
        ...

    def prediction(self, x_t: torch.Tensor, t: torch.Tensor, x0_hat: torch.Tensor) -> torch.Tensor:
        """The model output that ``denoised`` maps to ``x0_hat`` (its inverse; needs t > 0)."""
        ...

    def loss(self, prediction: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor | None = None, t: torch.Tensor | None = None) -> torch.Tensor:
        """Masked MSE (see ``masked_mse``) in the objective's space: a scalar. The x0 output needs
        t [B] (its error is weighted by 1 / sigma(t)^2)."""
        ...


class _GaussianPath:
    """What both objectives share: noising, the network's output (the objective's quantity or
    x0), and conversions through x0_hat and eps_hat.

    Subclasses define the path (``alpha_sigma``, its derivative) and their own quantity
    (``_target``, ``_denoised``, ``_eps``, ``_prediction``: the network outputs the objective's
    quantity); the public methods add the x0 output on top.
    """

    name: str
    samplers: tuple[str, ...]

    def __init__(self, output: str = "target"):
        if output not in OUTPUTS:
            raise ConfigError(f"objective.output: unknown output {output!r}; valid: {', '.join(OUTPUTS)}")
        self.output = output

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def alpha_sigma_derivative(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _denoised(self, x_t: torch.Tensor, t: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _eps(self, x_t: torch.Tensor, t: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _prediction(self, x_t: torch.Tensor, t: torch.Tensor, x0_hat: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha, sigma = self.alpha_sigma(_per_item(t, x0))
        return alpha * x0 + sigma * eps

    def target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x0 if self.output == "x0" else self._target(x0, eps, t)

    def denoised(self, x_t: torch.Tensor, t: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        return prediction if self.output == "x0" else self._denoised(x_t, t, prediction)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        if self.output == "x0":
            alpha, sigma = self.alpha_sigma(_per_item(t, x_t))
            return (x_t - alpha * prediction) / sigma.clamp(min=SIGMA_FLOOR)
        return self._eps(x_t, t, prediction)

    def prediction(self, x_t: torch.Tensor, t: torch.Tensor, x0_hat: torch.Tensor) -> torch.Tensor:
        return x0_hat if self.output == "x0" else self._prediction(x_t, t, x0_hat)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor | None = None, t: torch.Tensor | None = None) -> torch.Tensor:
        if self.output == "target":
            return masked_mse(prediction, target, mask)
        if t is None:
            raise ValueError("the x0 output's loss needs t [B]: its error is weighted by 1 / sigma(t)^2")
        # Both paths' own quantity is affine in x0_hat with slope -1/sigma (v: (alpha x_t - x0)/sigma;
        # velocity: (x_t - x0)/t), so its squared error is the x0 error over sigma^2.
        _, sigma = self.alpha_sigma(_per_item(t, prediction).float())
        return masked_mse(prediction, target, mask, weight=sigma.clamp(min=SIGMA_FLOOR).pow(-2))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(output={self.output!r})"


class VObjective(_GaussianPath):
    """v-prediction on the cosine schedule, as stable-audio-tools' ``"v"`` objective.

    stable-audio-tools (``inference/sampling.py`` ``get_alphas_sigmas`` and
    ``training/diffusion.py``) uses alpha = cos(t pi/2), sigma = sin(t pi/2),
    noised = x0 * alpha + noise * sigma, target = noise * alpha - x0 * sigma, and recovers the
    data as x_t * alpha - v * sigma. The same formulas hold here (alpha^2 + sigma^2 = 1 makes
    ``denoised`` and ``eps`` exact inverses of ``noise`` and ``target``); it also trains on
    t = 1 exactly (1% of its draws), which is why samplers may start there: no conversion
    divides by alpha.
    """

    name = "v"
    samplers = ("euler", "heun", "dpmpp_2m", "ddim")

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angle = t * (math.pi / 2)
        return torch.cos(angle), torch.sin(angle)

    def alpha_sigma_derivative(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angle = t * (math.pi / 2)
        return -(math.pi / 2) * torch.sin(angle), (math.pi / 2) * torch.cos(angle)

    def _target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha, sigma = self.alpha_sigma(_per_item(t, x0))
        return alpha * eps - sigma * x0

    def _denoised(self, x_t: torch.Tensor, t: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        alpha, sigma = self.alpha_sigma(_per_item(t, x_t))
        return alpha * x_t - sigma * prediction

    def _eps(self, x_t: torch.Tensor, t: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        alpha, sigma = self.alpha_sigma(_per_item(t, x_t))
        return sigma * x_t + alpha * prediction

    def _prediction(self, x_t: torch.Tensor, t: torch.Tensor, x0_hat: torch.Tensor) -> torch.Tensor:
        alpha, sigma = self.alpha_sigma(_per_item(t, x_t))
        return (alpha * x_t - x0_hat) / sigma


class RectifiedFlowObjective(_GaussianPath):
    """Rectified flow: x_t = (1 - t) x0 + t eps, the model predicts the velocity eps - x0.

    As stable-audio-tools' ``"rectified_flow"`` objective (alphas, sigmas = 1 - t, t;
    targets = noise - x0). The velocity is dx_t/dt, so an Euler step is x + (t_next - t) * v.
    """

    name = "rectified_flow"
    samplers = ("euler", "heun", "dpmpp_2m")

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return 1.0 - t, t

    def alpha_sigma_derivative(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return -torch.ones_like(t), torch.ones_like(t)

    def _target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return eps - x0

    def _denoised(self, x_t: torch.Tensor, t: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        return x_t - _per_item(t, x_t) * prediction

    def _eps(self, x_t: torch.Tensor, t: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        return x_t + (1.0 - _per_item(t, x_t)) * prediction

    def _prediction(self, x_t: torch.Tensor, t: torch.Tensor, x0_hat: torch.Tensor) -> torch.Tensor:
        return (x_t - x0_hat) / _per_item(t, x_t)


_OBJECTIVES: dict[str, type[_GaussianPath]] = {"v": VObjective, "rectified_flow": RectifiedFlowObjective}


def get_objective(name: str, output: str = "target") -> Objective:
    """The objective named ``name`` (one of OBJECTIVE_NAMES) whose network outputs ``output``
    (one of OUTPUTS: its own quantity, or x0)."""
    if name not in _OBJECTIVES:
        raise ConfigError(f"objective: unknown objective {name!r}; valid objectives: {', '.join(OBJECTIVE_NAMES)}")
    return _OBJECTIVES[name](output)


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over valid frames only: a scalar.

    prediction, target: [B, D, L]; mask: bool [B, L] (True = a real frame) or None (all valid);
    weight: None or per-item weights broadcastable to the error ([B, 1, 1]), multiplying each
    item's squared error (the mean still divides by the element count, not the weights).
    The mean is over the B * D * (valid frames) elements, so padded frames change nothing,
    whatever they hold. A batch without a valid frame gives 0 (not NaN).
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction and target differ in shape: {tuple(prediction.shape)} vs {tuple(target.shape)}")
    error = (prediction.float() - target.float()).square()
    if weight is not None:
        error = error * weight.float()
    if mask is None:
        return error.mean()
    if prediction.dim() < 2 or mask.shape != (prediction.shape[0], prediction.shape[-1]):
        raise ValueError(f"mask must be [B, L] = [{prediction.shape[0]}, {prediction.shape[-1]}] for a prediction "
                         f"of shape {tuple(prediction.shape)}; got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool (True = a real frame); got {mask.dtype}")
    valid = mask.view(mask.shape[0], *([1] * (prediction.dim() - 2)), mask.shape[1])  # [B, 1, L]
    # where() rather than a product: padding holding inf or NaN still contributes exactly nothing.
    total = torch.where(valid, error, torch.zeros_like(error)).sum()
    count = mask.sum() * math.prod(prediction.shape[1:-1])
    return total / count.clamp(min=1)


@dataclass(frozen=True)
class UniformTimesteps:
    """t ~ U[0, 1)."""

    name = "uniform"

    def __call__(self, batch_size: int, *, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
        """[B] timesteps drawn from ``generator`` (on its device)."""
        return torch.rand(batch_size, generator=generator, device=device)


@dataclass(frozen=True)
class LogitNormalTimesteps:
    """t = sigmoid(n), n ~ N(mean, std^2): more weight on the middle of the path (SD3's choice)."""

    mean: float = 0.0  # mean of the normal before the sigmoid; > 0 leans towards noise
    std: float = 1.0  # its standard deviation, > 0

    name = "logit_normal"

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.mean, bool) or not isinstance(self.mean, (int, float)) or not math.isfinite(self.mean):
            problems.append(f"timesteps.mean: expected a finite number; got {self.mean!r}")
        if isinstance(self.std, bool) or not isinstance(self.std, (int, float)) or not 0 < self.std < math.inf:
            problems.append(f"timesteps.std: expected a positive number; got {self.std!r}")
        if problems:
            raise ConfigError(problems)

    def __call__(self, batch_size: int, *, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
        """[B] timesteps in (0, 1) drawn from ``generator`` (on its device)."""
        normal = torch.randn(batch_size, generator=generator, device=device)
        return torch.sigmoid(normal * self.std + self.mean)


TimestepSampler = UniformTimesteps | LogitNormalTimesteps


def get_timestep_sampler(name: str, **options: float) -> TimestepSampler:
    """``uniform`` (no options) or ``logit_normal`` (``mean``, ``std``)."""
    if name == "uniform":
        if options:
            raise ConfigError(f"timesteps: 'uniform' takes no options; got {sorted(options)}")
        return UniformTimesteps()
    if name == "logit_normal":
        unknown = sorted(set(options) - {"mean", "std"})
        if unknown:
            raise ConfigError(f"timesteps: unknown option(s) {unknown} for 'logit_normal'; valid: mean, std")
        return LogitNormalTimesteps(**options)
    raise ConfigError(f"timesteps: unknown timestep sampler {name!r}; valid: {', '.join(TIMESTEP_SAMPLER_NAMES)}")
