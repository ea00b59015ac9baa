"""``DataOptions``: how a dataset turns files into items, and the skip report every dataset keeps."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from cuecraft._text import short_repr
from cuecraft.audio.io import MAX_CHANNELS, MAX_SAMPLE_RATE
from cuecraft.data.item import AudioItem
from cuecraft.data.segments import map_channels, pad
from cuecraft.data.sidecar import CustomMetadata, apply_custom_metadata
from cuecraft.errors import DatasetError

MAX_SEGMENT_SECONDS = 3600.0  # an item; whole files are bounded by cuecraft.audio.io's length limit
MAX_SEGMENT_SAMPLES = 2**28  # samples of one item, all channels (1 GiB of float32)
SegmentMode = Literal["random", "sequential"]
OnError = Literal["raise", "skip"]


@dataclass(frozen=True)
class DataOptions:
    """Options shared by every dataset kind (folder, manifest, shards)."""

    sample_rate: int  # Hz of every item; files at another rate are resampled (soxr)
    channels: int = 1  # channels of every item (mono: the mean; see cuecraft.data.segments)
    segment_seconds: float | None = None  # item length; None: whole files (the collate pads)
    mode: SegmentMode = "random"  # random: one seeded segment per file and epoch; sequential: all
    seed: int = 0  # random segments are drawn from (seed, epoch, file): the same in every worker
    on_error: OnError = "raise"  # bad input: raise a DatasetError / AudioReadError, or skip it
    sidecars: bool = True  # read <audio>.json sidecars (AudioCraft's metadata)
    custom_metadata: CustomMetadata | str | os.PathLike[str] | None = None  # get_custom_metadata(info, audio)
    cache_dir: str | os.PathLike[str] | None = None  # index cache when the data folder is read-only

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int) \
                or not 0 < self.sample_rate <= MAX_SAMPLE_RATE:
            problems.append(f"sample_rate must be an int in [1, {MAX_SAMPLE_RATE:,}] (Hz); "
                            f"got {short_repr(self.sample_rate)}")
        if isinstance(self.channels, bool) or not isinstance(self.channels, int) \
                or not 0 < self.channels <= MAX_CHANNELS:
            problems.append(f"channels must be an int in [1, {MAX_CHANNELS}]; got {short_repr(self.channels)}")
        seconds = self.segment_seconds
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                    or not math.isfinite(seconds) or not 0 < seconds <= MAX_SEGMENT_SECONDS):
            problems.append(f"segment_seconds must be a number in (0, {MAX_SEGMENT_SECONDS:g}] or None (whole "
                            f"files); got {short_repr(seconds)}")
        elif seconds is not None and not problems and seconds * self.sample_rate * self.channels > MAX_SEGMENT_SAMPLES:
            problems.append(f"segment_seconds: {seconds:g} s x {self.sample_rate} Hz x {self.channels} channel(s) is "
                            f"more than {MAX_SEGMENT_SAMPLES:,} samples per item; give a shorter segment")
        if self.mode not in ("random", "sequential"):
            problems.append(f"mode must be 'random' or 'sequential'; got {self.mode!r}")
        if self.on_error not in ("raise", "skip"):
            problems.append(f"on_error must be 'raise' or 'skip'; got {self.on_error!r}")
        if problems:
            raise DatasetError("invalid DataOptions: " + "; ".join(problems))

    @property
    def segment_frames(self) -> int | None:
        """Samples per item at ``sample_rate`` (None: whole files)."""
        return None if self.segment_seconds is None else max(1, round(self.segment_seconds * self.sample_rate))


def resolve_options(options: DataOptions | None, fields: dict[str, Any]) -> DataOptions:
    """``options`` with ``fields`` replaced, or DataOptions(**fields)."""
    if options is None:
        if "sample_rate" not in fields:
            raise DatasetError("a dataset needs sample_rate (the model's rate in Hz), e.g. sample_rate=32000")
        return DataOptions(**fields)
    from dataclasses import replace

    return replace(options, **fields) if fields else options


@dataclass
class DataReport:
    """What a dataset left out, each with its reason: ``skipped`` (bad input, on_error="skip")
    and ``rejected`` (the custom metadata hook returned ``__reject__``). Items dropped inside
    DataLoader workers are counted in the workers' copies; the batches say how many they lost
    (``AudioBatch.dropped``)."""

    found: int = 0  # files (or shard members) listed
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    rejected: list[str] = field(default_factory=list)  # files whose item the hook rejected

    def skip(self, source: str, reason: str) -> None:
        self.skipped.append((source, reason))

    def summary(self) -> str:
        return f"{self.found} files: {len(self.skipped)} skipped, {len(self.rejected)} rejected"


def finish_item(wav: torch.Tensor, *, rate: int, options: DataOptions, source: str, relpath: str,
                start: int, total: int, metadata: dict[str, Any], hook: CustomMetadata | None,
                length: int | None) -> AudioItem | None:
    """A segment read from a file ([C_file, n] at ``options.sample_rate``, starting at sample
    ``start`` of the file's ``total``) -> an AudioItem (channels mapped, zero-padded to
    ``length`` or left as it is when None, metadata completed); None when the hook rejects it."""
    sample_rate = options.sample_rate
    wav = map_channels(wav, options.channels, source)
    wav, mask = pad(wav, wav.shape[-1] if length is None else length)
    info = {
        **metadata,
        "seconds_start": math.floor(start / sample_rate),  # integer seconds, as stable-audio-tools
        "seconds_total": math.ceil(total / sample_rate),
    }
    if hook is not None:
        info.update(path=source, relpath=relpath, timestamps=(start, start + int(mask.sum())),
                    padding_mask=mask, sample_rate=sample_rate)
        merged = apply_custom_metadata(hook, info, wav, source)
        if merged is None:
            return None
        for name in ("path", "relpath", "timestamps", "padding_mask", "sample_rate"):
            if merged.get(name) is info[name]:
                merged.pop(name)  # what we handed in, not item metadata
        info = merged
    return AudioItem(wav=wav, sample_rate=sample_rate, padding_mask=mask, metadata=info,
                     path=source, seek_time=start / sample_rate)
