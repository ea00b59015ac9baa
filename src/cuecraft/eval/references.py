"""What a prompt row's audio is compared with: its reference melody and its ceiling audio.

- Reference (rows with ``melody_seed``): the corpus piece ``sample_piece(melody_seed, seconds)``
  rendered at ``REFERENCE_RATE`` (the audio the model is given as its melody), with the piece's
  exact onsets (every note start and drum hit), beats and melody notes. In ``--audio`` mode a
  sidecar's ``melody_path`` recording is the reference instead: its onsets are detected, its
  beats are the sidecar's ``reference_beats``.
- Ceiling audio: corpus audio with the row's asked values. The piece ``ceiling_seed`` when the row
  names one (every shipped row does: its own piece), else ``melody_seed``; else the best of
  ``CEILING_SCAN`` pieces ``sample_piece(derive_seed(CEILING_SEED, i), seconds)``: the same lead
  instrument, key and drums as asked (where asked) and the nearest bpm. A row that no scanned piece
  matches has no ceiling (``ceiling_audio`` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from cuecraft.eval.prompts import PromptRow

REFERENCE_RATE = 16000  # Hz, the corpus' rate
DEFAULT_SECONDS = 8.0
CEILING_SEED = 20261214
CEILING_SCAN = 3000  # pieces scanned for rows without a ceiling_seed (~4 ms each)
ONSET_MERGE = 0.03  # seconds: onsets closer than this are one onset


@dataclass(frozen=True)
class Reference:
    """A reference to score against: audio float32 [T] at ``sample_rate``, onset and beat times
    (seconds), and the melody as notes (objects with pitch, start, end) where known."""

    audio: np.ndarray
    sample_rate: int
    onsets: tuple[float, ...] | None
    beats: tuple[float, ...] | None
    melody_notes: tuple[Any, ...] | None = None


def _seconds(row: PromptRow) -> float:
    return DEFAULT_SECONDS if row.seconds is None else float(row.seconds)


@lru_cache(maxsize=256)
def _render(seed: int, seconds: float) -> tuple[Any, np.ndarray]:
    from cuecraft.data.corpus import render_piece, sample_piece

    spec = sample_piece(seed, seconds=seconds)
    return spec, render_piece(spec, sample_rate=REFERENCE_RATE)[0].numpy().astype(np.float32)


def _merged(times: list[float]) -> tuple[float, ...]:
    out: list[float] = []
    for t in sorted(times):
        if not out or t - out[-1] >= ONSET_MERGE:
            out.append(t)
    return tuple(out)


def piece_reference(seed: int, seconds: float) -> Reference:
    """The rendered corpus piece ``seed`` with its exact onsets, beats and melody notes."""
    spec, audio = _render(int(seed), float(seconds))
    onsets = _merged([n.start for n in spec.notes] + [h.time for h in spec.drum_hits])
    return Reference(audio, REFERENCE_RATE, onsets, tuple(spec.beats), tuple(spec.melody))


def row_reference(row: PromptRow) -> Reference | None:
    """The reference of ``row``: its melody piece, or its sidecar's melody recording; else None."""
    if row.melody_path is not None:
        from cuecraft.audio.io import load_audio
        from cuecraft.eval.rhythm import onset_times

        from cuecraft.eval.prompts import MAX_SECONDS

        wav, rate = load_audio(row.melody_path, max_seconds=MAX_SECONDS,
                               limit_hint=f"a reference melody is at most {MAX_SECONDS:g} s")
        mono = wav.mean(dim=0).numpy().astype(np.float32)
        return Reference(mono, rate, tuple(onset_times(mono, rate)), row.reference_beats)
    if row.melody_seed is not None:
        reference = piece_reference(row.melody_seed, _seconds(row))
        if row.reference_beats is not None:
            reference = Reference(reference.audio, reference.sample_rate, reference.onsets, row.reference_beats,
                                  reference.melody_notes)
        return reference
    if row.reference_beats is not None:
        return Reference(np.zeros(0, dtype=np.float32), REFERENCE_RATE, None, row.reference_beats)
    return None


@lru_cache(maxsize=4)
def _scan(seconds: float) -> tuple[tuple[int, str, str, str, int], ...]:
    from cuecraft.data.corpus import derive_seed, sample_piece

    pieces = []
    for i in range(CEILING_SCAN):
        seed = derive_seed(CEILING_SEED, i)
        spec = sample_piece(seed, seconds=seconds)
        pieces.append((seed, spec.lead, spec.key, "on" if spec.drums else "off", spec.bpm))
    return tuple(pieces)


def ceiling_seed(row: PromptRow) -> int | None:
    """The corpus piece the ceiling renders for ``row`` (see the module docstring), or None."""
    if row.ceiling_seed is not None:
        return row.ceiling_seed
    if row.melody_seed is not None:
        return row.melody_seed
    best, best_distance = None, float("inf")
    for seed, lead, key, drums, bpm in _scan(_seconds(row)):
        if ((row.instrument is not None and lead != row.instrument) or (row.key is not None and key != row.key)
                or (row.drums is not None and drums != row.drums)):
            continue
        distance = 0.0 if row.bpm is None else abs(bpm - row.bpm)
        if distance < best_distance:
            best, best_distance = seed, distance
    return best


def ceiling_audio(row: PromptRow) -> np.ndarray | None:
    """Corpus audio float32 [T] at REFERENCE_RATE with ``row``'s asked values, or None."""
    seed = ceiling_seed(row)
    return None if seed is None else _render(int(seed), _seconds(row))[1]


def resolve_path(path: str, sidecar: Path) -> str:
    """``path`` as written in ``sidecar``: absolute, or relative to the sidecar's folder."""
    candidate = Path(path)
    try:
        return str(candidate if candidate.is_absolute() else (sidecar.parent / candidate).resolve())
    except (OSError, RuntimeError, ValueError) as error:  # a link loop, a name the file system refuses
        from cuecraft.errors import EvaluationInputError

        raise EvaluationInputError(f"{sidecar}: field 'melody_path': cannot resolve it ({error})") from None
