"""The log-mel picture of a generated clip (the PNG written beside each WAV)."""

from __future__ import annotations

import math

import numpy as np

from cuecraft._optional import require


def log_mel(clip: np.ndarray, sample_rate: int) -> np.ndarray:
    """float [T] -> log-mel frames [D, L] (dB, low bands first): a ~64 ms window, hop a quarter
    of it, up to 64 mel bands (fewer at low rates, so that no band is empty)."""
    librosa = require("librosa", extra="audio", purpose="the spectrogram PNG")
    n_fft = 2 ** max(6, round(math.log2(sample_rate * 0.064)))
    mel = librosa.feature.melspectrogram(y=np.asarray(clip, dtype=np.float32), sr=sample_rate, n_fft=n_fft,
                                         hop_length=n_fft // 4, n_mels=min(64, n_fft // 8), center=True)
    return librosa.power_to_db(mel + 1e-10, ref=1.0, top_db=80.0)
