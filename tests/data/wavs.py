"""Small audio files for the dataset tests: sines of known frequency, any rate and channels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def sine(seconds: float, rate: int, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    """float32 [T, C]: channel c is a sine of freq * (c + 1) Hz at amplitude 0.5."""
    t = np.arange(round(seconds * rate)) / rate
    return np.stack([0.5 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)], axis=1).astype(np.float32)


def write_wav(path: Path, seconds: float, rate: int, channels: int = 1, freq: float = 440.0,
              sidecar: dict | None = None) -> np.ndarray:
    """Write a float WAV (exact samples) and, if given, its sidecar; returns the samples [T, C]."""
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    data = sine(seconds, rate, channels, freq)
    soundfile.write(path, data, rate, subtype="FLOAT")
    if sidecar is not None:
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    return data
