"""Atomic file writes: a crash never leaves a torn file, and a reader never sees a partial one.

A temporary file is named ``.<name>.<host>~<pid>~<random>.tmp`` beside its target, so a later run
can tell the temporary files of writers that died (SIGKILL, power loss) from those of writers
still running, and remove them (``clean_stale_temporaries``).
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:32] or "host"
MAX_VERSIONED_JSON_BYTES = 64 * 2**20  # a description file (model.json, encoded.json, a checkpoint's state)
_TEMPORARY = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_-]+)~(?P<pid>\d+)~[^.~]*\.tmp$")


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file beside it.

    On success the file is flushed, fsynced, made readable by all (0o644) and renamed over
    ``path``; on any error it is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:100]}.{_HOST}~{os.getpid()}~",
                                     suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process (or not ours to judge): keep its file
    return True


def clean_stale_temporaries(folder: str | Path, *, recursive: bool = False) -> int:
    """Remove the temporary files that writers on this host left behind when they died; returns
    how many were removed. Files of running writers and of other hosts are kept."""
    root = Path(folder)
    if not root.is_dir():
        return 0
    removed = 0
    candidates = root.rglob(".*.tmp") if recursive else root.glob(".*.tmp")
    for candidate in candidates:
        match = _TEMPORARY.match(candidate.name)
        if not match or match["host"] != _HOST or int(match["pid"]) == os.getpid() or _alive(int(match["pid"])):
            continue
        with suppress(OSError):
            candidate.unlink()
            removed += 1
    return removed


def read_versioned_json(path: str | Path, *, format: str, version: int, error: type[Exception], what: str,
                        missing: str) -> dict[str, Any]:
    """The JSON object at ``path`` after checking its ``format`` name and ``version``.

    Every problem is an ``error`` naming the file: missing (``missing`` says what to do), not
    readable as JSON, not a ``what`` (another ``format``), or another ``version``.
    """
    from cuecraft._bounded import is_regular, parse_json, read_regular

    path = Path(path)
    if not is_regular(path):  # missing, a folder, or a FIFO / device that would block or never end
        raise error(f"{path}: no such file; {missing}")
    try:
        document = parse_json(read_regular(path, MAX_VERSIONED_JSON_BYTES), max_depth=128)  # a config inside
    except (OSError, ValueError) as problem:  # ValueError: not JSON, not UTF-8, nested too deep
        raise error(f"{path}: not readable as JSON ({problem})") from None
    if not isinstance(document, dict) or document.get("format") != format:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise error(f"{path}: not {what} (format {found!r}; expected {format!r})")
    if document.get("version") != version:
        raise error(f"{path}: format version {document.get('version')!r}; this cuecraft reads version {version}")
    return document
