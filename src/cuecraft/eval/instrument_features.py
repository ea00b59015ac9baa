"""What the instrument classifier hears: peak-normalised log-mel frames of the built-in model's geometry.

Notation: T samples (16 kHz mono), M = 128 mel bands, L = ceil(T / 256) frames.

The built-in model writes audio decoded by Griffin-Lim from a 128-band log-mel (16 kHz, n_fft
1024, hop 256), so the classifier reads exactly that log-mel (``MelRepresentation`` unnormalised:
``log(max(mel, 1e-5))``) of the waveform peak-normalised to 1 (a silent waveform stays silent). A
gain change therefore leaves the features as they are.

``roundtrip`` passes a waveform through encode -> decode of that representation (Griffin-Lim,
its default 64 iterations), so training can show the classifier the artefacts of generated audio.
Griffin-Lim costs about 0.1 s of one core per second of audio, which is why training round-trips
a segment of each piece and every feature is cached on disk (``FeatureCache``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from cuecraft._files import atomic_write

FEATURES_VERSION = 1  # part of every cache key: a change of the features invalidates old entries


@dataclass(frozen=True)
class FeatureOptions:
    """The log-mel geometry (the built-in model's); saved with a classifier and checked at load."""

    sample_rate: int = 16000  # Hz; audio is resampled to it
    n_fft: int = 1024
    hop: int = 256  # samples per frame: 62.5 frames/s
    n_mels: int = 128  # M

    def to_dict(self) -> dict:
        return asdict(self)


class LogMelFeatures:
    """Waveforms -> float32 log-mel [M, L]; ``roundtrip`` -> the Griffin-Lim decoding of a waveform."""

    def __init__(self, options: FeatureOptions | None = None):
        from cuecraft.models.representation.mel import MelOptions, MelRepresentation

        self.options = options = options or FeatureOptions()
        self.representation = MelRepresentation(MelOptions(sample_rate=options.sample_rate, n_fft=options.n_fft,
                                                           hop=options.hop, n_mels=options.n_mels))

    @torch.no_grad()
    def __call__(self, wav: np.ndarray | torch.Tensor) -> np.ndarray:
        """wav [T] at ``options.sample_rate`` (T >= 1) -> float32 [M, ceil(T / hop)]."""
        x = torch.as_tensor(wav, dtype=torch.float32).reshape(1, -1)
        peak = float(x.abs().max()) if x.numel() else 0.0
        if peak > 0:
            x = x / peak
        return self.representation.log_mel_signals(x)[0].numpy()

    @torch.no_grad()
    def roundtrip(self, wav: np.ndarray | torch.Tensor) -> np.ndarray:
        """wav [T] -> the same length decoded from its log-mel by Griffin-Lim (float32 [T])."""
        x = torch.as_tensor(wav, dtype=torch.float32).reshape(1, 1, -1)
        frames = self.representation.encode(x)  # unfitted: mean 0, std 1, so decode inverts it exactly
        return self.representation.decode(frames, x.shape[-1])[0, 0].numpy()


def read_mono(path: str | os.PathLike[str], sample_rate: int) -> np.ndarray:
    """The file at ``path`` down-mixed and resampled to ``sample_rate``: float32 [T] (AudioReadError if unreadable)."""
    from cuecraft.audio.io import load_audio
    from cuecraft.audio.resample import prepare_waveform

    wav, rate = load_audio(path)
    return prepare_waveform(wav, rate, sample_rate).numpy()


def middle_segment(wav: np.ndarray, samples: int) -> np.ndarray:
    """The ``samples`` in the middle of ``wav`` [T] (all of it when shorter)."""
    start = max(0, (len(wav) - samples) // 2)
    return wav[start: start + samples]


class FeatureCache:
    """Features on disk, one ``<sha256>.npy`` (float16) per (file, its size and mtime, variant, options).

    A changed file, other options or another variant get another key; an unreadable or misshapen
    entry is recomputed. Writes are atomic, so a stopped run resumes where it was.
    """

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)

    def key(self, path: str | os.PathLike[str], variant: str, options: FeatureOptions) -> str:
        resolved = Path(path).resolve()
        stat = resolved.stat()
        document = {"path": str(resolved), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "variant": variant,
                    "options": options.to_dict(), "version": FEATURES_VERSION}
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    def get(self, key: str, n_mels: int) -> np.ndarray | None:
        try:
            array = np.load(self.directory / f"{key}.npy", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if array.ndim != 2 or array.shape[0] != n_mels or array.shape[1] < 1 or not np.isfinite(array).all():
            return None
        return array

    def put(self, key: str, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, array.astype(np.float16), allow_pickle=False)
        with atomic_write(self.directory / f"{key}.npy") as handle:
            handle.write(buffer.getvalue())


def cached_features(paths: list[str], features: LogMelFeatures, cache: FeatureCache | None, *, variant: str,
                    segment_seconds: float | None = None, progress=None) -> list[np.ndarray]:
    """Log-mel [M, L] of each file (float16): ``variant`` "clean" or "roundtrip"; ``segment_seconds``
    keeps the middle segment of that length before anything else. ``progress(done, total)`` is
    called after each file."""
    options = features.options
    name = variant if segment_seconds is None else f"{variant}:{segment_seconds:g}s"
    out = []
    for number, path in enumerate(paths):
        key = cache.key(path, name, options) if cache is not None else None
        array = cache.get(key, options.n_mels) if cache is not None else None
        if array is None:
            wav = read_mono(path, options.sample_rate)
            if segment_seconds is not None:
                wav = middle_segment(wav, round(segment_seconds * options.sample_rate))
            if variant == "roundtrip":
                wav = features.roundtrip(wav)
            array = features(wav).astype(np.float16)
            if cache is not None:
                cache.put(key, array)
        out.append(array)
        if progress is not None:
            progress(number + 1, len(paths))
    return out
