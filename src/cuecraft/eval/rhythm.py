"""Rhythm adherence: onset F1 and beat F-measure against a reference, with mir_eval.

- ``onset_f1``: ``mir_eval.onset.f_measure`` (an estimated onset matches a reference onset within
  +-50 ms, each matched at most once).
- ``beat_f_measure``: ``mir_eval.beat.f_measure`` (+-70 ms). Unlike ``mir_eval.beat.evaluate``, the
  first 5 s are not trimmed (``mir_eval.beat.trim_beats``): the clips scored here are ~8 s long.

- ``beat_grid``: the beats and downbeats a tempo and metre ask for (the grid the ``beats``
  conditioner builds): a beat every 60 / bpm s through ``downbeat_offset`` (before it too: pick-up
  beats), a downbeat every ``beats_per_bar`` beats from it; the metre's beats per bar as
  ``cuecraft.conditioners.timeline.Metre`` counts them (6/8: two dotted-quarter beats). Scored
  with ``beat_f_measure`` against the tracked beats and downbeats (``cuecraft eval``'s
  ``grid_beat_f_measure`` and ``grid_downbeat_f_measure``): phase counts, not only tempo.

Both are 0.0 when either side has no events (mir_eval's value; its warning is not shown), 1.0
for identical non-empty lists; never NaN. ``onset_times`` finds onsets in audio
(``librosa.onset.onset_detect``); ``BeatInfo.beats`` of ``cuecraft.audio.beats.track_beats`` are
the estimated beats.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cuecraft._optional import require
from cuecraft.audio.resample import resample, to_mono
from cuecraft.errors import EvaluationInputError

ONSET_WINDOW = 0.05  # seconds, mir_eval's default
BEAT_WINDOW = 0.07  # seconds, mir_eval's default
ONSET_RATE = 22050  # Hz


def _times(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    times = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise EvaluationInputError(f"{name}: event times must be finite seconds >= 0")
    return times


def onset_times(wav: np.ndarray | torch.Tensor, sample_rate: int) -> np.ndarray:
    """Onset times (seconds) of ``wav`` ([T] or [C, T]): librosa's onset detector at 22050 Hz."""
    librosa = require("librosa", extra="audio", purpose="onset detection")
    tensor = wav if isinstance(wav, torch.Tensor) else torch.as_tensor(np.asarray(wav, dtype=np.float32))
    mono = resample(to_mono(tensor.detach().cpu().float()), sample_rate, ONSET_RATE).reshape(-1).numpy()
    if not np.any(mono):
        return np.zeros(0)
    return np.asarray(librosa.onset.onset_detect(y=mono, sr=ONSET_RATE, units="time"), dtype=np.float64)


def onset_f1(reference: Sequence[float], estimated: Sequence[float], *, window: float = ONSET_WINDOW) -> float:
    """F-measure of ``estimated`` onsets against ``reference`` onsets (seconds)."""
    onset = require("mir_eval.onset", extra="eval", purpose="onset F1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(onset.f_measure(_times("reference", reference), _times("estimated", estimated),
                                     window=window)[0])


def beat_f_measure(reference: Sequence[float], estimated: Sequence[float], *, window: float = BEAT_WINDOW) -> float:
    """mir_eval's beat F-measure of ``estimated`` beats against ``reference`` beats (seconds)."""
    beat = require("mir_eval.beat", extra="eval", purpose="the beat F-measure")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(beat.f_measure(_times("reference", reference), _times("estimated", estimated),
                                    f_measure_threshold=window))


@dataclass(frozen=True)
class BeatGrid:
    """Asked beat and downbeat times (seconds from the clip's start), float64 [N] and [M], sorted."""

    beats: np.ndarray
    downbeats: np.ndarray


def beat_grid(bpm: float, beats_per_bar: int, seconds: float, downbeat_offset: float = 0.0) -> BeatGrid:
    """The grid ``bpm`` and a metre of ``beats_per_bar`` ask for in a clip of ``seconds``, its first
    downbeat at ``downbeat_offset`` (see the module docstring)."""
    problems = []
    if not isinstance(bpm, (int, float)) or isinstance(bpm, bool) or not math.isfinite(bpm) or bpm <= 0:
        problems.append(f"bpm: expected a number > 0; got {bpm!r}")
    if not isinstance(beats_per_bar, int) or isinstance(beats_per_bar, bool) or beats_per_bar < 1:
        problems.append(f"beats_per_bar: expected an int >= 1; got {beats_per_bar!r}")
    for name, value in (("seconds", seconds), ("downbeat_offset", downbeat_offset)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            problems.append(f"{name}: expected seconds >= 0; got {value!r}")
    if problems:
        raise EvaluationInputError("; ".join(problems))
    period = 60.0 / bpm
    first = math.ceil(-downbeat_offset / period - 1e-9)  # the earliest beat index at or after 0 s
    last = math.ceil((seconds - downbeat_offset) / period - 1e-9)  # the first index at or after the clip's end
    index = np.arange(first, max(first, last))
    times = downbeat_offset + index * period
    return BeatGrid(times, times[np.mod(index, beats_per_bar) == 0])
