"""Writing generated waveforms to WAV files, atomically (soundfile, imported where used).

Shapes: a waveform is float [T] (mono), samples in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cuecraft._files import atomic_write
from cuecraft._optional import require


def numbered_paths(out: str | Path, count: int) -> list[Path]:
    """``out`` itself for one file; ``stem_0.wav, stem_1.wav, ...`` beside it for several."""
    out = Path(out)
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(count)]


def write_wav(path: str | Path, waveform: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write mono ``waveform`` [T] to ``path`` as WAV (16-bit PCM by default), atomically.

    The file is written next to ``path`` under a temporary name, synced and renamed over it
    (``cuecraft._files.atomic_write``), so a crash never leaves a torn file, and a reader never
    sees a partial one. NaNs are written as 0 and samples are clipped to [-1, 1] (what PCM holds).
    """
    soundfile = require("soundfile", extra="audio", purpose="writing WAV files")
    path = Path(path)
    waveform = np.asarray(waveform, dtype=np.float32)
    assert waveform.ndim == 1, waveform.shape
    samples = np.clip(np.nan_to_num(waveform, nan=0.0), -1.0, 1.0)
    with atomic_write(path) as file:
        soundfile.write(file, samples, sample_rate, format="WAV", subtype=subtype)
    return path


def write_wavs(out: str | Path, waveforms: Sequence[np.ndarray], sample_rate: int) -> list[Path]:
    """Write each waveform [T] to ``numbered_paths(out, len(waveforms))``; returns the paths."""
    return [write_wav(path, waveform, sample_rate)
            for path, waveform in zip(numbered_paths(out, len(waveforms)), waveforms)]
