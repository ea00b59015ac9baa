"""The dataset index: what is known of each audio file without decoding it, cached on disk.

An entry holds a file's size and modification time (to detect that it changed), and what
``soundfile.info`` read from its header: frames, sample rate, channels, or why it is unreadable.
It also holds the file's raw sidecar JSON (with the sidecar's size and mtime), so reopening a
dataset of a million files reads one index file and stats the rest.

Where the cache lives:
- beside the data: ``DIR/.cuecraft-index.json`` for a folder, ``.NAME.cuecraft-index.json`` next to
  a manifest ``NAME``;
- where that cannot be written (a read-only data folder): in the cache folder, ``cache_dir`` when
  given, else ``$CUECRAFT_CACHE_DIR/data-index`` or ``~/.cache/cuecraft/data-index``, named by a
  hash of the data's absolute path.
It is written atomically. A cache that is missing, corrupt or of another version is rebuilt; an
entry whose file changed (size or mtime) is probed again; the others are reused as they are.
A cache that cannot be written anywhere is not an error: the index is simply rebuilt next time.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cuecraft._bounded import MAX_JSON_DEPTH, MAX_SIDECAR_BYTES, parse_json, read_regular
from cuecraft._files import atomic_write
from cuecraft._optional import require
from cuecraft.data.sidecar import parse_sidecar_text, sidecar_path
from cuecraft.errors import AudioReadError, DatasetError

INDEX_VERSION = 1
INDEX_FORMAT = "cuecraft-data-index"
MAX_INDEX_BYTES = 256 * 2**20  # a larger cache file (about 500,000 files with sidecars) is rebuilt, not read


@dataclass
class IndexEntry:
    """What the index knows of one audio file (``path`` absolute)."""

    path: str
    size: int = -1  # bytes; -1 when the file cannot be stat-ed
    mtime_ns: int = -1
    frames: int = 0  # samples per channel at ``sample_rate``
    sample_rate: int = 0
    channels: int = 0
    error: str | None = None  # why the audio cannot be used (then the fields above are 0)
    sidecar: dict[str, Any] | None = None  # the raw sidecar object; None without a sidecar
    sidecar_stat: list[int] | None = None  # [size, mtime_ns] of the sidecar when read
    sidecar_error: str | None = None  # why the sidecar cannot be read

    @property
    def duration(self) -> float:
        """Seconds of audio (0 for an unreadable file)."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@dataclass
class IndexStats:
    """What opening the index did: entries probed (audio headers read) and reused from the cache."""

    probed: int = 0
    reused: int = 0
    sidecars_read: int = 0
    cache_file: str | None = None  # where the index was written or read; None if nowhere
    warnings: list[str] = field(default_factory=list)


def _stat(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return -1, -1
    return stat.st_size, stat.st_mtime_ns


def probe_audio(path: str) -> tuple[int, int, int]:
    """(frames, sample_rate, channels) from the file's header; AudioReadError-like reasons as
    ValueError text. Module-level so tests can count how often audio is probed."""
    soundfile = require("soundfile", extra="audio", purpose="reading audio files")
    info = soundfile.info(path)
    return int(info.frames), int(info.samplerate), int(info.channels)


def _probe_entry(path: Path, size: int, mtime_ns: int) -> IndexEntry:
    from cuecraft.audio.io import check_header, check_regular

    entry = IndexEntry(os.fspath(path), size, mtime_ns)
    if size < 0:
        entry.error = "no such file"
        return entry
    name = os.fspath(path)
    try:
        check_regular(name)  # a FIFO would block the header read, a device never end
    except AudioReadError as error:
        entry.error = str(error).removeprefix(f"{name}: ")
        return entry
    try:
        entry.frames, entry.sample_rate, entry.channels = probe_audio(name)
    except Exception as error:  # libsndfile reports corrupt or unknown formats in several types
        entry.error = f"cannot read audio ({error})"
        return entry
    try:
        check_header(name, entry.sample_rate, entry.frames, entry.channels)  # a 1 Hz header is not 4 h of audio
    except AudioReadError as error:
        entry.error = f"cannot read audio ({str(error).removeprefix(f'{name}: ')})"
        entry.frames = entry.sample_rate = entry.channels = 0
        return entry
    if entry.frames == 0:
        entry.error = "the file holds no audio (0 frames)"
    return entry


def _refresh_sidecar(entry: IndexEntry, read_sidecars: bool) -> bool:
    """Bring the entry's sidecar up to date; True when the sidecar file was read."""
    if not read_sidecars:
        entry.sidecar, entry.sidecar_stat, entry.sidecar_error = None, None, None
        return False
    path = sidecar_path(entry.path)
    size, mtime_ns = _stat(path)
    if size < 0:
        entry.sidecar, entry.sidecar_stat, entry.sidecar_error = None, None, None
        return False
    if entry.sidecar_stat == [size, mtime_ns]:
        return False
    entry.sidecar_stat, entry.sidecar, entry.sidecar_error = [size, mtime_ns], None, None
    try:  # a FIFO, a device or a huge file is refused, never waited on or read whole
        entry.sidecar = parse_sidecar_text(read_regular(path, MAX_SIDECAR_BYTES), os.fspath(path))
    except DatasetError as error:
        entry.sidecar_error = str(error).removeprefix(os.fspath(path) + ": ")
    except OSError as error:
        entry.sidecar_error = f"cannot read the sidecar ({error})"
    return True


def default_cache_dir() -> Path:
    """The cache folder for indexes of read-only data: ``$CUECRAFT_CACHE_DIR/data-index`` or
    ``~/.cache/cuecraft/data-index``."""
    base = os.environ.get("CUECRAFT_CACHE_DIR")
    root = Path(base) if base else Path.home() / ".cache" / "cuecraft"
    return root / "data-index"


def index_locations(data: Path, cache_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Where the index of ``data`` (a folder or a manifest) is looked for, in order."""
    data = data.resolve()
    beside = data / ".cuecraft-index.json" if data.is_dir() else data.parent / f".{data.name}.cuecraft-index.json"
    digest = hashlib.sha1(os.fspath(data).encode()).hexdigest()[:16]
    fallback = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return [beside, fallback / f"{data.name}-{digest}.json"]


def _load(path: Path, data: Path) -> dict[str, IndexEntry] | None:
    try:
        header = parse_json(read_regular(path, MAX_INDEX_BYTES), max_depth=MAX_JSON_DEPTH + 8)
        if (header.get("format") != INDEX_FORMAT or header.get("version") != INDEX_VERSION
                or header.get("data") != os.fspath(data.resolve())):
            return None
        return {row["path"]: IndexEntry(**row) for row in header["entries"]}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # missing or corrupt: rebuilt, never trusted


def open_index(data: str | os.PathLike[str], paths: list[Path], *, read_sidecars: bool = True,
               cache_dir: str | os.PathLike[str] | None = None) -> tuple[list[IndexEntry], IndexStats]:
    """The index entries of ``paths`` (in that order) for the data set at ``data``, probing only
    files that are new or changed since the cached index, and writing the cache back if anything
    changed."""
    data = Path(data)
    stats = IndexStats()
    locations = index_locations(data, cache_dir)
    cached: dict[str, IndexEntry] = {}
    for location in locations:
        loaded = _load(location, data)
        if loaded is not None:
            cached, stats.cache_file = loaded, os.fspath(location)
            break
    entries, changed = [], len(cached) != len(paths)
    for path in paths:
        key = os.fspath(path)
        size, mtime_ns = _stat(path)
        entry = cached.get(key)
        if entry is not None and entry.size == size and entry.mtime_ns == mtime_ns:
            stats.reused += 1
        else:
            entry, changed = _probe_entry(path, size, mtime_ns), True
            stats.probed += 1
        if _refresh_sidecar(entry, read_sidecars):
            stats.sidecars_read += 1
            changed = True
        entries.append(entry)
    if changed or stats.cache_file is None:
        stats.cache_file = _save(entries, data, locations, stats)
    return entries, stats


def _save(entries: list[IndexEntry], data: Path, locations: list[Path], stats: IndexStats) -> str | None:
    document = {"format": INDEX_FORMAT, "version": INDEX_VERSION, "data": os.fspath(data.resolve()),
                "entries": [asdict(e) for e in entries]}
    text = json.dumps(document, separators=(",", ":"))
    for location in locations:
        try:
            with atomic_write(location, "w", encoding="utf-8") as handle:
                handle.write(text)
            return os.fspath(location)
        except OSError as error:
            stats.warnings.append(f"cannot write the dataset index at {location} ({error})")
    return None
