"""Writing generated waveforms to WAV files, atomically (soundfile, imported where used).

Shapes: a waveform is float [T] (mono), samples in [-1, 1].
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path

import numpy as np

from cuecraft._bounded import parse_json, read_regular
from cuecraft._files import _HOST, _alive, atomic_write, clean_stale_temporaries
from cuecraft._optional import require

_JOURNAL_SUFFIX = ".wavset"
_JOURNAL = re.compile(r"^\.(?P<out>.+)\.(?P<host>[A-Za-z0-9_-]+)~(?P<pid>\d+)\.wavset$")
_COMPANION = re.compile(r"^\.[A-Za-z0-9]{1,8}$")  # a companion file's suffix: ".png"
MAX_JOURNAL_BYTES = 1 << 20


def numbered_paths(out: str | Path, count: int) -> list[Path]:
    """``out`` itself for one file; ``stem_0.wav, stem_1.wav, ...`` beside it for several."""
    out = Path(out)
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(count)]


def write_wav(path: str | Path, waveform: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write mono ``waveform`` [T] to ``path`` as WAV (16-bit PCM by default), atomically.

    The file is written next to ``path`` under a temporary name, synced and renamed over it
    (``cuecraft._files.atomic_write``), so a crash never leaves a torn file, and a reader never
    sees a partial one. NaNs are written as 0 and samples are clipped to [-1, 1] (what PCM holds).
    """
    soundfile = require("soundfile", extra="audio", purpose="writing WAV files")
    path = Path(path)
    samples = _pcm(waveform)
    with atomic_write(path) as file:
        soundfile.write(file, samples, sample_rate, format="WAV", subtype=subtype)
    return path


def _pcm(waveform: np.ndarray) -> np.ndarray:
    waveform = np.asarray(waveform, dtype=np.float32)
    assert waveform.ndim == 1, waveform.shape
    return np.clip(np.nan_to_num(waveform, nan=0.0), -1.0, 1.0)


def _sync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable (where the platform allows opening a directory)."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _journal_path(out: Path) -> Path:
    return out.with_name(f".{out.name[:100]}.{_HOST}~{os.getpid()}{_JOURNAL_SUFFIX}")


def write_wavs(out: str | Path, waveforms: Sequence[np.ndarray], sample_rate: int,
               subtype: str = "PCM_16", *, companions: Sequence[Mapping[str, bytes]] | None = None) -> list[Path]:
    """Write each waveform [T] to ``numbered_paths(out, len(waveforms))`` as one set; returns the paths.

    ``companions[i]`` maps a suffix (``".png"``) to the bytes of a file written beside WAV i (its
    name with that suffix), in the same set: a full disk never leaves a WAV without its picture.

    A kill never leaves a set that mixes two runs once ``finish_interrupted_sets`` has run (every
    command that writes a set runs it first): (1) every file is written to a temporary beside its
    target and synced, (2) a journal listing the renames is written atomically -- its rename is the
    commit, (3) the temporaries are renamed into place and the journal removed. Killed before the
    commit, only temporaries of a dead writer remain (removed later) and the earlier set is whole;
    killed after it, the journal lets the next run finish the renames. On an error before the
    commit the temporaries are removed and nothing is changed.
    """
    soundfile = require("soundfile", extra="audio", purpose="writing WAV files")
    paths = numbered_paths(out, len(waveforms))
    extras = [dict(c) for c in companions] if companions is not None else [{} for _ in paths]
    if len(extras) != len(paths) or any(not _COMPANION.match(str(k)) or k.lower() == paths[0].suffix.lower()
                                        for extra in extras for k in extra):
        raise ValueError(f"companions: expected one mapping of suffixes ('.png') to bytes per waveform "
                         f"({len(paths)}); got {len(extras)}")
    if len(paths) == 1 and not extras[0]:
        return [write_wav(paths[0], waveforms[0], sample_rate, subtype)]
    files: list[tuple[Path, Callable]] = []  # (target, writer of its bytes into a handle)
    for path, waveform, extra in zip(paths, waveforms, extras):
        files.append((path, lambda handle, w=waveform: soundfile.write(handle, _pcm(w), sample_rate, format="WAV",
                                                                        subtype=subtype)))
        files += [(path.with_suffix(suffix), lambda handle, d=data: handle.write(d)) for suffix, data in extra.items()]
    folder = paths[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    temporaries: list[str] = []
    journal = _journal_path(Path(out))
    try:
        for path, write in files:
            fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name[:100]}.{_HOST}~{os.getpid()}~",
                                             suffix=".tmp")
            temporaries.append(temporary)
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o644)  # mkstemp makes it private
        renames = [[os.path.basename(t), path.name] for t, (path, _) in zip(temporaries, files)]
        with atomic_write(journal, "w", encoding="utf-8") as handle:  # the commit
            json.dump({"format": "cuecraft-wav-set", "version": 1, "renames": renames}, handle)
    except BaseException:
        for temporary in temporaries:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
        raise
    _finish(journal)
    return paths


def _owned_regular(path: Path) -> bool:
    """Whether ``path`` itself (not a link's target) is a regular file of this user."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_uid == getattr(os, "getuid", lambda: info.st_uid)()


def _of_the_set(journal: Path, temporary: str, name: str) -> bool:
    """Whether a rename a journal lists is one ``write_wavs`` made for that journal's set: a
    temporary of the journal's writer (host, pid) for ``name``, owned by this user, and ``name`` one
    of the set's files (``OUT``, ``OUT_N``, with the WAV's suffix or a companion's)."""
    match = _JOURNAL.match(journal.name)
    if match is None or os.path.basename(temporary) != temporary or os.path.basename(name) != name:
        return False  # names beside the journal only
    writer = re.escape(f"{match['host']}~{match['pid']}")
    if not re.fullmatch(rf"\.{re.escape(name[:100])}\.{writer}~[^.~/]*\.tmp", temporary):
        return False
    out = match["out"]
    stem, suffix = os.path.splitext(out) if len(out) < 100 else (out[:90], "")
    numbered = rf"{re.escape(stem)}{'' if len(out) < 100 else '.*'}(_\d+)?"
    if not re.fullmatch(rf"{numbered}({re.escape(suffix)}|\.[A-Za-z0-9]{{1,8}})", name, flags=re.IGNORECASE):
        return False
    return _owned_regular(journal.parent / temporary)


def _finish(journal: Path) -> int:
    """Carry out the renames ``journal`` lists that belong to its set (``_of_the_set``; those whose
    temporary still exists), then remove it. A rename the file system refuses (the target is a
    folder now) is skipped: a journal never breaks later runs in its folder."""
    try:
        renames = parse_json(read_regular(journal, MAX_JOURNAL_BYTES))["renames"]
        pairs = [(str(a), str(b)) for a, b in renames]
    except (OSError, ValueError, KeyError, TypeError):
        pairs = []  # unreadable: nothing to finish (journals are written atomically, so not torn)
    done = 0
    for temporary, name in pairs:
        if not _of_the_set(journal, temporary, name):
            continue
        with suppress(OSError):
            os.replace(journal.parent / temporary, journal.parent / name)
            done += 1
    _sync_folder(journal.parent)
    with suppress(OSError):
        journal.unlink()
    _sync_folder(journal.parent)
    return done


def finish_interrupted_sets(folder: str | Path) -> int:
    """Complete the sets that writers on this host committed in ``folder`` and died before
    renaming into place (see ``write_wavs``), then remove the temporary files of dead writers
    (``clean_stale_temporaries``). Returns how many files were renamed into place."""
    root = Path(folder)
    if not root.is_dir():
        return 0
    done = 0
    for journal in root.glob(f".*{_JOURNAL_SUFFIX}"):
        match = _JOURNAL.match(journal.name)
        if match and match["host"] == _HOST and int(match["pid"]) != os.getpid() and not _alive(int(match["pid"])) \
                and _owned_regular(journal):  # another user's journal in a shared folder is not replayed
            done += _finish(journal)
    clean_stale_temporaries(root)
    return done
