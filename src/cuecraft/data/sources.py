"""Where a dataset's files come from: a folder, or a ``.jsonl`` / ``.txt`` manifest.

- A folder is searched recursively for the suffixes in ``cuecraft.audio.io.AUDIO_EXTENSIONS``
  (case-insensitive; hidden files and folders, whose names start with ".", are left out). A
  subfolder that cannot be listed is reported as unusable, not skipped in silence.
- A ``.txt`` manifest holds one audio path per line; a ``.jsonl`` manifest one JSON object per
  line with a ``"path"`` and any metadata fields (AudioCraft's manifests also carry ``duration``,
  ``sample_rate`` ... : those are read from the file itself and not taken as metadata). Relative
  paths are taken from the manifest's folder. Empty lines are ignored. A malformed line (not JSON,
  nested deeper than 64, a path holding a NUL byte) is an
  error naming the manifest and the line, whatever ``on_error`` says: the manifest defines the
  dataset, it is not an item.

``scan`` turns either into ``FileRecord``s through the cached index (``cuecraft.data.index``),
with the sidecar of every file checked; what cannot be used is listed with its reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cuecraft._bounded import is_folder, is_regular, parse_json, read_regular
from cuecraft._text import shorten
from cuecraft.audio.io import AUDIO_EXTENSIONS
from cuecraft.data.index import IndexStats, open_index
from cuecraft.data.sidecar import parse_music_info, sidecar_path
from cuecraft.errors import DatasetError

# AudioCraft's AudioMeta fields in its manifests: facts about the file, not metadata.
_MANIFEST_FILE_FIELDS = ("path", "duration", "sample_rate", "amplitude", "weight", "info_path")
MAX_MANIFEST_BYTES = 1 * 2**30  # about 5 million AudioCraft lines


@dataclass
class FileRecord:
    """One usable audio file: what the index knows of it and its metadata (sidecar fields,
    then the manifest line's fields over them)."""

    path: str
    relpath: str
    frames: int
    sample_rate: int
    channels: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


@dataclass
class ScanResult:
    """A scanned data set: its usable files, the unusable ones ``(path, reason)``, index stats."""

    root: str
    files: list[FileRecord]
    problems: list[tuple[str, str]]
    found: int  # audio files listed
    index: IndexStats


def _walk(root: Path, problems: list[tuple[str, str]]) -> list[Path]:
    """The audio files under ``root`` (hidden names left out); a folder that cannot be listed is
    one line in ``problems``, not skipped in silence. Anything with an audio suffix that is not a
    folder is listed (a FIFO or a device named x.wav is then refused by the index, with its reason)."""
    def unlisted(error: OSError) -> None:
        problems.append((os.fspath(error.filename or root),
                         f"cannot list the folder ({error.strerror or error}); its files are left out"))

    paths = []
    for folder, folders, files in os.walk(root, onerror=unlisted):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        paths += [Path(folder) / name for name in files
                  if not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS]
    return sorted(paths)


def _listing(data: Path, problems: list[tuple[str, str]]) -> tuple[Path, list[tuple[Path, dict[str, Any]]]]:
    """(base folder for relpath, [(absolute path, manifest fields)]); folders that cannot be listed go
    into ``problems``."""
    if is_folder(data):
        root = data.resolve()
        return root, [(p, {}) for p in _walk(root, problems)]
    if not is_regular(data):
        raise DatasetError(f"{shorten(os.fspath(data), 1000)}: no such folder or manifest file")
    if data.suffix not in (".txt", ".jsonl"):
        raise DatasetError(f"{data}: a dataset is a folder of audio, a .jsonl or .txt manifest, or WebDataset "
                           f".tar shards (open those with AudioDataset.from_shards); got a '{data.suffix}' file")
    base = data.resolve().parent
    rows = []
    try:
        lines = read_regular(data, MAX_MANIFEST_BYTES).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{data}: cannot read the manifest ({error})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields: dict[str, Any] = {}
        if data.suffix == ".jsonl":
            try:
                fields = parse_json(line)
            except ValueError as error:
                raise DatasetError(f"{data}:{number}: not a JSON object ({error})") from None
            if not isinstance(fields, dict) or not isinstance(fields.get("path"), str) or not fields["path"].strip():
                raise DatasetError(f"{data}:{number}: expected a JSON object with a \"path\" string; got {line.strip()[:80]}")
            name = fields["path"].strip()
            fields = {k: v for k, v in fields.items() if k not in _MANIFEST_FILE_FIELDS}
        else:
            name = line.strip()
        if "\0" in name:
            raise DatasetError(f"{data}:{number}: the path holds a NUL byte; a manifest line names one file")
        path = Path(name)
        rows.append(((path if path.is_absolute() else base / path), fields))
    return base, rows


def _reason(error: DatasetError, source: str) -> str:
    """The message of an error raised as ``"{source}: reason"``, without its source."""
    text = str(error)
    return text[len(source) + 2:] if text.startswith(source + ": ") else text


def scan(data: str | os.PathLike[str], *, read_sidecars: bool = True,
         cache_dir: str | os.PathLike[str] | None = None) -> ScanResult:
    """List, index and check the files of a folder or manifest. Never raises for a bad file: every
    unusable file is in ``problems`` with its reason (the caller applies ``on_error``)."""
    data = Path(data)
    problems: list[tuple[str, str]] = []
    base, rows = _listing(data, problems)
    entries, stats = open_index(data, [p for p, _ in rows], read_sidecars=read_sidecars, cache_dir=cache_dir)
    files = []
    for (path, fields), entry in zip(rows, entries):
        if entry.error is not None:
            problems.append((entry.path, entry.error))
            continue
        source = os.fspath(sidecar_path(path))
        if entry.sidecar_error is not None:
            problems.append((source, entry.sidecar_error))
            continue
        try:
            metadata = parse_music_info(entry.sidecar or {}, source)
        except DatasetError as error:
            problems.append((source, _reason(error, source)))
            continue
        line_source = f"{data} (the line of {path.name})"
        try:
            metadata.update(parse_music_info(fields, line_source))
        except DatasetError as error:
            problems.append((line_source, _reason(error, line_source)))
            continue
        try:
            relpath = os.fspath(path.relative_to(base))
        except ValueError:
            relpath = os.fspath(path)
        files.append(FileRecord(entry.path, relpath, entry.frames, entry.sample_rate, entry.channels, metadata))
    return ScanResult(os.fspath(data), files, problems, len(rows), stats)
