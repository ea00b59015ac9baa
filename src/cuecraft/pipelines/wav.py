"""Writing generated waveforms to WAV files, atomically (soundfile, imported where used).

Shapes: a waveform is float [T] (mono), samples in [-1, 1].
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import numpy as np

from cuecraft._files import _HOST, _alive, atomic_write, clean_stale_temporaries
from cuecraft._optional import require

_JOURNAL_SUFFIX = ".wavset"
_JOURNAL = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_-]+)~(?P<pid>\d+)\.wavset$")


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
               subtype: str = "PCM_16") -> list[Path]:
    """Write each waveform [T] to ``numbered_paths(out, len(waveforms))`` as one set; returns the paths.

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
    if len(paths) == 1:
        return [write_wav(paths[0], waveforms[0], sample_rate, subtype)]
    folder = paths[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    temporaries: list[str] = []
    journal = _journal_path(Path(out))
    try:
        for path, waveform in zip(paths, waveforms):
            fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name[:100]}.{_HOST}~{os.getpid()}~",
                                             suffix=".tmp")
            temporaries.append(temporary)
            with os.fdopen(fd, "wb") as handle:
                soundfile.write(handle, _pcm(waveform), sample_rate, format="WAV", subtype=subtype)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o644)  # mkstemp makes it private
        renames = [[os.path.basename(t), path.name] for t, path in zip(temporaries, paths)]
        with atomic_write(journal, "w", encoding="utf-8") as handle:  # the commit
            json.dump({"format": "cuecraft-wav-set", "version": 1, "renames": renames}, handle)
    except BaseException:
        for temporary in temporaries:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
        raise
    _finish(journal)
    return paths


def _finish(journal: Path) -> int:
    """Carry out the renames ``journal`` lists (those whose temporary still exists), then remove it."""
    try:
        renames = json.loads(journal.read_text(encoding="utf-8"))["renames"]
        pairs = [(str(a), str(b)) for a, b in renames]
    except (OSError, ValueError, KeyError, TypeError):
        pairs = []  # unreadable: nothing to finish (journals are written atomically, so not torn)
    done = 0
    for temporary, name in pairs:
        if os.path.basename(temporary) != temporary or os.path.basename(name) != name:
            continue  # names beside the journal only
        with suppress(FileNotFoundError):
            os.replace(journal.parent / temporary, journal.parent / name)
            done += 1
    _sync_folder(journal.parent)
    with suppress(FileNotFoundError):
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
        if match and match["host"] == _HOST and int(match["pid"]) != os.getpid() and not _alive(int(match["pid"])):
            done += _finish(journal)
    clean_stale_temporaries(root)
    return done
