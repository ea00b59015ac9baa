"""Scoring audio against what was asked: per item, then over a set.

``score_item`` measures one waveform (tempo by ``cuecraft.audio.beats``, key by
``cuecraft.audio.key``; onsets, beats and chroma where the row has a reference; chords where it
asks for them) and scores each asked value with ``tempo``, ``key``, ``melody``, ``rhythm`` (the
asked beat grid where the row asks a tempo and a metre) and ``chords``. ``add_instruments`` adds the
instrument classifier's labels. ``aggregate`` turns the items into the report's metrics: the mean
of each score over the items that have it (a metric no item has is absent), the chroma cosine
frame-weighted as AudioCraft averages it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cuecraft.eval.key import key_scores
from cuecraft.eval.prompts import PromptRow
from cuecraft.eval.references import Reference
from cuecraft.eval.tempo import tempo_scores

METRICS = ("tempo_within_4pct", "tempo_within_4pct_octave", "tempo_bin", "tempo_bin_tolerant", "key_exact",
           "key_with_relative", "key_mirex", "melody_chroma_cosine", "melody_pitch_accuracy", "onset_f1",
           "beat_f_measure", "grid_beat_f_measure", "grid_downbeat_f_measure", "chord_iou", "chord_majmin",
           "instrument_accuracy", "clap_score", "novelty_sim_aa")


def score_item(audio: np.ndarray, sample_rate: int, row: PromptRow, reference: Reference | None = None, *,
               pitch: bool = False) -> dict[str, Any]:
    """One item of the report: ``{"asked", "measured", "scores"}`` for ``audio`` float [T].

    ``pitch``: also the frame pitch accuracy of a monophonic melody (pyin; slow, ~1.5 s per 8 s).
    """
    from cuecraft.audio.beats import track_beats
    from cuecraft.audio.key import estimate_key

    wav = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(-1)
    measured: dict[str, Any] = {}
    scores: dict[str, Any] = {}
    beats = track_beats(wav, sample_rate, beats_per_bar=row.beats_per_bar)
    measured["tempo"] = round(beats.tempo, 3)
    if row.bpm is not None:
        scores.update(tempo_scores(row.bpm, beats.tempo))
    if row.bpm is not None and row.time_signature is not None:
        _score_grid(row, wav.numel() / sample_rate, beats, scores)
    if row.chords is not None:
        _score_chords(wav, sample_rate, row, measured, scores)
    if wav.numel() and torch.any(wav != 0):
        key, table = estimate_key(wav, sample_rate)
        measured["key"] = key if max(table.values()) > 0 else None
    else:
        measured["key"] = None
    if row.key is not None:
        if measured["key"] is None:
            scores.update({"key_exact": False, "key_with_relative": False, "key_mirex": 0.0})
        else:
            scores.update(key_scores(row.key, measured["key"]))
    if reference is not None:
        _score_reference(wav, sample_rate, reference, beats.beats, measured, scores, pitch=pitch)
    return {"asked": row.asked(), "measured": measured, "scores": scores}


def _score_grid(row: PromptRow, seconds: float, beats: Any, scores: dict) -> None:
    """Beat and downbeat F-measures of the tracked beats against the grid the row asks for."""
    from cuecraft.eval.rhythm import beat_f_measure, beat_grid

    assert row.bpm is not None
    grid = beat_grid(row.bpm, row.beats_per_bar, seconds, row.downbeat_offset or 0.0)
    scores["grid_beat_f_measure"] = beat_f_measure(grid.beats, beats.beats)
    scores["grid_downbeat_f_measure"] = beat_f_measure(grid.downbeats, beats.downbeats)


def _score_chords(wav: torch.Tensor, sample_rate: int, row: PromptRow, measured: dict, scores: dict) -> None:
    """JASCO's chord IOU and mir_eval's majmin of the heard chords against the asked progression."""
    from cuecraft.eval import chords

    assert row.chords is not None
    segments = chords.asked_segments(row.chords, seconds=wav.numel() / sample_rate, bpm=row.bpm,
                                     beats_per_bar=row.beats_per_bar, downbeat_offset=row.downbeat_offset or 0.0)
    heard = chords.chord_frames(wav, sample_rate)
    measured["chords"] = chords.describe(heard)
    for name, value in (("chord_iou", chords.chord_iou(segments, heard)),
                        ("chord_majmin", chords.chord_majmin(segments, heard))):
        if value is not None:
            scores[name] = value


def _score_reference(wav: torch.Tensor, sample_rate: int, reference: Reference, beats: Sequence[float],
                     measured: dict, scores: dict, *, pitch: bool) -> None:
    from cuecraft.eval import melody, rhythm

    if reference.audio.size:
        frames = melody.chroma_cosine_frames(reference.audio, _resampled(wav, sample_rate, reference.sample_rate),
                                             reference.sample_rate)
        scores["melody_chroma_cosine"] = float(frames.mean())
        measured["chroma_frames"] = int(frames.size)
    if reference.onsets is not None:
        onsets = rhythm.onset_times(wav, sample_rate)
        measured["onsets"] = len(onsets)
        scores["onset_f1"] = rhythm.onset_f1(reference.onsets, onsets)
    if reference.beats is not None:
        scores["beat_f_measure"] = rhythm.beat_f_measure(reference.beats, beats)
    if pitch and reference.melody_notes is not None:
        times, f0 = melody.pitch_track(wav, sample_rate)
        scores["melody_pitch_accuracy"] = melody.pitch_accuracy(times, melody.notes_f0(reference.melody_notes, times),
                                                                times, f0)
    elif pitch and reference.audio.size:
        ref_times, ref_f0 = melody.pitch_track(reference.audio, reference.sample_rate)
        times, f0 = melody.pitch_track(wav, sample_rate)
        scores["melody_pitch_accuracy"] = melody.pitch_accuracy(ref_times, ref_f0, times, f0)


def _resampled(wav: torch.Tensor, rate: int, target: int) -> np.ndarray:
    from cuecraft.audio.resample import resample

    return resample(wav, rate, target).numpy()


def add_instruments(items: list[dict], labels: Sequence[str], rows: Sequence[PromptRow]) -> None:
    """Record the classifier's ``labels`` (one per item) and score them against asked instruments."""
    for item, label, row in zip(items, labels, rows, strict=True):
        item["measured"]["instrument"] = label
        if row.instrument is not None:
            item["scores"]["instrument_accuracy"] = label == row.instrument


def aggregate(items: Sequence[dict]) -> dict[str, float]:
    """The metrics of a set of items: each score's mean over the items that have it."""
    metrics: dict[str, float] = {}
    for name in METRICS:
        values = [item["scores"][name] for item in items if name in item["scores"]]
        if not values:
            continue
        if name == "melody_chroma_cosine":  # AudioCraft's average: over frames
            weights = [item["measured"].get("chroma_frames", 1) for item in items if name in item["scores"]]
            metrics[name] = float(np.average(np.asarray(values, dtype=np.float64), weights=weights))
        else:
            metrics[name] = float(np.mean(np.asarray(values, dtype=np.float64)))
    return metrics
