"""Spectral building blocks: "same" STFT framing, its exact inverse, and the Slaney mel filterbank.

Notation: N signals, T samples (a multiple of the hop), F = n_fft // 2 + 1 bins, L = T / hop frames.

"Same" framing pads (n_fft - hop) / 2 zeros on the left and the rest on the right, so T samples
give exactly L = T / hop frames and ``istft(stft(x)) == x`` (up to float error) for every T that
is a multiple of the hop: the bookkeeping a representation needs, without torch.stft's extra frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def hann(n_fft: int, device: torch.device | None = None) -> torch.Tensor:
    """The periodic Hann window [n_fft] (float32)."""
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float32, device=device)


def stft(x: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """x [N, T] (T a multiple of ``hop``) -> complex spectrum [N, F, T / hop]."""
    left = (n_fft - hop) // 2
    padded = F.pad(x, (left, n_fft - hop - left))  # T + n_fft - hop samples -> T / hop frames
    return torch.stft(padded, n_fft, hop, window=window.to(x.dtype), center=False, return_complex=True)


def istft(spectrum: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """complex spectrum [N, F, L] -> x [N, L * hop]: weighted overlap-add, the inverse of ``stft``."""
    frames = spectrum.shape[-1]
    window = window.to(spectrum.real.dtype)
    chunks = torch.fft.irfft(spectrum, n=n_fft, dim=1) * window[None, :, None]  # [N, n_fft, L]
    size = (frames - 1) * hop + n_fft
    fold = dict(output_size=(1, size), kernel_size=(1, n_fft), stride=(1, hop))
    signal = F.fold(chunks, **fold)[:, 0, 0, :]  # overlap-add: [N, size]
    envelope = F.fold(window.square()[None, :, None].expand(1, n_fft, frames), **fold)[0, 0, 0, :]
    left = (n_fft - hop) // 2
    signal, envelope = signal[:, left: left + frames * hop], envelope[left: left + frames * hop]
    return signal / envelope.clamp(min=1e-8)


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    linear = hz / (200.0 / 3)
    log = 15.0 + torch.log(hz.clamp(min=1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    linear = mel * (200.0 / 3)
    log = 1000.0 * torch.exp((math.log(6.4) / 27.0) * (mel - 15.0))
    return torch.where(mel >= 15.0, log, linear)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """Slaney-normalised triangular mel filters [n_mels, F] (float32), as librosa.filters.mel
    (htk=False, norm="slaney") computes them: each filter's area is constant in Hz."""
    bins = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = _mel_to_hz(torch.linspace(float(_hz_to_mel(torch.tensor(float(f_min)))),
                                      float(_hz_to_mel(torch.tensor(float(f_max)))), n_mels + 2, dtype=torch.float64))
    widths = edges.diff()  # [n_mels + 1]
    ramps = edges[:, None] - bins[None, :]  # [n_mels + 2, F]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.float()
