"""Griffin-Lim: the no-weights way back from a mel spectrogram to a waveform.

Notation: N signals, M mel bands, F = n_fft // 2 + 1 linear bins, L frames.

1. Mel -> linear magnitude: the non-negative least-squares solution of ``filters @ S = mel``,
   started from the clamped pseudo-inverse and refined by multiplicative updates (which keep S
   non-negative and never increase the squared error).
2. Fast Griffin-Lim (Perraudin, Balazs and Sondergaard, 2013): alternate projections between
   spectra with the wanted magnitude and consistent spectra (STFTs of a signal), with momentum
   (0.99 by default) on the consistent estimate; phases start from a seeded random draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cuecraft.audio._checks import check_int
from cuecraft.errors import ConfigError
from cuecraft.models.representation.spectral import istft, stft


@dataclass(frozen=True)
class GriffinLimOptions:
    """How ``MelRepresentation`` decodes without a vocoder."""

    n_iter: int = 64  # Griffin-Lim iterations (each one STFT and one inverse STFT)
    momentum: float = 0.99  # fast Griffin-Lim momentum; 0 is the original algorithm
    nnls_iter: int = 30  # multiplicative updates of the mel -> linear magnitude inversion
    seed: int = 0  # random initial phases: decoding is deterministic

    def __post_init__(self) -> None:
        problems = check_int("griffin_lim.n_iter", self.n_iter, minimum=1, maximum=10000)
        problems += check_int("griffin_lim.nnls_iter", self.nnls_iter, minimum=0, maximum=10000)
        problems += check_int("griffin_lim.seed", self.seed, minimum=0, maximum=2**63 - 1)
        if isinstance(self.momentum, bool) or not isinstance(self.momentum, (int, float)) \
                or not 0.0 <= self.momentum < 1.0:
            problems.append(f"griffin_lim.momentum: must be a number in [0, 1); got {self.momentum!r}")
        if problems:
            raise ConfigError(problems)


def mel_to_linear(mel: torch.Tensor, filters: torch.Tensor, iterations: int,
                  pseudo_inverse: torch.Tensor | None = None) -> torch.Tensor:
    """mel magnitudes [N, M, L] -> non-negative linear magnitudes [N, F, L] with filters [M, F]
    (``pseudo_inverse`` [F, M]: the filters' pseudo-inverse, when the caller keeps one)."""
    if pseudo_inverse is None:
        pseudo_inverse = torch.linalg.pinv(filters.double()).to(mel.dtype)  # [F, M]
    linear = (pseudo_inverse @ mel).clamp(min=1e-10)
    numerator = filters.T @ mel  # [F, L] per signal: F^T mel, fixed
    gram = filters.T @ filters  # [F, F]
    for _ in range(iterations):  # Lee-Seung update for min ||filters S - mel||^2 with S >= 0
        linear = linear * numerator / (gram @ linear).clamp(min=1e-10)
    return linear


def griffin_lim(magnitude: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor,
                options: GriffinLimOptions) -> torch.Tensor:
    """Linear magnitudes [N, F, L] -> waveforms [N, L * hop] whose STFT magnitude approaches them."""
    generator = torch.Generator().manual_seed(options.seed)
    phase = torch.rand(magnitude.shape, generator=generator, dtype=magnitude.dtype) * (2 * torch.pi)
    angles = torch.polar(torch.ones_like(magnitude), phase.to(magnitude.device))
    previous = torch.zeros_like(angles)
    alpha = options.momentum / (1 + options.momentum)
    for _ in range(options.n_iter):
        rebuilt = stft(istft(magnitude * angles, n_fft, hop, window), n_fft, hop, window)
        angles = rebuilt - alpha * previous
        angles = angles / angles.abs().clamp(min=1e-16)
        previous = rebuilt
    return istft(magnitude * angles, n_fft, hop, window)
