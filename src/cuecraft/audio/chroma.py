"""Chroma in PyTorch, batched: how much of each pitch class (C, C#, ..., B) every frame holds.

Notation: B batch, T samples, F frames, K frequency bins (n_fft / 2 + 1), N chroma bins.

Geometry (AudioCraft's ``ChromaExtractor``): a Hann window of n_fft = 2**radix2_exp samples, a hop
of n_fft / 4, frames centred on t * hop with zero padding at both ends. So a waveform of T samples
has ``1 + T // hop`` frames and the frame rate is ``sample_rate / hop`` frames per second:

    sample_rate  radix2_exp  n_fft  hop   frames/s  frames in 30 s
    32000        14          16384  4096  7.8125    235            (MusicGen-Melody)
    16000        11          2048   512   31.25     938

Per frame: the power spectrogram |STFT|^2 [K], through librosa's chroma filter bank [N, K]
(``librosa.filters.chroma``, tuning 0, bin 0 = C), divided by its strongest bin (max
normalisation: the strongest pitch class is 1). This is ``librosa.feature.chroma_stft(y, sr,
n_fft=n_fft, hop_length=hop, tuning=0.0)`` computed in PyTorch, on any device, for a batch.
A frame whose strongest bin is below ``eps`` is silent and comes out all zeros, also with
``argmax`` (a one-hot of the strongest pitch class), so silence never reads as a C.

AudioCraft's extractor (1.3.0, ``audiocraft/modules/chroma.py``) differs in three ways, each an
option here: ``pad_mode="reflect"`` (torchaudio's Spectrogram pads by reflection, and zero-pads a
waveform shorter than n_fft to n_fft, centred, first); ``normalized=True`` (torchaudio's
``normalized``: the power is divided by sum(window^2) = 3 n_fft / 8 before the ``eps`` of the
max normalisation applies, so near-silent frames scale otherwise); ``silent_frames="c"`` (no
silence threshold: a frame is divided by max(peak, eps), and ``argmax`` of an all-zero frame is
bin 0, a C).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from cuecraft._optional import require
from cuecraft.audio._checks import check_bool, check_int, check_positive
from cuecraft.errors import ConfigError

RADIX2_EXP_RANGE = (6, 16)  # n_fft from 64 to 65536 samples
PAD_MODES = ("constant", "reflect")  # STFT edge padding: zeros (cuecraft) or reflection (AudioCraft)
SILENT_FRAMES = ("zeros", "c")  # a frame below eps: all zeros (cuecraft), or AudioCraft's (argmax: a C)


@lru_cache(maxsize=32)
def _filter_bank(sample_rate: int, n_fft: int, n_chroma: int) -> np.ndarray:
    librosa = require("librosa", extra="audio", purpose="the chroma filter bank")
    bank = librosa.filters.chroma(sr=sample_rate, n_fft=n_fft, n_chroma=n_chroma, tuning=0.0)
    return np.ascontiguousarray(bank, dtype=np.float32)


def chroma_filter_bank(sample_rate: int, n_fft: int, n_chroma: int = 12) -> torch.Tensor:
    """librosa's chroma filter bank with tuning 0: float32 [N, K], K = n_fft // 2 + 1, row 0 = C."""
    return torch.from_numpy(_filter_bank(sample_rate, n_fft, n_chroma).copy())


class ChromaExtractor:
    """Waveforms [B, T] (or [T]) at ``sample_rate`` -> chroma [B, F, N] (or [F, N]).

    Args:
        sample_rate: of the waveforms given, in Hz.
        n_chroma: N, chroma bins per octave (12: one per semitone).
        radix2_exp: n_fft = window = 2**radix2_exp samples; the hop is n_fft // 4.
        argmax: keep only each frame's strongest pitch class, as a one-hot.
        eps: a frame whose strongest filter-bank output is below this is silent (all zeros).
        pad_mode: ``constant`` (zeros) or ``reflect`` (AudioCraft's; a waveform shorter than
            n_fft is first zero-padded to n_fft, centred, as AudioCraft does).
        normalized: divide the power by sum(window^2) (torchaudio's ``normalized``, AudioCraft's).
        silent_frames: ``zeros`` (a frame whose peak is below eps is all zeros) or ``c``
            (AudioCraft's: divided by max(peak, eps), and a one-hot C under argmax).

    A plain object, not an nn.Module: it has no weights, so moving a model to another dtype or
    device never changes the features. It computes on the device and in the float dtype of the
    waveform it is given (the filter bank is built on first use, then kept per device and dtype).
    """

    def __init__(self, sample_rate: int, n_chroma: int = 12, radix2_exp: int = 12, *,
                 argmax: bool = False, eps: float = 1e-6, pad_mode: str = "constant", normalized: bool = False,
                 silent_frames: str = "zeros"):
        low, high = RADIX2_EXP_RANGE
        problems = [*check_int("sample_rate", sample_rate, minimum=1), *check_int("n_chroma", n_chroma, minimum=1),
                    *check_int("radix2_exp", radix2_exp, minimum=low, maximum=high),
                    *check_bool("argmax", argmax), *check_positive("eps", eps), *check_bool("normalized", normalized)]
        if pad_mode not in PAD_MODES:
            problems.append(f"pad_mode: expected one of {', '.join(PAD_MODES)}; got {pad_mode!r}")
        if silent_frames not in SILENT_FRAMES:
            problems.append(f"silent_frames: expected one of {', '.join(SILENT_FRAMES)}; got {silent_frames!r}")
        if problems:
            raise ConfigError(problems)
        self.sample_rate = sample_rate
        self.n_chroma = n_chroma
        self.radix2_exp = radix2_exp
        self.n_fft = 2**radix2_exp
        self.hop_length = self.n_fft // 4
        self.argmax = argmax
        self.eps = float(eps)
        self.pad_mode = pad_mode
        self.normalized = normalized
        self.silent_frames = silent_frames
        self._constants: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def frame_rate(self) -> float:
        """Frames per second: sample_rate / hop."""
        return self.sample_rate / self.hop_length

    def num_frames(self, n_samples: int) -> int:
        """Frames for a waveform of ``n_samples``: 1 + n_samples // hop (centred frames); with
        ``pad_mode="reflect"`` at least 1 + n_fft // hop (a shorter waveform is padded to n_fft)."""
        if self.pad_mode == "reflect":
            n_samples = max(n_samples, self.n_fft)
        return 1 + n_samples // self.hop_length

    def _bank_and_window(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (device, dtype)
        if key not in self._constants:
            bank = chroma_filter_bank(self.sample_rate, self.n_fft, self.n_chroma).to(device, dtype)
            window = torch.hann_window(self.n_fft, periodic=True, device=device, dtype=dtype)
            self._constants[key] = (bank, window)
        return self._constants[key]

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        """Chroma of ``wav`` float [B, T] or [T]: float [B, F, N] or [F, N], F = 1 + T // hop."""
        if not isinstance(wav, torch.Tensor) or wav.dim() not in (1, 2) or not wav.is_floating_point():
            shape = tuple(wav.shape) if isinstance(wav, torch.Tensor) else type(wav).__name__
            raise ValueError(f"ChromaExtractor takes a float waveform [B, T] or [T]; got {shape}")
        single = wav.dim() == 1
        batch = wav.unsqueeze(0) if single else wav
        dtype = batch.dtype if batch.dtype in (torch.float32, torch.float64) else torch.float32
        batch = batch.to(dtype)
        if self.pad_mode == "reflect" and batch.shape[-1] < self.n_fft:
            extra = self.n_fft - batch.shape[-1]  # centred zeros up to n_fft, the odd one at the end
            batch = torch.nn.functional.pad(batch, (extra // 2, extra - extra // 2))
        bank, window = self._bank_and_window(batch.device, dtype)
        spectrum = torch.stft(batch, self.n_fft, self.hop_length, window=window, center=True,
                              pad_mode=self.pad_mode, return_complex=True)  # [B, K, F]
        power = spectrum.real.square() + spectrum.imag.square()
        if self.normalized:
            power = power / window.square().sum()
        raw = torch.einsum("nk,bkf->bfn", bank, power)  # [B, F, N]
        peak = raw.amax(dim=-1, keepdim=True)  # [B, F, 1]
        if self.argmax:
            chroma = torch.nn.functional.one_hot(raw.argmax(dim=-1), self.n_chroma).to(dtype)
        else:
            chroma = raw / peak.clamp_min(self.eps)
        if self.silent_frames == "zeros":
            chroma = chroma * (peak >= self.eps).to(dtype)  # silent frames: all zeros
        return chroma[0] if single else chroma

    def __repr__(self) -> str:
        return (f"ChromaExtractor(sample_rate={self.sample_rate}, n_chroma={self.n_chroma}, "
                f"radix2_exp={self.radix2_exp}, argmax={self.argmax}, pad_mode={self.pad_mode!r}, "
                f"normalized={self.normalized}, silent_frames={self.silent_frames!r}, frame_rate={self.frame_rate:g})")
