"""``ShardDataset``: items streamed from WebDataset tar shards, split across ranks and workers.

Shapes: ``item.wav`` is float32 [C, T].

A shard is a tar file whose members are grouped by key (the name before the first "."): one audio
member (a suffix of ``AUDIO_EXTENSIONS``: ``.wav``, ``.flac`` ...) and, optionally, one ``.json`` of
metadata (checked as a sidecar) per key. Shards are read with the ``webdataset`` package.

Splitting without overlap: the shard list (sorted; with ``mode="random"`` shuffled by (seed,
epoch), the same order in every process) is dealt round-robin over the R x W readers, reader
``rank * W + worker`` taking shards ``reader, reader + R*W, ...``. R and rank come from the
arguments, else from ``torch.distributed`` when it is initialised, else (1, 0); W and worker from
the DataLoader's worker info. So every member is read by exactly one reader; there must be at
least R x W shards (an error says so otherwise). Readers may get different numbers of items
when shards differ in size: under DDP give shards of equal size or limit the steps per epoch.

Items per member: ``mode="random"``: one segment, its start drawn from (seed, epoch, shard,
key); ``mode="sequential"``: every segment; ``segment_seconds=None``: the whole member.
Members are decoded and resampled whole (shard members are expected to be clips, not albums).
Errors: ``on_error="raise"`` raises a DatasetError / AudioReadError naming ``SHARD:KEY`` and the
reason; ``"skip"`` drops the member and lists it in ``dataset.report`` (of this process).
"""

from __future__ import annotations

import glob
import os
import random
import re
from collections.abc import Iterator
from typing import Any

import torch

from cuecraft._bounded import is_folder, is_regular
from cuecraft._optional import require
from cuecraft._text import shorten
from cuecraft.audio.io import AUDIO_EXTENSIONS
from cuecraft.audio.resample import resample
from cuecraft.data.item import AudioItem
from cuecraft.data.options import DataOptions, DataReport, finish_item
from cuecraft.data.segments import decode_bytes, random_start, sequential_starts, stable_seed
from cuecraft.data.sidecar import as_hook, parse_music_info, parse_sidecar_text
from cuecraft.errors import AudioReadError, DatasetError

_AUDIO_SUFFIXES = tuple(ext.lstrip(".") for ext in AUDIO_EXTENSIONS)
MAX_SHARDS = 100_000  # a brace pattern such as x-{000000000..999999999}.tar is refused as it expands


_RANGE = re.compile(r"(-?\d+|[A-Za-z])\.\.(-?\d+|[A-Za-z])(?:\.\.(-?\d+))?")


def brace_bound(pattern: str) -> int:
    """An upper bound of the names a brace pattern expands to (braceexpand's grammar: ``{a,b}``,
    ``{1..9}``, ``{01..10..2}``, ``{a..z}``, nesting, ``\\`` escapes), found without expanding it:
    the product, over every group, of its range's length or its number of alternatives."""
    total, stack, i = 1, [], 0
    while i < len(pattern) and total <= MAX_SHARDS:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            stack.append([i, 0])
        elif c == "," and stack:
            stack[-1][1] += 1
        elif c == "}" and stack:
            start, commas = stack.pop()
            match = _RANGE.fullmatch(pattern[start + 1:i])
            if match and max(len(g or "") for g in match.groups()) > 18:
                return MAX_SHARDS + 1  # a range of 19-digit numbers
            if match and match[1].lstrip("-").isdigit() == match[2].lstrip("-").isdigit():
                low, high = (int(g) if g.lstrip("-").isdigit() else ord(g) for g in match.groups()[:2])
                total *= abs(high - low) // max(abs(int(match[3] or 1)), 1) + 1
            elif commas:
                total *= commas + 1
        i += 1
    return total


def expand_shards(urls: str | os.PathLike[str] | list[str]) -> list[str]:
    """Shard paths from a list, a folder (its ``*.tar``), a glob or a brace pattern
    (``train-{000..127}.tar``), sorted; DatasetError when nothing matches."""
    if isinstance(urls, (list, tuple)):
        names = [os.fspath(u) for u in urls]
    else:
        text = os.fspath(urls)
        if is_folder(text):
            names = sorted(glob.glob(os.path.join(text, "*.tar")))
        else:
            braceexpand = require("braceexpand", extra="data", purpose="expanding WebDataset shard patterns")
            if brace_bound(text) > MAX_SHARDS:  # braceexpand materialises each range: count first
                raise DatasetError(f"{shorten(text, 300)}: names more than {MAX_SHARDS:,} shards; give at most "
                                   f"that many (a pattern such as train-{{000000..099999}}.tar)")
            names = []
            try:
                for pattern in braceexpand.braceexpand(text):  # a generator: counted as it expands
                    names += sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
                    if len(names) > MAX_SHARDS:
                        raise DatasetError(f"{shorten(text, 300)}: names more than {MAX_SHARDS:,} shards (globs "
                                           "expanded); give at most that many")
            except ValueError as error:  # braceexpand's UnbalancedBracesError
                raise DatasetError(f"{shorten(text, 300)}: not a shard pattern ({error})") from None
    if not names:
        raise DatasetError(f"{urls}: no WebDataset shards (.tar files) found")
    missing = [n for n in names if "://" not in n and not is_regular(n)]  # a FIFO or a device is no shard
    if missing:
        raise DatasetError(f"{missing[0]}: no such shard ({len(missing)} of {len(names)} shards missing)")
    return sorted(names)


def distributed_rank() -> tuple[int, int]:
    """(rank, world_size) of the initialised torch.distributed process group, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ShardDataset(torch.utils.data.IterableDataset):
    """Streamed items from WebDataset shards (module docstring: splitting, segments, errors)."""

    def __init__(self, urls: str | os.PathLike[str] | list[str], options: DataOptions, *,
                 rank: int | None = None, world_size: int | None = None):
        super().__init__()
        self.shards = expand_shards(urls)
        self.options = options
        if (rank is None) != (world_size is None):
            raise DatasetError(f"give both rank and world_size, or neither; got rank={rank}, world_size={world_size}")
        if world_size is not None and not (world_size >= 1 and 0 <= rank < world_size):  # type: ignore[operator]
            raise DatasetError(f"rank must be in [0, world_size); got rank={rank}, world_size={world_size}")
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.report = DataReport()
        self._hook = as_hook(options.custom_metadata)

    def set_epoch(self, epoch: int) -> None:
        """Shuffle shards and draw random segments anew (call before each epoch)."""
        self.epoch = int(epoch)

    def reader_shards(self, rank: int, world_size: int, worker: int, workers: int) -> list[str]:
        """The shards reader (rank, worker) of (world_size x workers) reads this epoch."""
        order = list(self.shards)
        if self.options.mode == "random":
            random.Random(stable_seed(self.options.seed, self.epoch, "shards")).shuffle(order)
        readers = world_size * workers
        if len(order) < readers:
            raise DatasetError(f"{len(order)} shards cannot be split without overlap over {world_size} ranks x "
                               f"{workers} workers = {readers} readers; give at least {readers} shards "
                               f"or use fewer workers")
        return order[rank * workers + worker:: readers]

    def __iter__(self) -> Iterator[AudioItem]:
        rank, world_size = (self.rank, self.world_size) if self.rank is not None else distributed_rank()
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for shard in self.reader_shards(rank, world_size, worker, workers):  # type: ignore[arg-type]
            yield from self._read_shard(shard)

    def _fail(self, source: str, error: Exception) -> None:
        if self.options.on_error == "raise":
            raise error
        message = str(error)
        if message.startswith(source):  # "SHARD:KEY.json: reason" -> (SHARD:KEY.json, reason)
            end = message.find(": ", len(source))
            source, message = (message[:end], message[end + 2:]) if end >= 0 else (source, message)
        self.report.skip(source, message)

    def _read_shard(self, shard: str) -> Iterator[AudioItem]:
        wds = require("webdataset", extra="data", purpose="reading WebDataset shards")
        broken: list[Exception] = []

        def stop(error: Exception) -> bool:  # webdataset handler: record, stop reading this tar
            broken.append(error)
            return False

        for sample in wds.tariterators.tarfile_samples([{"url": shard}], handler=stop):
            self.report.found += 1
            source = f"{shard}:{sample.get('__key__')}"
            try:
                yield from self._items(sample, shard, source)
            except (AudioReadError, DatasetError) as error:
                self._fail(source, error)
        for error in broken:
            self._fail(shard, DatasetError(f"{shard}: cannot read the shard ({error})"))

    def _items(self, sample: dict[str, Any], shard: str, source: str) -> Iterator[AudioItem]:
        options = self.options
        audio = [k for k in sample if k.lower() in _AUDIO_SUFFIXES]
        if len(audio) != 1:
            found = ", ".join(k for k in sample if not k.startswith("__")) or "nothing"
            raise DatasetError(f"{source}: expected one audio member ({', '.join(_AUDIO_SUFFIXES)}); found {found}")
        metadata: dict[str, Any] = {}
        if "json" in sample and options.sidecars:
            metadata = parse_music_info(parse_sidecar_text(sample["json"], f"{source}.json"), f"{source}.json")
        wav, rate = decode_bytes(sample[audio[0]], f"{source}.{audio[0]}")
        wav = resample(wav, rate, options.sample_rate)  # [C, T] at the dataset's rate
        total, length = wav.shape[-1], options.segment_frames
        if length is None:
            starts = [0]
        elif options.mode == "sequential":
            starts = sequential_starts(total, length)
        else:
            starts = [random_start(total, length, options.seed, self.epoch, shard, sample["__key__"])]
        for start in starts:
            segment = wav[:, start: start + length] if length is not None else wav
            item = finish_item(segment, rate=options.sample_rate, options=options, source=source,
                               relpath=str(sample["__key__"]), start=start, total=total, metadata=metadata,
                               hook=self._hook, length=length)
            if item is None:
                self.report.rejected.append(source)
                continue
            yield item
