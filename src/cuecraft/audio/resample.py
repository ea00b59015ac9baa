"""Down-mixing and resampling: any waveform -> mono float32 at the rate a model expects.

Shapes: [C, T] or [T] in, [T'] out (T' = T * target_rate / rate, rounded up as soxr does).
Resampling is librosa's ``soxr_hq`` (the soxr library: band-limited, linear phase).
"""

from __future__ import annotations

import numpy as np
import torch

from cuecraft._optional import require


def to_mono(wav: torch.Tensor) -> torch.Tensor:
    """[C, T] -> [T] by averaging channels (a [T] waveform is returned as is), as float32."""
    if wav.dim() == 2:
        wav = wav.mean(dim=0)
    elif wav.dim() != 1:
        raise ValueError(f"expected a waveform [C, T] or [T]; got shape {tuple(wav.shape)}")
    return wav.to(torch.float32)


def resample(wav: torch.Tensor, rate: int, target_rate: int) -> torch.Tensor:
    """Resample [..., T] from ``rate`` to ``target_rate`` Hz along the last axis (float32, CPU).

    The same rate returns the input unchanged. An empty waveform stays empty.
    """
    if rate == target_rate:
        return wav
    if wav.shape[-1] == 0:
        return wav.new_zeros(*wav.shape[:-1], 0)
    librosa = require("librosa", extra="audio", purpose="resampling audio")
    array = wav.detach().to("cpu", torch.float32).numpy()
    out = librosa.resample(array, orig_sr=rate, target_sr=target_rate, res_type="soxr_hq", axis=-1)
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


def prepare_waveform(wav: torch.Tensor, rate: int, target_rate: int, length: int | None = None) -> torch.Tensor:
    """The first ``length`` samples of ``wav`` ([C, T] or [T] at ``rate``), down-mixed to mono
    and resampled to ``target_rate``: float32 [T'] on the CPU."""
    if length is not None:
        wav = wav[..., :length]
    return resample(to_mono(wav.detach().cpu()), rate, target_rate)
