"""Spectral losses (and distances) between waveforms: multi-resolution STFT and mel L1.

Notation: N signals, T samples.

Multi-resolution STFT (Yamamoto et al., Parallel WaveGAN, 2020): at each resolution, spectral
convergence ``||S - Ŝ||_F / ||S||_F`` plus the L1 distance of log magnitudes; averaged over the
resolutions. Each term is 0 for identical signals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

# (n_fft, hop, window length): short, medium and long windows
RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))


@dataclass(frozen=True)
class STFTDistance:
    """The two terms of a multi-resolution STFT distance (each averaged over resolutions)."""

    spectral_convergence: torch.Tensor
    log_magnitude: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.spectral_convergence + self.log_magnitude


def _magnitude(x: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    spectrum = torch.stft(x, n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True)
    return (spectrum.real.square() + spectrum.imag.square()).clamp(min=1e-7).sqrt()  # [N, F, frames]


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1 at several STFT resolutions. (pred, target) [N, T]."""

    def __init__(self, resolutions: Sequence[tuple[int, int, int]] = RESOLUTIONS):
        super().__init__()
        self.resolutions = tuple(tuple(int(v) for v in r) for r in resolutions)
        for i, (_, _, length) in enumerate(self.resolutions):
            self.register_buffer(f"window{i}", torch.hann_window(length), persistent=False)

    def distance(self, pred: torch.Tensor, target: torch.Tensor) -> STFTDistance:
        """Both terms, averaged over the resolutions (and the batch)."""
        convergence, log_magnitude = [], []
        for i, (n_fft, hop, length) in enumerate(self.resolutions):
            window = getattr(self, f"window{i}")
            if length < n_fft:  # centre a shorter window in the frame
                window = nn.functional.pad(window, ((n_fft - length) // 2, n_fft - length - (n_fft - length) // 2))
            p, t = _magnitude(pred, n_fft, hop, window), _magnitude(target, n_fft, hop, window)
            convergence.append((torch.linalg.norm(t - p, dim=(1, 2)) / torch.linalg.norm(t, dim=(1, 2))).mean())
            log_magnitude.append((t.log() - p.log()).abs().mean())
        count = len(self.resolutions)
        return STFTDistance(sum(convergence) / count, sum(log_magnitude) / count)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The scalar loss: spectral convergence + log-magnitude L1."""
        return self.distance(pred, target).total
