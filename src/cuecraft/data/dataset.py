"""``AudioDataset``: training items from a folder of audio, a manifest, or WebDataset shards.

Shapes: ``item.wav`` is float32 [C, T], ``item.padding_mask`` bool [T].

Open one with a factory (or ``open_dataset(path, ...)``, which picks by what ``path`` is):

    AudioDataset.from_folder("music/", sample_rate=32000, segment_seconds=10)
    AudioDataset.from_manifest("train.jsonl", sample_rate=32000, segment_seconds=10, mode="sequential")
    AudioDataset.from_shards("shards/train-{000..127}.tar", sample_rate=32000, segment_seconds=10)

Folder and manifest datasets are map-style (``len``, ``dataset[i]``, any sampler); shards are a
streamed ``ShardDataset`` (``cuecraft.data.shards``). Items:
- ``mode="random"``: item i is file i, at a start drawn from (seed, epoch, i): the same in every
  process, a new one each epoch (``set_epoch``, as DistributedSampler);
- ``mode="sequential"``: every segment of every file in order, the last of each file padded;
- ``segment_seconds=None``: whole files (the collate pads the batch to its longest).
Metadata: the sidecar's fields, a manifest line's fields over them, ``seconds_start`` /
``seconds_total`` (integer seconds, as stable-audio-tools), then the custom hook over all.

Bad input is never replaced by another item. ``on_error="raise"``: opening raises for the first
unusable file (a DatasetError or AudioReadError naming it and the reason) and reading raises for a
file that broke since. ``on_error="skip"``: unusable files are left out at open, listed in
``dataset.report``; an item that fails to read, or that the hook rejects, is None, which
``AudioCollate`` drops and counts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from cuecraft._bounded import is_folder, is_regular
from cuecraft.audio.io import AUDIO_EXTENSIONS
from cuecraft.data.index import IndexStats
from cuecraft.data.item import AudioItem
from cuecraft.data.options import DataOptions, DataReport, finish_item, resolve_options
from cuecraft.data.segments import random_start, read_segment, sequential_starts, target_frames
from cuecraft.data.sidecar import as_hook
from cuecraft.data.sources import FileRecord, scan
from cuecraft.errors import AudioReadError, DatasetError


class AudioDataset(torch.utils.data.Dataset):
    """Map-style dataset over indexed audio files; build it with ``from_folder`` / ``from_manifest``."""

    def __init__(self, files: list[FileRecord], options: DataOptions, *, root: str = "",
                 report: DataReport | None = None, index: IndexStats | None = None):
        self.files = files
        self.options = options
        self.root = root
        self.report = report if report is not None else DataReport(found=len(files))
        self.index = index  # what opening the index did (probed, reused, cache file)
        self.epoch = 0
        self._hook = as_hook(options.custom_metadata)
        self._totals = [target_frames(f.frames, f.sample_rate, options.sample_rate) for f in files]
        length = options.segment_frames
        if options.mode == "sequential" and length is not None:
            self._segments = [(i, start) for i, total in enumerate(self._totals)
                              for start in sequential_starts(total, length)]
        else:
            self._segments = None

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def _open(cls, path: str | os.PathLike[str], options: DataOptions | None, fields: dict[str, Any]) -> AudioDataset:
        options = resolve_options(options, fields)
        result = scan(path, read_sidecars=options.sidecars, cache_dir=options.cache_dir)
        report = DataReport(found=result.found)
        for source, reason in result.problems:
            if options.on_error == "raise":
                error = AudioReadError if reason.startswith(("cannot read audio", "no such file", "the file holds")) \
                    else DatasetError
                raise error(f"{source}: {reason}")
            report.skip(source, reason)
        if not result.files and options.on_error == "raise":
            raise DatasetError(f"{path}: no audio files found (suffixes: see cuecraft.audio.io.AUDIO_EXTENSIONS)")
        return cls(result.files, options, root=os.fspath(path), report=report, index=result.index)

    @classmethod
    def from_folder(cls, path: str | os.PathLike[str], options: DataOptions | None = None, **fields: Any) -> AudioDataset:
        """Every audio file under the folder ``path`` (recursive), with its sidecar.

        ``fields`` are DataOptions fields (``sample_rate`` is required without ``options``)."""
        if not is_folder(path):
            raise DatasetError(f"{path}: not a folder")
        return cls._open(path, options, fields)

    @classmethod
    def from_manifest(cls, path: str | os.PathLike[str], options: DataOptions | None = None,
                      **fields: Any) -> AudioDataset:
        """The files of a ``.jsonl`` (objects with "path" and metadata) or ``.txt`` manifest."""
        if not is_regular(path):
            raise DatasetError(f"{path}: no such manifest file")
        return cls._open(path, options, fields)

    @staticmethod
    def from_shards(urls: str | os.PathLike[str] | list[str], options: DataOptions | None = None, *,
                    rank: int | None = None, world_size: int | None = None, **fields: Any):
        """A streamed ShardDataset over WebDataset tar shards (see ``cuecraft.data.shards``)."""
        from cuecraft.data.shards import ShardDataset

        return ShardDataset(urls, resolve_options(options, fields), rank=rank, world_size=world_size)

    # -- items -----------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Draw new random segments: call before each epoch (workers copy the dataset when an
        iteration starts, so with ``persistent_workers`` the epoch is the one they started with)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._segments) if self._segments is not None else len(self.files)

    @property
    def total_seconds(self) -> float:
        return sum(f.duration for f in self.files)

    def locate(self, index: int) -> tuple[int, int]:
        """(file number, start sample at ``sample_rate``) of item ``index``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"item {index} of a dataset of {len(self)} items")
        index %= len(self)
        if self._segments is not None:
            return self._segments[index]
        length = self.options.segment_frames
        if length is None:
            return index, 0
        return index, random_start(self._totals[index], length, self.options.seed, self.epoch, index)

    def __getitem__(self, index: int) -> AudioItem | None:
        number, start = self.locate(index)
        record, options = self.files[number], self.options
        try:
            wav = read_segment(record.path, frames=record.frames, rate=record.sample_rate, start=start,
                               length=options.segment_frames, sample_rate=options.sample_rate)
            item = finish_item(wav, rate=options.sample_rate, options=options, source=record.path,
                               relpath=record.relpath, start=start, total=self._totals[number],
                               metadata=record.metadata, hook=self._hook, length=options.segment_frames)
        except (AudioReadError, DatasetError) as error:
            if options.on_error == "raise":
                raise
            self.report.skip(record.path, str(error).removeprefix(record.path + ": "))
            return None
        if item is None:
            self.report.rejected.append(record.path)
        return item


def open_dataset(path: str | os.PathLike[str] | list[str], options: DataOptions | None = None, **fields: Any):
    """A dataset for ``path``: a folder of audio, a ``.jsonl`` / ``.txt`` manifest, or shards (a
    ``.tar`` file, a glob or brace pattern of them, a list, or a folder of ``.tar`` files and no audio)."""
    if is_shards(path):
        return AudioDataset.from_shards(path, options, **fields)
    if is_folder(path):
        return AudioDataset.from_folder(path, options, **fields)
    return AudioDataset.from_manifest(path, options, **fields)


def is_shards(path: str | os.PathLike[str] | list[str]) -> bool:
    """Whether ``path`` names WebDataset shards rather than a folder of audio or a manifest."""
    if isinstance(path, (list, tuple)):
        return True
    text = os.fspath(path)
    if text.endswith(".tar") or any(c in text for c in "*{"):
        return True
    folder = Path(text)
    if not is_folder(folder) or not any(folder.glob("*.tar")):
        return False
    return not any(p.suffix.lower() in AUDIO_EXTENSIONS for p in folder.rglob("*"))
