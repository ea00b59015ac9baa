"""Benchmark: beats tracked from the audio against the corpus's labelled beats and downbeats.

Run:  .venv/bin/python bench/beats.py [--quick] [--pieces N] [--corpus DIR] [--tracker librosa|madmom|both]
                                      [--threads N] [--out PATH]

What it checks: a dataset without beat labels trains the ``beats`` condition from beats tracked
in its audio (the conditioner's ``track`` option), so those beats must match what labels would
have said. For each piece, exactly as ``BeatsConditioner`` tracks an item: the WAV (mono, its own
rate), ``beats_per_bar`` from the sidecar's ``time_signature`` through
``cuecraft.conditioners.timeline.parse_time_signature`` (6/8 counts 2 dotted-quarter beats, as the
labels do), then ``cuecraft.audio.beats.track_beats`` with the tracker asked for (the
conditioner's default is ``librosa``).

Pieces: the first N of the corpus's ``heldout.jsonl`` (then ``train.jsonl`` if it has fewer):
N = 200 (``--quick``: 40). The corpus is ``runs/builtin/corpus`` (``cuecraft corpus``'s synthesis:
8 s pieces at 16 kHz in 4/4, 3/4 and 6/8, with sidecar ``beats`` and ``downbeats``).

Scores: mir_eval's beat F-measure (a tracked beat matches a labelled one within +-70 ms;
``cuecraft.eval.rhythm.beat_f_measure``, which does not trim the first 5 s as
``mir_eval.beat.evaluate`` does: the pieces are 8 s long) of the tracked beats against the labelled
beats, and the same of the tracked downbeats against the labelled downbeats. The issue's figure
is the mean beat F-measure over the pieces (target >= 0.9).

A second beat figure scores the grid the condition is drawn from: ``BeatsConditioner`` continues
tracked beats before the first and after the last at the first and last interval
(``cuecraft.conditioners.beats.extend``), so beats a tracker leaves out at the clip's edges are
still on the condition's grid; those continued beats, cut to the clip, are scored the same way
(downbeats likewise).

Diagnosis of each piece whose beat F-measure is below 0.9, from the ratio of the tracked tempo to
the labelled one (nearest of 1, 2, 1/2, 3, 1/3, 3/2, 2/3 within 4 %: an octave or metrical-level
error) and, at the right tempo, the beats' phase (the median offset from the nearest labelled beat
in beats: about 0.5 is the off-beat) or their timing: beats missed only before the first or after
the last tracked beat (the clip's edges), or elsewhere. The downbeats' error is the bar phase: the
position in the labelled bar (in beats, 0 = right) on which most tracked downbeats fall. The median
signed offset of matched beats (tracked minus labelled, ms) is reported over all pieces: a
constant lag of the onset envelope. Also: seconds of tracking per minute of audio.

Prints a table and writes JSON (atomically) to bench/results/beats.json or ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import cuecraft
from cuecraft.audio.beats import madmom_available, track_beats
from cuecraft.audio.io import load_audio
from cuecraft.conditioners.beats import extend
from cuecraft.conditioners.timeline import parse_time_signature
from cuecraft.eval.rhythm import BEAT_WINDOW, beat_f_measure

from _common import RESULTS, print_table, progress, write_json  # isort: skip  (bench/ is on sys.path as a script)

CORPUS = Path(__file__).resolve().parents[1] / "runs" / "builtin" / "corpus"
TARGET = 0.9  # the mean beat F-measure
RATIOS = {"x1": 1.0, "x2": 2.0, "x1/2": 0.5, "x3": 3.0, "x1/3": 1 / 3, "x3/2": 1.5, "x2/3": 2 / 3}
RATIO_TOLERANCE = 0.04  # relative: a tracked tempo this close to ratio x the labelled one is at that ratio


def pick_pieces(corpus: Path, count: int) -> list[Path]:
    """The sidecars of the first ``count`` pieces of heldout.jsonl, then train.jsonl."""
    sidecars: list[Path] = []
    for split in ("heldout.jsonl", "train.jsonl"):
        path = corpus / split
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            if len(sidecars) == count:
                return sidecars
            if line.strip():
                sidecars.append(corpus / Path(json.loads(line)["path"]).with_suffix(".json"))
    if len(sidecars) < count:
        raise SystemExit(f"{corpus}: {len(sidecars)} pieces listed in heldout.jsonl / train.jsonl; asked for {count}")
    return sidecars


def tempo_class(tracked: float, labelled: float) -> str:
    """The metrical level of the tracked tempo against the labelled one (``RATIOS``), or "other"."""
    if tracked <= 0:
        return "none"
    ratio = tracked / labelled
    return next((name for name, r in RATIOS.items() if abs(ratio / r - 1) <= RATIO_TOLERANCE), "other")


def offsets(reference: np.ndarray, estimated: np.ndarray) -> np.ndarray:
    """Each estimated beat's signed distance (s) to its nearest reference beat: float [N]."""
    if len(reference) == 0 or len(estimated) == 0:
        return np.zeros(0)
    nearest = np.abs(estimated[:, None] - reference[None, :]).argmin(axis=1)
    return estimated - reference[nearest]


def continued(times: np.ndarray, seconds: float) -> np.ndarray:
    """``times`` continued to the clip's edges at their first and last interval, as BeatsConditioner
    does with tracked beats, cut to [0, seconds): float [N]."""
    if len(times) < 2:
        return times
    grid = extend(times.tolist(), 0.0, seconds, times[1] - times[0], times[-1] - times[-2]).numpy()
    return grid[(grid >= 0) & (grid < seconds)]


def bar_shift(reference: np.ndarray, downbeats: np.ndarray, tracked: np.ndarray, beats_per_bar: int) -> int | None:
    """The position in the labelled bar (beats after its downbeat) on which most tracked downbeats
    fall: 0 when the bar phase is right; None when no tracked downbeat is on a labelled beat."""
    if len(tracked) == 0 or len(downbeats) == 0:
        return None
    first = int(np.abs(reference - downbeats[0]).argmin())
    positions = []
    for t in tracked:
        i = int(np.abs(reference - t).argmin())
        if abs(reference[i] - t) <= BEAT_WINDOW:
            positions.append((i - first) % beats_per_bar)
    return Counter(positions).most_common(1)[0][0] if positions else None


def diagnose(f: float, tempo: str, phase: float, period: float, reference: np.ndarray, estimated: np.ndarray) -> str:
    """Why a piece's beat F-measure is below the target (see the module docstring); "ok" when it is not."""
    if f >= TARGET:
        return "ok"
    if tempo != "x1":
        return f"tempo {tempo}"
    if abs(phase) > 0.35:
        return "tempo x1, off-beat phase"
    if abs(phase) * period > BEAT_WINDOW:
        return "tempo x1, phase off by > 70 ms"
    missed = [t for t in reference if np.abs(estimated - t).min() > BEAT_WINDOW]
    if all(t < estimated[0] or t > estimated[-1] for t in missed):
        return "tempo x1, on the grid, beats missed at the clip's edges"
    return "tempo x1, on the grid, beats missed or extra inside the clip"


def score_piece(sidecar: Path, tracker: str) -> dict[str, Any]:
    labels = json.loads(sidecar.read_text())
    wav, rate = load_audio(sidecar.with_suffix(".wav"))
    beats_per_bar = parse_time_signature(labels["time_signature"]).beats_per_bar
    start = time.perf_counter()
    info = track_beats(wav, rate, beats_per_bar=beats_per_bar, tracker=tracker)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    reference, downbeats = np.asarray(labels["beats"], float), np.asarray(labels["downbeats"], float)
    estimated = np.asarray(info.beats, float)
    period = float(np.median(np.diff(reference)))
    f = beat_f_measure(reference, estimated)
    tracked_downbeats = np.asarray(info.downbeats, float)
    off = offsets(reference, estimated)
    matched = off[np.abs(off) <= BEAT_WINDOW]
    phase = float(np.median(off)) / period if len(off) else 0.0
    tempo = tempo_class(info.tempo, 60.0 / period)
    clip = wav.shape[-1] / rate
    return {"piece": sidecar.stem, "time_signature": labels["time_signature"], "drums": labels.get("drums"),
            "bpm": labels["bpm"], "tracked_bpm": round(info.tempo, 2), "beat_f": f,
            "downbeat_f": beat_f_measure(downbeats, tracked_downbeats),
            "beat_f_continued": beat_f_measure(reference, continued(estimated, clip)),
            "downbeat_f_continued": beat_f_measure(downbeats, continued(tracked_downbeats, clip)),
            "tempo_class": tempo, "phase_beats": round(phase, 3), "lag_ms": float(np.median(matched)) * 1e3
            if len(matched) else None, "bar_shift": bar_shift(reference, downbeats, tracked_downbeats, beats_per_bar),
            "diagnosis": diagnose(f, tempo, phase, period, reference, estimated) if len(estimated) else "no beats",
            "track_seconds": seconds, "audio_seconds": clip}


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    beat = [r["beat_f"] for r in rows]
    down = [r["downbeat_f"] for r in rows]
    lags = [r["lag_ms"] for r in rows if r["lag_ms"] is not None]
    return {"pieces": len(rows), "beat_f_mean": statistics.fmean(beat), "beat_f_median": statistics.median(beat),
            "share_beat_f_at_least_0.9": sum(f >= TARGET for f in beat) / len(rows),
            "downbeat_f_mean": statistics.fmean(down), "downbeat_f_median": statistics.median(down),
            "beat_f_continued_mean": statistics.fmean(r["beat_f_continued"] for r in rows),
            "downbeat_f_continued_mean": statistics.fmean(r["downbeat_f_continued"] for r in rows),
            "bar_phase_right": sum(r["bar_shift"] == 0 for r in rows) / len(rows),
            "median_lag_ms": statistics.median(lags) if lags else None}


def run(tracker: str, sidecars: Sequence[Path]) -> dict[str, Any]:
    rows = []
    for i, sidecar in enumerate(sidecars):
        rows.append(score_piece(sidecar, tracker))
        if (i + 1) % 20 == 0 or i + 1 == len(sidecars):
            mean = statistics.fmean(r["beat_f"] for r in rows)
            progress(f"{tracker}: {i + 1}/{len(sidecars)} pieces, mean beat F so far {mean:.3f}")
    groups: dict[str, dict[str, Any]] = {"all": summary(rows)}
    for metre in sorted({r["time_signature"] for r in rows}):
        groups[metre] = summary([r for r in rows if r["time_signature"] == metre])
    for drums in ("on", "off"):
        subset = [r for r in rows if r["drums"] == drums]
        if subset:
            groups[f"drums {drums}"] = summary(subset)
    audio = sum(r["audio_seconds"] for r in rows)
    return {"tracker": tracker, "groups": groups,
            "diagnosis": dict(Counter(r["diagnosis"] for r in rows if r["diagnosis"] != "ok").most_common()),
            "tempo_classes": dict(Counter(r["tempo_class"] for r in rows).most_common()),
            "bar_shifts": {f"{metre} +{shift}" if shift is not None else f"{metre} none": count
                           for (metre, shift), count in sorted(Counter((r["time_signature"], r["bar_shift"])
                                                                       for r in rows).items(), key=str)},
            "seconds_per_audio_minute": sum(r["track_seconds"] for r in rows) / audio * 60.0,
            "target_met": groups["all"]["beat_f_mean"] >= TARGET, "pieces": rows}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 pieces instead of 200")
    parser.add_argument("--pieces", type=int, default=None, help="how many pieces (default 200, --quick 40)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help=f"corpus folder (default {CORPUS})")
    parser.add_argument("--tracker", choices=["librosa", "madmom", "both"], default="librosa",
                        help="the tracker (default librosa, the beats conditioner's default); both: one, then the "
                             "other")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--out", type=Path, default=RESULTS / "beats.json", help="JSON output")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    count = args.pieces or (40 if args.quick else 200)
    trackers = ["librosa", "madmom"] if args.tracker == "both" else [args.tracker]
    if "madmom" in trackers and not madmom_available():
        raise SystemExit("madmom is not installed (pip install 'cuecraft[beats]'); use --tracker librosa")
    sidecars = pick_pieces(args.corpus, count)
    progress(f"{len(sidecars)} pieces from {args.corpus}; trackers: {', '.join(trackers)}")
    results = [run(tracker, sidecars) for tracker in trackers]

    print(f"\ncuecraft {cuecraft.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{len(sidecars)} corpus pieces; mir_eval F-measure, +-{BEAT_WINDOW * 1e3:.0f} ms, no trimming")
    rows = []
    for result in results:
        for group, s in result["groups"].items():
            rows.append([result["tracker"], group, s["pieces"], s["beat_f_mean"], s["beat_f_median"],
                         f"{s['share_beat_f_at_least_0.9']:.0%}", s["downbeat_f_mean"],
                         f"{s['bar_phase_right']:.0%}", s["beat_f_continued_mean"], s["downbeat_f_continued_mean"],
                         "-" if s["median_lag_ms"] is None else f"{s['median_lag_ms']:+.1f}"])
    print_table(["tracker", "pieces", "n", "beat F mean", "beat F median", "F >= 0.9", "downbeat F mean",
                 "bar phase right", "beat F cont.", "downbeat F cont.", "lag ms"], rows)
    for result in results:
        print(f"\n{result['tracker']}: {result['seconds_per_audio_minute']:.2f} s per minute of audio; "
              f"target (mean beat F >= {TARGET}): {'MET' if result['target_met'] else 'NOT MET'}")
        print(f"  tempo tracked / labelled: {result['tempo_classes']}")
        print(f"  pieces below {TARGET}, by cause: {result['diagnosis'] or 'none'}")
        print(f"  tracked downbeats' position in the labelled bar (metre +beats: count): {result['bar_shifts']}")
    write_json(args.out, {
        "benchmark": "beats", "cuecraft": cuecraft.__version__, "torch": torch.__version__,
        "python": platform.python_version(), "threads": torch.get_num_threads(), "quick": args.quick,
        "corpus": str(args.corpus), "window_s": BEAT_WINDOW, "target": TARGET, "results": results})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
