"""Segments: which part of a file an item is, and reading it at the model's rate and channels.

Shapes: a waveform is float32 [C, T].

Positions are counted in samples at the *target* rate (the dataset's ``sample_rate``): a file of
``frames`` samples at ``rate`` Hz has ``ceil(frames * sample_rate / rate)`` samples there (as soxr
resamples). A segment of ``length`` samples starting at ``start`` is read with a little context
on both sides, resampled (soxr, via ``cuecraft.audio.resample``) and cut, so that it equals the
same span of the whole file resampled (up to the resampler's rounding), without reading the file
in full.

Channels: a mono model averages the file's channels; a model with C > 1 channels repeats a mono
file C times and takes the first C channels of a file with more; any other mapping is an error.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from typing import Any

import torch

from cuecraft._optional import require
from cuecraft.audio.resample import resample
from cuecraft.errors import AudioReadError, DatasetError

CONTEXT = 1024  # target-rate samples read on each side of a segment before resampling


def target_frames(frames: int, rate: int, sample_rate: int) -> int:
    """Samples of a ``frames``-sample file at ``rate`` once resampled to ``sample_rate``."""
    return frames if rate == sample_rate else math.ceil(frames * sample_rate / rate)


def sequential_starts(total: int, length: int) -> list[int]:
    """Starts of every segment of ``length`` samples covering ``total`` samples (the last padded)."""
    return list(range(0, max(total, 1), length))


def stable_seed(*parts: Any) -> int:
    """A 63-bit seed from ``parts`` (their ``repr``), the same in every process and run."""
    digest = hashlib.blake2b("|".join(map(repr, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def random_start(total: int, length: int, *parts: Any) -> int:
    """A start in ``[0, total - length]`` (0 when the file is shorter), drawn from ``parts``."""
    return random.Random(stable_seed(*parts)).randint(0, max(total - length, 0))


def map_channels(wav: torch.Tensor, channels: int, source: str) -> torch.Tensor:
    """[C_in, T] -> [channels, T] by the rule in the module docstring."""
    have = wav.shape[0]
    if have == channels:
        return wav
    if channels == 1:
        return wav.mean(dim=0, keepdim=True)
    if have == 1:
        return wav.expand(channels, -1).clone()
    if have > channels:
        return wav[:channels].clone()
    raise DatasetError(f"{source}: cannot make {channels} channels from a file of {have}; "
                       f"give a model of 1 channel, of {have} or fewer, or a mono file")


def pad(wav: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[C, T] -> ([C, length] zero-padded or cut, padding mask bool [length])."""
    valid = min(wav.shape[-1], length)
    out = wav.new_zeros(wav.shape[0], length)
    out[:, :valid] = wav[:, :valid]
    mask = torch.zeros(length, dtype=torch.bool)
    mask[:valid] = True
    return out, mask


def _read_frames(path: str, start: int, stop: int) -> tuple[torch.Tensor, int]:
    """Frames ``[start, stop)`` of a file: (float32 [C, n], rate)."""
    soundfile = require("soundfile", extra="audio", purpose="reading audio files")
    try:
        with soundfile.SoundFile(path) as handle:
            handle.seek(start)
            data = handle.read(stop - start, dtype="float32", always_2d=True)  # [n, C]
            rate = handle.samplerate
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError, EOFError) as error:
        raise AudioReadError(f"{path}: cannot read audio ({error})") from None
    return torch.from_numpy(data.T.copy()), int(rate)  # [n, C] -> [C, n]


def read_segment(path: str | os.PathLike[str], *, frames: int, rate: int, start: int, length: int | None,
                 sample_rate: int) -> torch.Tensor:
    """Samples ``[start, start + length)`` at ``sample_rate`` of the file at ``path`` (``frames``
    samples at ``rate`` on disk): float32 [C_file, n], n <= length (short at the end of the file).
    ``length`` None reads to the end."""
    path = os.fspath(path)
    total = target_frames(frames, rate, sample_rate)
    stop = total if length is None else min(start + length, total)
    if rate == sample_rate:
        wav, _ = _read_frames(path, start, stop)
        return wav
    # Read whole resampling periods (step_source file samples = step_target output samples), so
    # the block's first output sample is exactly a sample of the whole file resampled.
    g = math.gcd(rate, sample_rate)
    step_source, step_target = rate // g, sample_rate // g
    first = max(start - CONTEXT, 0) // step_target  # periods
    last = math.ceil((stop + CONTEXT) / step_target)
    source_start, source_stop = first * step_source, min(last * step_source, frames)
    block, _ = _read_frames(path, source_start, source_stop)
    block = resample(block, rate, sample_rate)  # [C, ~(last - first) * step_target]
    offset = start - first * step_target
    return block[:, offset: offset + (stop - start)]


def decode_bytes(data: bytes, source: str) -> tuple[torch.Tensor, int]:
    """An audio file's bytes (a WebDataset member): (float32 [C, T], rate). Its header is checked
    before decoding and its samples after, as ``cuecraft.audio.io.load_audio`` checks a file's."""
    import io

    from cuecraft.audio.io import check_header, check_samples

    soundfile = require("soundfile", extra="audio", purpose="reading audio files")
    errors = (soundfile.SoundFileError, RuntimeError, OSError, ValueError, EOFError, MemoryError)
    try:
        handle = soundfile.SoundFile(io.BytesIO(data))
    except errors as error:
        raise AudioReadError(f"{source}: cannot read audio ({error})") from None
    with handle:
        rate = int(handle.samplerate)
        check_header(source, rate, int(handle.frames), int(handle.channels))  # a 1 Hz header is not hours of audio
        try:
            array = handle.read(dtype="float32", always_2d=True)  # [T, C]
        except errors as error:
            raise AudioReadError(f"{source}: cannot read audio ({error})") from None
    if array.shape[0] == 0:
        raise AudioReadError(f"{source}: the file holds no audio (0 frames)")
    check_samples(array, source)
    return torch.from_numpy(array.T.copy()), rate
