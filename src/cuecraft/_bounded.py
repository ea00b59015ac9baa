"""Reading small files from user folders, bounded: regular files only, a size limit, JSON of bounded depth.

A sidecar, a manifest line, an index or a ``model.json`` may be a FIFO (reading it waits forever for
a writer), a symbolic link to ``/dev/zero`` (reading it never ends), a directory, or JSON nested
thousands deep (``RecursionError``). ``read_regular`` opens without blocking, checks that what it
opened is a regular file and reads at most ``max_bytes``; ``parse_json`` turns every way JSON text
can fail into one ``ValueError``. Callers turn both into their own typed error naming the file.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any

MAX_JSON_DEPTH = 64  # nesting of objects and arrays
MAX_SIDECAR_BYTES = 1 * 2**20  # a metadata sidecar or manifest line (AudioCraft's are ~0.5 KB)


class FileRefused(OSError):
    """The path is not a regular file, or holds more than the reader's limit (``str``: the reason)."""


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def read_regular(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path`` (links followed), of at most ``max_bytes``.

    FileRefused (an OSError) when it is a FIFO, a device, a socket or a directory, or is larger;
    the OSError of the file system when it cannot be opened or read. Never blocks on a FIFO.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"it is {file_kind(info.st_mode)}, not a regular file")
        if info.st_size > max_bytes:
            raise FileRefused(f"{info.st_size:,} bytes; at most {max_bytes:,} are read")
        chunks, total = [], 0
        while True:
            chunk = os.read(descriptor, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise FileRefused(f"more than {max_bytes:,} bytes; at most {max_bytes:,} are read")
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def parse_json(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` whose every failure is a ValueError with a short reason: invalid JSON, text
    that is not UTF-8, an integer past Python's digit limit, nesting deeper than ``max_depth``."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except ValueError as error:  # JSONDecodeError, and ints past Python's digit limit
        raise ValueError(str(error)[:200]) from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return value


def is_regular(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (links followed) is a regular file; False for a name the system refuses."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def is_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (links followed) is a directory; False for a name the system refuses."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False
