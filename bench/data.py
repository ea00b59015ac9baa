"""Benchmark: training data — corpus rendering and label accuracy, dataset + collate throughput,
beat tracking and beat-synchronous mixup.

Run:  .venv/bin/python bench/data.py [--quick] [--items N] [--corpus DIR] [--out PATH]

- Corpus: ``make_corpus`` of ``--items`` pieces (default 2000, the whole corpus of seed 0; ``--quick``
  60) of 8 s at 16 kHz into ``--corpus`` (default: a temporary folder; an existing corpus of the
  same settings is reused, and only its label accuracy is measured). Rendering real-time factor is
  CPU time on one core (``CorpusReport.realtime_factor``).
- Labels: for every piece, ``cuecraft.audio.beats.estimate_tempo`` within 4 % of the labelled bpm,
  and ``cuecraft.audio.key.estimate_key`` equal to the labelled key (targets: >= 90 % each).
- Beat tracking: seconds of ``track_beats`` per minute of audio (librosa, and madmom when the
  ``beats`` extra is installed), over the first pieces.
- Dataset + collate: items/s of ``AudioDataset.from_folder`` (random 4 s segments) through
  ``AudioCollate`` with the shipped ``configs/tiny.json`` conditioning (MiniLM prompt, bpm, key)
  tokenized in the loader, at 0 and 2 workers, batch 16.
- Mixup: ``BeatSyncMixup`` (p = 1) sample + apply per batch of 16 segments, beats from metadata.

Prints a table and writes JSON (atomically) to bench/results/data.json or ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import cuecraft

from _common import print_table, write_json  # isort: skip  (bench/ is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "data.json"
SECONDS = 8.0
RATE = 16000
BATCH = 16


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def label_accuracy(corpus: Path, items: int) -> dict[str, Any]:
    """Share of pieces whose tempo (within 4 %) and key estimates match their sidecars."""
    from cuecraft.audio.beats import estimate_tempo
    from cuecraft.audio.io import load_audio
    from cuecraft.audio.key import estimate_key

    tempo_ok = key_ok = 0
    misses: list[dict[str, Any]] = []
    for index in range(items):
        name = f"piece_{index:06d}"
        label = json.loads((corpus / f"{name}.json").read_text(encoding="utf-8"))
        wav, rate = load_audio(corpus / f"{name}.wav")
        tempo = estimate_tempo(wav, rate)
        key, _ = estimate_key(wav, rate)
        tempo_hit = abs(tempo - label["bpm"]) <= 0.04 * label["bpm"]
        tempo_ok += tempo_hit
        key_ok += key == label["key"]
        if not tempo_hit or key != label["key"]:
            misses.append({"name": name, "bpm": label["bpm"], "tempo": round(tempo, 2), "key": label["key"],
                           "estimated_key": key})
        if (index + 1) % 100 == 0:
            log(f"labels: {index + 1}/{items} checked")
    return {"tempo_within_4pct": tempo_ok / items, "key_exact": key_ok / items, "misses": misses}


def beat_tracking(corpus: Path, pieces: int) -> list[dict[str, Any]]:
    from cuecraft.audio.beats import madmom_available, track_beats
    from cuecraft.audio.io import load_audio

    waves = [load_audio(corpus / f"piece_{i:06d}.wav") for i in range(pieces)]
    minutes = sum(w.shape[-1] / rate for w, rate in waves) / 60
    rows = []
    for tracker in ("librosa", "madmom"):
        if tracker == "madmom" and not madmom_available():
            log("beat tracking: madmom skipped (pip install 'cuecraft[beats]')")
            continue
        track_beats(*waves[0], tracker=tracker)  # warm-up (numba compilation, model loading)
        start = time.perf_counter()
        for wav, rate in waves:
            track_beats(wav, rate, tracker=tracker)
        rows.append({"tracker": tracker, "seconds_per_minute": (time.perf_counter() - start) / minutes})
    return rows


def loader_throughput(corpus: Path, workers: int, batches: int) -> float:
    """Items/s of dataset + collate (tokenize included) through a DataLoader."""
    from torch.utils.data import DataLoader

    from cuecraft.config.model import build_model, parse_model_config
    from cuecraft.data import AudioCollate, AudioDataset

    stack = build_model(parse_model_config(ROOT / "configs" / "tiny.json")).stack
    dataset = AudioDataset.from_folder(corpus, sample_rate=RATE, segment_seconds=4.0, seed=0)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                        collate_fn=AudioCollate(stack, seed=0), generator=torch.Generator().manual_seed(0))
    # Timed from the loader's start (worker start-up included) over ``batches`` batches: enough
    # batches that start-up and the workers' prefetched batches do not dominate.
    count, start = 0, time.perf_counter()
    while True:
        for batch in loader:
            count += len(batch)
            batches -= 1
            if batches == 0:
                return count / (time.perf_counter() - start)


def mixup_cost(corpus: Path, rounds: int) -> float:
    """Seconds per batch of BeatSyncMixup(p=1) sample + apply, beats from the corpus sidecars."""
    from cuecraft.data import AudioDataset, BeatSyncMixup, MixupOptions

    dataset = AudioDataset.from_folder(corpus, sample_rate=RATE, segment_seconds=SECONDS, seed=0)
    items = [dataset[i] for i in range(min(BATCH, len(dataset)))]
    mixup = BeatSyncMixup(MixupOptions(p=1.0), kinds={"description": "text", "bpm": "number"})
    generator = torch.Generator().manual_seed(0)
    mixup(items, generator)
    start = time.perf_counter()
    for _ in range(rounds):
        mixup(items, generator)
    return (time.perf_counter() - start) / rounds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 pieces instead of 2000")
    parser.add_argument("--items", type=int, default=None, help="corpus pieces (default 2000, --quick 60)")
    parser.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: a temporary one)")
    parser.add_argument("--no-labels", action="store_true",
                        help="skip the label accuracy (the slow part: about 10 minutes for 2000 pieces)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    items = args.items or (60 if args.quick else 2000)
    from cuecraft.data.corpus import make_corpus

    with tempfile.TemporaryDirectory() as scratch:
        corpus = args.corpus or Path(scratch) / "corpus"
        log(f"corpus: {items} pieces of {SECONDS:g} s into {corpus}")
        report = make_corpus(corpus, items=items, seconds=SECONDS, seed=0, sample_rate=RATE)
        log(report.summary())
        if args.no_labels:
            labels = {"tempo_within_4pct": float("nan"), "key_exact": float("nan"), "misses": []}
        else:
            labels = label_accuracy(corpus, items)
            log(f"labels: tempo {labels['tempo_within_4pct']:.1%}, key {labels['key_exact']:.1%}")
        tracking = beat_tracking(corpus, min(items, 20))
        throughput = {}
        for workers in (0, 2):
            throughput[workers] = loader_throughput(corpus, workers, batches=4 if args.quick else 40)
            log(f"dataset + collate, {workers} workers: {throughput[workers]:.1f} items/s")
        mix = mixup_cost(corpus, rounds=5 if args.quick else 20)

    rows = [
        ["corpus rendering", f"{report.realtime_factor:.0f}x real time (one core)" if report.rendered
         else "reused (not rendered)", f"{report.rendered} rendered"],
        ["tempo labels", f"{labels['tempo_within_4pct']:.1%} within 4 %", "target >= 90 %"],
        ["key labels", f"{labels['key_exact']:.1%} exact", "target >= 90 %"],
        *[[f"beat tracking, {r['tracker']}", f"{r['seconds_per_minute']:.2f} s per minute of audio", ""]
          for r in tracking],
        *[[f"dataset + collate, {w} workers", f"{v:.1f} items/s", f"batch {BATCH}, 4 s, tiny.json tokens"]
          for w, v in throughput.items()],
        ["mixup (p = 1)", f"{mix * 1e3:.1f} ms per batch", f"{BATCH} segments of {SECONDS:g} s"],
    ]
    print(f"\ncuecraft {cuecraft.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, {items} pieces")
    print_table(["measure", "value", "note"], rows)
    met = labels["tempo_within_4pct"] >= 0.9 and labels["key_exact"] >= 0.9
    print(f"label target (tempo and key >= 90 %): {'MET' if met else 'NOT MET'}")
    write_json(args.out, {
        "benchmark": "data", "cuecraft": cuecraft.__version__, "torch": torch.__version__,
        "python": platform.python_version(), "quick": args.quick, "items": items, "seconds": SECONDS,
        "sample_rate": RATE, "render_realtime_factor": report.realtime_factor if report.rendered else None,
        "labels": labels, "label_target_met": met, "beat_tracking": tracking,
        "loader_items_per_s": {str(w): v for w, v in throughput.items()}, "mixup_seconds_per_batch": mix,
    })
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
