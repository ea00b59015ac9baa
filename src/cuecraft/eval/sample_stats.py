"""Sample statistics: do generated latents look like the data?

Adherence asks whether a sample follows what was asked; these figures ask whether it looks like
the data at all, before any condition is read. Each is reported beside the same figure of the
data (held-out corpus clips through the model's own representation), and as their ratio:

- ``roughness``: the mean absolute frame-to-frame difference along time, ``mean |x[:, :, l+1] -
  x[:, :, l]|`` over items, channels and frames. A music mel moves slowly (about 0.15 per frame
  for the corpus at unit variance); white noise of unit variance scores 2/sqrt(pi) = 1.128.
  A diffusion sampler that leaves noise in the samples shows here first.
- ``band_mean``, ``band_std``: per channel (mel band), the mean and standard deviation over
  items and frames, [D] each; summarised by the overall standard deviation ``std`` and the
  mean absolute gap between the sample's and the data's band means (``band_mean_gap``).
- ``frechet``: the Fréchet distance between Gaussians fitted to two sets of embeddings
  (FAD's formula, Kilgour et al. 2019): ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``.
  ``cuecraft eval`` computes it on the instrument classifier's embedding of generated and of
  held-out audio; its ratio is to the distance between two halves of the held-out set.

Notation: B items, D channels (bands), L frames, N embeddings of width E.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from cuecraft.errors import EvaluationInputError


def _latents(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] < 2 or x.numel() == 0:
        shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise EvaluationInputError(f"{name}: expected latents [B, D, L] with L >= 2 frames; got {shape}")
    x = x.detach().float()
    if not bool(torch.isfinite(x).all()):
        raise EvaluationInputError(f"{name}: latents hold NaN or infinite values")
    return x


def roughness(x: torch.Tensor) -> float:
    """Mean absolute frame-to-frame difference of latents x [B, D, L] (L >= 2)."""
    x = _latents(x, "latents")
    return float((x[..., 1:] - x[..., :-1]).abs().mean())


@dataclass(frozen=True)
class LatentStats:
    """The statistics of one set of latents [B, D, L]."""

    roughness: float  # mean |x[l + 1] - x[l]|
    std: float  # standard deviation over every value
    mean: float  # mean over every value
    band_mean: list[float]  # [D] per-channel mean over items and frames
    band_std: list[float]  # [D] per-channel standard deviation over items and frames

    @classmethod
    def of(cls, x: torch.Tensor) -> LatentStats:
        x = _latents(x, "latents")
        per_band = x.transpose(0, 1).flatten(1)  # [B, D, L] -> [D, B * L]
        return cls(roughness=roughness(x), std=float(x.std()), mean=float(x.mean()),
                   band_mean=per_band.mean(1).tolist(), band_std=per_band.std(1).tolist())


@dataclass(frozen=True)
class SampleQuality:
    """Generated latents against the data's: each figure and its ratio to the data's."""

    samples: LatentStats
    data: LatentStats

    @property
    def roughness_ratio(self) -> float:
        """samples' roughness / data's (1: as smooth as the data; ~7 for unit white noise vs the corpus)."""
        return self.samples.roughness / max(self.data.roughness, 1e-12)

    @property
    def std_ratio(self) -> float:
        return self.samples.std / max(self.data.std, 1e-12)

    @property
    def band_mean_gap(self) -> float:
        """Mean over bands of |sample band mean - data band mean|, in the data's overall std."""
        gaps = [abs(a - b) for a, b in zip(self.samples.band_mean, self.data.band_mean)]
        return sum(gaps) / len(gaps) / max(self.data.std, 1e-12)

    @property
    def band_std_ratio(self) -> float:
        """Mean over bands of sample band std / data band std."""
        ratios = [a / max(b, 1e-12) for a, b in zip(self.samples.band_std, self.data.band_std)]
        return sum(ratios) / len(ratios)

    def summary(self) -> dict[str, float]:
        """The figures a log line or a report shows (no per-band lists)."""
        return {"roughness": self.samples.roughness, "data_roughness": self.data.roughness,
                "roughness_ratio": self.roughness_ratio, "std": self.samples.std, "data_std": self.data.std,
                "std_ratio": self.std_ratio, "band_mean_gap": self.band_mean_gap,
                "band_std_ratio": self.band_std_ratio}

    def to_dict(self) -> dict:
        return {**self.summary(), "samples": asdict(self.samples), "data": asdict(self.data)}


def sample_quality(samples: torch.Tensor, data: torch.Tensor | LatentStats) -> SampleQuality:
    """Statistics of generated latents [B, D, L] against data latents [B', D, L'] (or their stats)."""
    data_stats = data if isinstance(data, LatentStats) else LatentStats.of(data)
    sample_stats = LatentStats.of(samples)
    if len(sample_stats.band_mean) != len(data_stats.band_mean):
        raise EvaluationInputError(f"samples have {len(sample_stats.band_mean)} channels but the data "
                                   f"{len(data_stats.band_mean)}")
    return SampleQuality(sample_stats, data_stats)


def _embeddings(x, name: str) -> np.ndarray:
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 2 or not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise EvaluationInputError(f"{name}: expected finite embeddings [N, E] with N >= 2; got shape "
                                   f"{list(x.shape)} of {x.dtype}")
    return x.astype(np.float64)


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to embeddings a [N, E] and b [M, E] (FAD's formula).

    The matrix square root of S_a S_b is taken through the symmetric form
    ``(S_a^(1/2) S_b S_a^(1/2))^(1/2)``, whose trace is the same and whose eigenvalues are real
    and non-negative, so the result is real and >= 0 up to rounding (clamped at 0).
    """
    a, b = _embeddings(a, "a"), _embeddings(b, "b")
    if a.shape[1] != b.shape[1]:
        raise EvaluationInputError(f"embeddings differ in width: {a.shape[1]} and {b.shape[1]}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = float(np.sqrt(np.clip(middle, 0, None)).sum())
    distance = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)
    return max(distance, 0.0) if math.isfinite(distance) else distance
