"""Reading audio files (soundfile, imported where used), bounded and checked.

Shapes: a waveform is float32 [C, T] (C channels, T samples).

Before decoding, the file must be a regular file (a FIFO or a device would block the reader) and
its header must be plausible: a sample rate in [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE], at most
MAX_CHANNELS channels and at most ``max_seconds`` of audio (``DEFAULT_MAX_SECONDS``; the
environment variable ``CUECRAFT_MAX_AUDIO_SECONDS`` changes the default). After decoding, every
sample must be finite and within +-MAX_AMPLITUDE. Any failure is an AudioReadError naming the file.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import torch

from cuecraft._optional import require
from cuecraft.errors import AudioReadError

# Suffixes ``cuecraft cache fill`` looks for in a folder: formats libsndfile (>= 1.1) reads.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".w64", ".caf")
MIN_SAMPLE_RATE = 1_000  # Hz; a header claiming less is corrupt or hostile (1 Hz -> 256 M samples at 32 kHz)
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 64
DEFAULT_MAX_SECONDS = 4 * 3600.0  # four hours
MAX_AMPLITUDE = 64.0  # float files may pass 1.0 a little; 1e30 is not audio


def default_max_seconds() -> float:
    """``CUECRAFT_MAX_AUDIO_SECONDS`` if set (a positive number), else DEFAULT_MAX_SECONDS."""
    value = os.environ.get("CUECRAFT_MAX_AUDIO_SECONDS")
    try:
        seconds = float(value) if value else DEFAULT_MAX_SECONDS
    except ValueError:
        return DEFAULT_MAX_SECONDS
    return seconds if seconds > 0 else DEFAULT_MAX_SECONDS


def check_regular(name: str) -> None:
    """AudioReadError unless ``name`` is a regular file (a FIFO or a device would block or never end)."""
    try:
        info = os.stat(name)
    except (OSError, ValueError) as error:  # ValueError: a NUL in the name
        raise AudioReadError(f"{name}: cannot read audio ({getattr(error, 'strerror', None) or error})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode)
                else "a device or socket")
        raise AudioReadError(f"{name}: cannot read audio (it is {kind}, not a regular file)")


def check_header(name: str, rate: int, frames: int, channels: int, *, max_seconds: float | None = None,
                 hint: str = "max_seconds, or CUECRAFT_MAX_AUDIO_SECONDS") -> None:
    """AudioReadError unless a header is plausible: a rate in [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE], 1 to
    MAX_CHANNELS channels and at most ``max_seconds`` (default ``default_max_seconds()``) of audio;
    ``hint`` says in the message what sets the limit."""
    limit = default_max_seconds() if max_seconds is None else max_seconds
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioReadError(f"{name}: its header claims a sample rate of {rate} Hz; cuecraft reads "
                             f"{MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioReadError(f"{name}: its header claims {channels} channels; cuecraft reads 1 to {MAX_CHANNELS}")
    if frames / rate > limit:
        raise AudioReadError(f"{name}: {frames / rate:,.1f} s of audio by its header; the limit is {limit:,.1f} s "
                             f"({hint})")


def audio_info(path: str | os.PathLike[str], *, max_seconds: float | None = None,
               limit_hint: str = "max_seconds, or CUECRAFT_MAX_AUDIO_SECONDS") -> tuple[int, int, int]:
    """(frames, sample rate, channels) of an audio file from its header, checked as ``load_audio``
    checks it (a regular file, a plausible header, at most ``max_seconds``), nothing decoded."""
    soundfile = require("soundfile", extra="audio", purpose="reading audio files")
    name = os.fspath(path)
    check_regular(name)
    try:
        info = soundfile.info(name)
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError, EOFError) as error:
        raise AudioReadError(f"{name}: cannot read audio ({error})") from None
    rate, frames, channels = int(info.samplerate), int(info.frames), int(info.channels)
    check_header(name, rate, frames, channels, max_seconds=max_seconds, hint=limit_hint)
    return frames, rate, channels


def load_audio(path: str | os.PathLike[str], *, seek_time: float = 0.0, duration: float | None = None,
               max_seconds: float | None = None,
               limit_hint: str = "max_seconds, or CUECRAFT_MAX_AUDIO_SECONDS") -> tuple[torch.Tensor, int]:
    """Read an audio file: (waveform float32 [C, T], sample rate in Hz).

    ``seek_time`` / ``duration`` (seconds) read only that part. ``max_seconds`` (default
    ``default_max_seconds()``) bounds the whole file's length, checked from its header before
    anything is decoded. Any failure (no such file, not a regular file, a format libsndfile does
    not know, an implausible header, a corrupt file, non-finite or absurd samples) is an
    AudioReadError naming the file and the reason (``limit_hint``: what sets the length limit, for
    the message).
    """
    soundfile = require("soundfile", extra="audio", purpose="reading audio files")
    name = os.fspath(path)
    frames, rate, _ = audio_info(name, max_seconds=max_seconds, limit_hint=limit_hint)
    start = max(0, int(round(seek_time * rate)))
    count = -1 if duration is None else max(0, int(round(duration * rate)))
    try:
        data, sample_rate = soundfile.read(name, start=min(start, frames), frames=count, dtype="float32",
                                           always_2d=True)  # [T, C]
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError, EOFError, MemoryError) as error:
        raise AudioReadError(f"{name}: cannot read audio ({error})") from None
    check_samples(data, name)
    return torch.from_numpy(data.T.copy()), int(sample_rate)  # [T, C] -> [C, T]


def check_samples(data: np.ndarray, name: str) -> None:
    """AudioReadError unless every sample is finite and within +-MAX_AMPLITUDE."""
    if data.size == 0:
        return
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - np.count_nonzero(finite))
        raise AudioReadError(f"{name}: {bad:,} of {data.size:,} samples are not finite (NaN or infinity)")
    peak = float(np.abs(data).max())
    if peak > MAX_AMPLITUDE:
        raise AudioReadError(f"{name}: samples reach {peak:.3g}; audio is expected within +-1 "
                             f"(cuecraft reads up to +-{MAX_AMPLITUDE:g})")
