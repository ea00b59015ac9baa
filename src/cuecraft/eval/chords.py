"""Chord adherence: the asked progression against the chords heard in the audio, frame by frame.

- The asked progression (a prompt row's ``chords``), read as the ``chords`` conditioner reads
  it: one chord per bar (``"Am F C G"``; tokens split at spaces, commas and ``|``) from the first
  downbeat (``downbeat_offset``) at the row's tempo and metre, repeated until the clip ends; or
  timed (``"Am@0 F@2 C@4 G@6"``, seconds from the clip's start, increasing), the last chord
  lasting to the clip's end. Frames before the first chord are not scored. Symbols are read by
  ``cuecraft.audio.chords.parse_chord`` (the conditioner's vocabulary).
- The heard chords (``chord_frames``): a chroma template matcher. Magnitude STFT (Hann window of
  2**k samples with bins of at most ~4 Hz, a hop of a quarter window: ~64 ms), librosa's chroma
  filter bank (``cuecraft.audio.chroma``), a moving average over ``SMOOTH_FRAMES``, then per frame
  the best cosine with the 24 major / minor triad templates (binary, root, third, fifth); a
  frame quieter than ``SILENCE`` times the clip's loudest is ``N`` (no chord).
- Both sides are compared as major / minor triads (mir_eval's ``majmin`` vocabulary): a chord
  whose pitch classes hold a major third and a perfect fifth over its root is major (maj, 7,
  maj7, 6, 9, add9, ...), a minor third and a fifth minor (m, m7, mmaj7, m6, m9), N is N; dim,
  aug, sus2, sus4, m7b5, dim7 and power chords have no such reduction, and their frames are not
  scored (mir_eval's comparison is -1 there).

Metrics (each in [0, 1]; None where no frame can be scored):

- ``chord_iou`` (JASCO's chord IOU): for each chord class (24 triads and N) found in the asked or
  the heard frames, frames where both are that class over frames where either is; the mean over
  those classes (mean intersection over union, as in segmentation).
- ``chord_majmin``: mir_eval's ``majmin`` comparison of the asked and heard segments (Harte
  labels), weighted by duration (``mir_eval.chord.weighted_accuracy``), as ``mir_eval.chord.evaluate``
  computes it over the asked span.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cuecraft._optional import require
from cuecraft.errors import ConditioningInputError, EvaluationInputError

SMOOTH_FRAMES = 3  # moving average over ~0.2 s of chroma frames
SILENCE = 1e-3  # a frame whose chroma energy is below this share of the clip's loudest is N
NO_CHORD_CLASS = 24  # classes: 2 * root + (1 if minor), then N
_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_TIMED = re.compile(r"^(.+)@(.+)$")


@dataclass(frozen=True)
class ChordSegment:
    """One asked chord: its symbol as written, its class (0-24, None: not major/minor/N), start and end (s)."""

    symbol: str
    chord_class: int | None
    start: float
    end: float


@dataclass(frozen=True)
class ChordFrames:
    """The heard chords: frame times (s) [F] and classes [F] (0-23 triads, 24 N)."""

    times: np.ndarray
    classes: np.ndarray
    hop_seconds: float


def class_name(chord_class: int) -> str:
    """0 -> "C", 1 -> "Cm", 24 -> "N"."""
    if chord_class == NO_CHORD_CLASS:
        return "N"
    return _NAMES[chord_class // 2] + ("m" if chord_class % 2 else "")


def harte_label(chord_class: int | None) -> str:
    """The mir_eval (Harte) label of a class: "C:maj", "A:min", "N"; "X" (not comparable) for None."""
    if chord_class is None:
        return "X"
    if chord_class == NO_CHORD_CLASS:
        return "N"
    return f"{_NAMES[chord_class // 2]}:{'min' if chord_class % 2 else 'maj'}"


def chord_class(symbol: str) -> int | None:
    """The major / minor triad class of a chord symbol (see the module docstring)."""
    from cuecraft.audio.chords import parse_chord

    chord = parse_chord(symbol)
    if chord.root is None:
        return NO_CHORD_CLASS
    intervals = {(p - chord.root) % 12 for p in chord.pitch_classes}
    if 7 not in intervals or (3 in intervals) == (4 in intervals):
        return None
    return 2 * chord.root + (1 if 3 in intervals else 0)


def parse_progression(text: str, where: str = "chords") -> list[tuple[str, float | None]]:
    """``"Am F C G"`` -> [("Am", None), ...]; ``"Am@0 F@2"`` -> [("Am", 0.0), ("F", 2.0)].

    Every symbol is checked; an EvaluationInputError names ``where``, the token and what is allowed.
    """
    tokens = text.replace("|", " ").replace(",", " ").split() if isinstance(text, str) else []
    if not tokens:
        raise EvaluationInputError(f"{where}: expected chords such as 'Am F C G' or 'Am@0 F@2'; got {text!r}")
    parsed: list[tuple[str, float | None]] = []
    for token in tokens:
        match = _TIMED.match(token)
        symbol, time = (match.group(1), match.group(2)) if match else (token, None)
        try:
            chord_class(symbol)
        except ConditioningInputError as error:
            raise EvaluationInputError(f"{where}: {error}") from None
        seconds = None
        if time is not None:
            try:
                seconds = float(time)
            except ValueError:
                seconds = math.nan
            if not math.isfinite(seconds) or seconds < 0:
                raise EvaluationInputError(f"{where}: {token!r}: a chord's time is seconds >= 0 (e.g. 'F@2')")
        parsed.append((symbol, seconds))
    timed = [t is not None for _, t in parsed]
    if any(timed) and not all(timed):
        raise EvaluationInputError(f"{where}: give every chord a time ('Am@0 F@2') or none ('Am F'); got {text!r}")
    times = [t for _, t in parsed if t is not None]
    if any(b <= a for a, b in zip(times, times[1:])):
        raise EvaluationInputError(f"{where}: chord times must increase; got {times}")
    return parsed


def asked_segments(text: str, *, seconds: float, bpm: float | None = None, beats_per_bar: int = 4,
                   downbeat_offset: float = 0.0) -> list[ChordSegment]:
    """The asked chords of ``text`` over a clip of ``seconds`` (see the module docstring); untimed
    chords need ``bpm``. Segments are clipped to the clip; empty ones are left out."""
    parsed = parse_progression(text)
    if parsed[0][1] is None:
        if bpm is None:
            raise EvaluationInputError("chords: one chord per bar needs the row's bpm (or give times: 'Am@0 F@2')")
        bar = beats_per_bar * 60.0 / bpm
        bars = max(0, math.ceil((seconds - downbeat_offset) / bar))  # the progression repeats to the clip's end
        symbols = [parsed[i % len(parsed)][0] for i in range(bars)]
        bounds = [(downbeat_offset + i * bar, downbeat_offset + (i + 1) * bar) for i in range(bars)]
    else:
        symbols = [symbol for symbol, _ in parsed]
        starts = [float(t) for _, t in parsed]  # type: ignore[arg-type]
        bounds = list(zip(starts, starts[1:] + [max(seconds, starts[-1])]))
    segments = []
    for symbol, (start, end) in zip(symbols, bounds):
        start, end = max(0.0, start), min(seconds, end)
        if end > start:
            segments.append(ChordSegment(symbol, chord_class(symbol), start, end))
    return segments


def _templates() -> torch.Tensor:
    rows = []
    for root in range(12):
        for third in (4, 3):  # major, then minor
            row = torch.zeros(12, dtype=torch.float64)
            row[[root, (root + third) % 12, (root + 7) % 12]] = 1.0
            rows.append(row / row.norm())
    return torch.stack(rows)  # [24, 12]


def chord_frames(wav: np.ndarray | torch.Tensor, sample_rate: int) -> ChordFrames:
    """The heard chord of every frame of ``wav`` float [T] or [C, T] (see the module docstring)."""
    from cuecraft.audio.chroma import chroma_filter_bank

    tensor = torch.as_tensor(np.asarray(wav, dtype=np.float32)) if not isinstance(wav, torch.Tensor) else wav
    mono = (tensor if tensor.dim() == 1 else tensor.mean(dim=0)).detach().cpu().to(torch.float32)
    n_fft = 2 ** max(6, min(16, math.ceil(math.log2(sample_rate / 4))))  # bins of at most ~4 Hz
    hop = n_fft // 4
    if mono.numel() == 0:
        return ChordFrames(np.zeros(0), np.zeros(0, dtype=np.int64), hop / sample_rate)
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float32)
    spectrum = torch.stft(mono, n_fft, hop, window=window, center=True, pad_mode="constant",
                          return_complex=True).abs()  # [K, F]
    chroma = (chroma_filter_bank(sample_rate, n_fft) @ spectrum).to(torch.float64)  # [12, F]
    chroma = torch.nn.functional.avg_pool1d(chroma[None], SMOOTH_FRAMES, stride=1, padding=SMOOTH_FRAMES // 2,
                                            count_include_pad=False)[0]
    energy = chroma.sum(dim=0)  # [F]
    scores = _templates() @ (chroma / chroma.norm(dim=0).clamp_min(1e-12))  # [24, F]
    classes = scores.argmax(dim=0)
    silent = energy <= SILENCE * energy.max() if bool(energy.max() > 0) else torch.ones_like(energy, dtype=torch.bool)
    classes[silent] = NO_CHORD_CLASS
    times = np.arange(classes.numel()) * hop / sample_rate
    return ChordFrames(times, classes.numpy().astype(np.int64), hop / sample_rate)


def _asked_per_frame(segments: Sequence[ChordSegment], times: np.ndarray) -> np.ndarray:
    """The asked class at each frame time: [F], -1 where no segment is or its chord is not comparable."""
    asked = np.full(times.shape, -1, dtype=np.int64)
    for segment in segments:
        inside = (times >= segment.start) & (times < segment.end)
        asked[inside] = -1 if segment.chord_class is None else segment.chord_class
    return asked


def chord_iou(segments: Sequence[ChordSegment], heard: ChordFrames) -> float | None:
    """JASCO's chord IOU of the heard frames against the asked segments (see the module docstring)."""
    asked = _asked_per_frame(segments, heard.times)
    scored = asked >= 0
    if not scored.any():
        return None
    a, h = asked[scored], heard.classes[scored]
    classes = np.union1d(a, h)
    return float(np.mean([np.sum((a == c) & (h == c)) / np.sum((a == c) | (h == c)) for c in classes]))


def heard_segments(heard: ChordFrames) -> list[tuple[float, float, int]]:
    """Runs of equal frames as (start, end, class); a frame spans its time +- half a hop."""
    runs: list[tuple[float, float, int]] = []
    half = heard.hop_seconds / 2
    for time, value in zip(heard.times, heard.classes.tolist()):
        start, end = max(0.0, time - half), time + half
        if runs and runs[-1][2] == value:
            runs[-1] = (runs[-1][0], end, value)
        else:
            runs.append((start, end, value))
    return runs


def chord_majmin(segments: Sequence[ChordSegment], heard: ChordFrames) -> float | None:
    """mir_eval's duration-weighted ``majmin`` comparison over the asked span (see the module docstring)."""
    chord = require("mir_eval.chord", extra="eval", purpose="the majmin chord comparison")
    util = require("mir_eval.util", extra="eval", purpose="the majmin chord comparison")
    runs = heard_segments(heard)
    if not segments or not runs or all(s.chord_class is None for s in segments):
        return None
    ref_intervals = np.array([[s.start, s.end] for s in segments])
    ref_labels = [harte_label(s.chord_class) for s in segments]
    est_intervals = np.array([[start, end] for start, end, _ in runs])
    est_labels = [harte_label(value) for _, _, value in runs]
    low, high = float(ref_intervals.min()), float(ref_intervals.max())
    est_intervals, est_labels = util.adjust_intervals(est_intervals, est_labels, low, high, chord.NO_CHORD,
                                                      chord.NO_CHORD)
    intervals, ref, est = util.merge_labeled_intervals(ref_intervals, ref_labels, est_intervals, est_labels)
    comparisons = chord.majmin(ref, est)
    durations = util.intervals_to_durations(intervals)
    if not np.any((comparisons >= 0) & (durations > 0)):
        return None
    return float(chord.weighted_accuracy(comparisons, durations))


def describe(heard: ChordFrames, limit: int = 64) -> str:
    """The heard chords as timed text, ``"Am@0.00 F@2.05 ..."`` (at most ``limit`` changes)."""
    runs = heard_segments(heard)
    text = " ".join(f"{class_name(value)}@{start:.2f}" for start, _, value in runs[:limit])
    return text + (" ..." if len(runs) > limit else "")
