"""Fill the embedding caches of a conditioning config for a dataset, ahead of training.

``fill_cache(config, data)`` is what ``cuecraft cache fill`` runs. It builds the config's
conditioners, keeps those with a cache (``cache_path`` set; they implement
``fill_cache(path) -> bool``) and makes sure each holds an entry for every audio file:

- ``data`` is a folder (searched recursively for ``AUDIO_EXTENSIONS``) or a manifest: a ``.txt``
  file with one path per line, or a ``.jsonl`` file of objects with a ``"path"`` (AudioCraft's
  manifests). Relative paths in a manifest are taken from the manifest's folder.
- Resumable: a file whose entries are present and intact is skipped (an entry is checked in
  full, so a corrupt one is recomputed).
- Sharded: the sorted file list is split round-robin, file i going to rank i % world_size. The
  rank and world size come from the arguments or, under ``torchrun``, from the environment
  (``RANK``, ``WORLD_SIZE``); no process group is needed.
- ``workers`` > 1 spreads a rank's files over that many processes.
- Unreadable files are collected with their reason and reported, never silently skipped.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cuecraft._files import clean_stale_temporaries
from cuecraft.audio.io import AUDIO_EXTENSIONS, AudioReadError
from cuecraft.errors import ConfigError, CuecraftError


@dataclass
class FillReport:
    """What one rank did."""

    rank: int
    world_size: int
    conditioners: list[str]  # names of the cache-backed conditioners filled
    total_files: int  # in the whole data set
    files: int  # in this rank's shard
    computed: int = 0  # entries computed and written
    cached: int = 0  # entries that were already there
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def summary(self) -> str:
        return (f"rank {self.rank} of {self.world_size}: {self.files} of {self.total_files} files "
                f"({', '.join(self.conditioners)}): {self.computed} entries computed, {self.cached} already "
                f"cached, {len(self.unreadable)} unreadable files")


def list_audio(data: str | os.PathLike[str]) -> list[Path]:
    """The audio files of a folder (recursive, by suffix) or a manifest (.txt / .jsonl), sorted."""
    root = Path(data)
    if root.is_dir():
        return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not root.is_file():
        raise ConfigError(f"--data: {root} is neither a folder nor a manifest file")
    if root.suffix not in (".txt", ".jsonl"):
        raise ConfigError(f"--data: a manifest is a .txt (one path per line) or .jsonl (objects with "
                          f"a \"path\") file; got {root}")
    paths = []
    try:
        text = root.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--data: cannot read the manifest {root} ({error})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if root.suffix == ".jsonl":
            try:
                line = json.loads(line)["path"]
                if not isinstance(line, str):
                    raise TypeError(f"\"path\" must be a str, got {type(line).__name__}")
            except (ValueError, KeyError, TypeError) as error:
                raise ConfigError(f"{root}:{number}: expected a JSON object with a \"path\" ({error})") from None
        path = Path(line.strip())
        paths.append(path if path.is_absolute() else root.parent / path)
    return sorted(paths)


def distributed_rank(environ: Mapping[str, str] = os.environ) -> tuple[int, int]:
    """(rank, world_size) from torchrun's RANK and WORLD_SIZE; (0, 1) when they are not set."""
    if "RANK" not in environ and "WORLD_SIZE" not in environ:
        return 0, 1
    try:
        rank, world_size = int(environ["RANK"]), int(environ["WORLD_SIZE"])
    except (KeyError, ValueError):
        raise ConfigError(f"RANK and WORLD_SIZE must both be integers; got RANK={environ.get('RANK')!r}, "
                          f"WORLD_SIZE={environ.get('WORLD_SIZE')!r}") from None
    if not 0 <= rank < world_size:
        raise ConfigError(f"RANK must be in [0, WORLD_SIZE); got RANK={rank}, WORLD_SIZE={world_size}")
    return rank, world_size


def cache_backed(stack: Any) -> dict[str, Any]:
    """The conditioners of a ConditioningStack that have a cache to fill, by name."""
    return {name: c for name, c in stack.provider.conditioners.items()
            if getattr(c, "cache", None) is not None and callable(getattr(c, "fill_cache", None))}


# --- per-file work (in this process, or in worker processes) -------------------------------------

_WORKER_CONDITIONERS: dict[str, Any] = {}


def _load_conditioners(config: Any) -> dict[str, Any]:
    from cuecraft.config import build_stack

    return cache_backed(build_stack(config, seed=0))


def _init_worker(config: Any) -> None:
    _WORKER_CONDITIONERS.update(_load_conditioners(config))


class CacheDiskError(CuecraftError):
    """The cache cannot be written at all (a full disk, a read-only file system): the fill stops."""


_FATAL_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}


def _fill_one(path: Path, conditioners: Mapping[str, Any] | None = None) -> tuple[str, int, int, str | None]:
    """(path, entries computed, entries already cached, why it failed or None).

    One bad file never stops the others: unreadable or hostile audio, a feature computation that
    fails on it, or an entry path that is not writable (a directory in its place) is this file's
    failure. A full or read-only cache disk raises CacheDiskError: nothing else could be written.
    """
    computed = cached = 0
    for conditioner in (conditioners or _WORKER_CONDITIONERS).values():
        try:
            if conditioner.fill_cache(path):
                computed += 1
            else:
                cached += 1
        except AudioReadError as error:
            return str(path), computed, cached, str(error)
        except OSError as error:
            if error.errno in _FATAL_ERRNOS:
                where = getattr(getattr(conditioner, "cache", None), "root", "the cache")
                raise CacheDiskError(f"cannot write cache entries under {where}: {error.strerror or error} "
                                     f"(while filling {path})") from None
            return str(path), computed, cached, f"{path}: cannot write its cache entry ({error.strerror or error})"
        except Exception as error:  # noqa: BLE001 - a computation that fails on this file's audio
            return str(path), computed, cached, f"{path}: cannot compute its features ({type(error).__name__}: {error})"
    return str(path), computed, cached, None


def _progress(total: int, description: str, stream: TextIO | None) -> Any:
    """A tqdm bar when tqdm is installed (it comes with transformers), else a plain counter."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _PlainProgress(total, description, stream)
    return tqdm(total=total, desc=description, unit="file", file=stream, disable=stream is None,
                dynamic_ncols=True, mininterval=0.5)


class _PlainProgress:
    def __init__(self, total: int, description: str, stream: TextIO | None):
        self.total, self.done, self.description, self.stream = total, 0, description, stream

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.stream is not None and (self.done == self.total or self.done % max(1, self.total // 20) == 0):
            print(f"{self.description}: {self.done}/{self.total} files", file=self.stream, flush=True)

    def close(self) -> None:
        pass


def fill_cache(config: Any, data: str | os.PathLike[str], *, workers: int = 1, rank: int | None = None,
               world_size: int | None = None, progress: TextIO | None = sys.stderr) -> FillReport:
    """Compute every missing cache entry of ``config``'s cache-backed conditioners for ``data``.

    Args:
        config: a conditioning config (path, mapping or ConditioningConfig; see cuecraft.config).
        data: a folder of audio files or a manifest (.txt or .jsonl).
        workers: processes for this rank's files (1: this process).
        rank, world_size: this process's shard; both default to torchrun's RANK / WORLD_SIZE.
        progress: where the progress bar goes (None: no bar).

    A config without any conditioner that has a cache is a ConfigError.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers: expected an int >= 1; got {workers!r}")
    if rank is None and world_size is None:
        rank, world_size = distributed_rank()
    elif rank is None or world_size is None or not 0 <= rank < world_size:
        raise ConfigError(f"rank and world_size: expected 0 <= rank < world_size; got {rank}, {world_size}")
    conditioners = _load_conditioners(config)
    if not conditioners:
        raise ConfigError("conditioners: none has a cache to fill; set cache_path in the config of a "
                          "cache-backed conditioner (chroma_stem)")
    for conditioner in conditioners.values():
        clean_stale_temporaries(conditioner.cache.root, recursive=True)
    files = list_audio(data)
    shard = files[rank::world_size]
    report = FillReport(rank, world_size, sorted(conditioners), len(files), len(shard))
    bar = _progress(len(shard), f"cache fill, rank {rank} of {world_size}", progress)
    try:
        for path, computed, cached, problem in _run(shard, conditioners, config, workers):
            report.computed += computed
            report.cached += cached
            if problem is not None:
                report.unreadable.append((path, problem))
            bar.update(1)
    finally:
        bar.close()
    report.unreadable.sort()
    return report


def _run(shard: list[Path], conditioners: Mapping[str, Any], config: Any,
         workers: int) -> Iterator[tuple[str, int, int, str | None]]:
    if workers == 1 or len(shard) <= 1:
        for path in shard:
            yield _fill_one(path, conditioners)
        return
    context = multiprocessing.get_context("spawn")  # fork is unsafe once torch has started threads
    config = _plain(config)
    with context.Pool(min(workers, len(shard)), initializer=_init_worker, initargs=(config,)) as pool:
        yield from pool.imap_unordered(_fill_one, shard)


def _plain(config: Any) -> Any:
    """A config as something a worker process can rebuild from (a path or a plain mapping)."""
    if isinstance(config, (str, os.PathLike, Mapping)):
        return config
    dump = getattr(config, "model_dump", None)
    if dump is None:
        raise CuecraftError(f"cannot hand a {type(config).__name__} config to worker processes")
    return dump()


def format_unreadable(unreadable: Iterable[tuple[str, str]]) -> str:
    """The end-of-run list of unreadable files, one per line."""
    items = list(unreadable)
    lines = [f"unreadable audio files ({len(items)}):"] + [f"  {reason}" for _, reason in items]
    return "\n".join(lines)
