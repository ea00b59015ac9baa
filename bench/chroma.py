"""Benchmark: melody conditioning (chroma_stem) on 8 clips of 30 s, its cache, and librosa's chroma.

Run:  .venv/bin/python bench/chroma.py [--quick] [--out PATH] [--threads N]

Audio: 8 seeded clips of 30 s at 32 kHz (MusicGen-Melody's rate), each a melody of harmonic tones
(0.125-0.5 s notes) over a drum loop (kick, snare, hi-hat), written to WAV files in a temporary
folder. Chroma settings are MusicGen-Melody's: radix2_exp 14 (n_fft 16384, hop 4096, 235 frames).
``--quick``: 8 clips of 5 s.

Rows (each the median of 7 timed runs after a warm-up, the rows taking turns run by run so that a
slow spell of the machine hits them all alike; ``chroma_stem hpss``, about a second a clip, is
timed once after a warm-up):
- ``chroma_stem none`` / ``chroma_stem hpss``: ``tokenize`` of the 8 clips (in memory, no cache):
  stems + batched chroma, what a data-loader worker does.
- ``cache hit, file`` / ``cache hit, in memory``: the same ``tokenize`` served by a filled
  EmbeddingCache: items with a ``path`` (keyed by the file's stat), or in-memory audio (keyed by
  a BLAKE2b of the samples), each with the memory layer cleared before every run (a disk read)
  and warm (``memory``). The speed-up is against ``chroma_stem hpss`` (target: >= 50x).
- ``ChromaExtractor`` (cuecraft's batched PyTorch chroma, one call for the 8 clips) next to
  ``librosa chroma_stft`` on the same audio, one clip at a time, with the same geometry and
  tuning 0 (so the same numbers: the max difference is reported), and with librosa's default
  tuning estimation (``tuning=None``), which it does unless told.

Prints a table and writes JSON (atomically) to bench/results/chroma.json or ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import cuecraft
from cuecraft import WavCondition
from cuecraft.audio.chroma import ChromaExtractor
from cuecraft.conditioners import ChromaStemConditioner

from _common import write_json, progress  # isort: skip  (bench/ is on sys.path when run as a script)

RATE = 32000
RADIX2_EXP = 14
CLIPS = 8
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "chroma.json"


def make_clip(seconds: float, seed: int) -> np.ndarray:
    """A seeded melody of harmonic tones over a drum loop: float32 [T] at 32 kHz, peak about 1."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    out = np.zeros(n)
    start = 0
    while start < n:
        length = min(int(rng.choice([0.125, 0.25, 0.5]) * RATE), n - start)
        frequency = 440.0 * 2 ** ((rng.integers(55, 80) - 69) / 12)
        local = t[:length]
        fade = np.clip(np.minimum(local, local[-1] - local) / 0.01, 0, 1)
        out[start: start + length] += 0.3 * fade * sum(a * np.sin(2 * np.pi * frequency * k * local)
                                                       for k, a in ((1, 1.0), (2, 0.5), (3, 0.25)))
        start += length
    beat = int(0.25 * RATE)
    for i, start in enumerate(range(0, n, beat)):
        local = t[: min(int(0.15 * RATE), n - start)]
        if i % 2 == 0:
            sweep = 50 + 100 * np.exp(-local / 0.03)
            out[start: start + len(local)] += 1.5 * np.sin(2 * np.pi * np.cumsum(sweep) / RATE) * np.exp(-local / 0.08)
        else:
            out[start: start + len(local)] += rng.standard_normal(len(local)) * np.exp(-local / 0.04)
    return (out / np.abs(out).max()).astype(np.float32)


def interleaved_medians(calls: dict[str, Callable[[], object]], rounds: int = 7) -> dict[str, float]:
    """Median seconds per call of each function, the functions taking turns, after a warm-up."""
    for fn in calls.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 clips of 5 s instead of 30 s")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    import librosa
    import soundfile

    seconds = 5.0 if args.quick else 30.0
    clips = [make_clip(seconds, seed) for seed in range(CLIPS)]
    audio_seconds = seconds * CLIPS
    settings = {"output_dim": 64, "sample_rate": RATE, "radix2_exp": RADIX2_EXP, "duration": seconds}
    rows: list[dict[str, Any]] = []

    def row(name: str, seconds_per_batch: float, note: str = "", **extra: Any) -> None:
        rows.append({"name": name, "ms_per_batch": seconds_per_batch * 1e3, "clips_per_s": CLIPS / seconds_per_batch,
                     "x_realtime": audio_seconds / seconds_per_batch, "note": note, **extra})

    with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
        paths = []
        for i, clip in enumerate(clips):
            progress(f"clip {i + 1}/{len(clips)}")
            paths.append(os.path.join(folder, f"clip{i}.wav"))
            soundfile.write(paths[-1], clip, RATE, subtype="FLOAT")
        in_memory = [WavCondition(torch.from_numpy(c), RATE) for c in clips]
        from_files = [WavCondition(torch.from_numpy(c), RATE, path=p, seek_time=0.0) for c, p in zip(clips, paths)]
        warm_up = [WavCondition(torch.from_numpy(clips[0][: RATE]), RATE)]

        hpss = ChromaStemConditioner(**settings, stems="hpss")
        hpss.tokenize(warm_up)
        start = time.perf_counter()
        computed = hpss.tokenize(in_memory)
        compute_s = time.perf_counter() - start

        cached = ChromaStemConditioner(**settings, stems="hpss", cache_path=os.path.join(folder, "cache"))
        cache = cached.cache
        assert cache is not None
        for path in paths:
            cached.fill_cache(path)
        cached.tokenize(in_memory)  # the in-memory items' entries

        def from_disk(items: list[WavCondition]) -> Callable[[], Any]:
            return lambda: (cache.clear_memory(), cached.tokenize(items))[1]

        for items in (from_files, in_memory):  # the same work, served
            progress("timing batches")
            assert torch.equal(from_disk(items)().features, computed.features)

        plain = ChromaStemConditioner(**settings, stems="none")
        extractor = ChromaExtractor(RATE, radix2_exp=RADIX2_EXP)
        batch = torch.from_numpy(np.stack(clips))
        n_fft, hop = extractor.n_fft, extractor.hop_length

        def librosa_chroma(tuning: float | None) -> Callable[[], list[np.ndarray]]:
            return lambda: [librosa.feature.chroma_stft(y=c, sr=RATE, n_fft=n_fft, hop_length=hop, tuning=tuning)
                            for c in clips]

        timed = interleaved_medians({
            "none": lambda: plain.tokenize(in_memory),
            "file disk": from_disk(from_files), "file memory": lambda: cached.tokenize(from_files),
            "hash disk": from_disk(in_memory), "hash memory": lambda: cached.tokenize(in_memory),
            "extractor": lambda: extractor(batch),
            "librosa 0": librosa_chroma(0.0), "librosa estimated": librosa_chroma(None),
        })
        row("chroma_stem none", timed["none"], "tokenize, no cache")
        row("chroma_stem hpss", compute_s, "tokenize, no cache (timed once)")
        for key, name in (("file disk", "cache hit, file, disk"), ("file memory", "cache hit, file, memory"),
                          ("hash disk", "cache hit, in memory, disk"), ("hash memory", "cache hit, in memory, memory")):
            row(name, timed[key], "tokenize served by the cache", speedup_vs_hpss=compute_s / timed[key])
        row("ChromaExtractor", timed["extractor"], "cuecraft, batched PyTorch")
        row("librosa chroma_stft", timed["librosa 0"], "same geometry, tuning=0.0")
        row("librosa chroma_stft", timed["librosa estimated"], "same geometry, tuning estimated (default)")
        ours = extractor(batch).numpy()
        difference = max(float(np.abs(o - r.T).max()) for o, r in zip(ours, librosa_chroma(0.0)()))

    hits = [r for r in rows if "speedup_vs_hpss" in r]
    target_met = all(r["speedup_vs_hpss"] >= 50 for r in hits)
    print(f"torch {torch.__version__}, librosa {librosa.__version__}, {torch.get_num_threads()} threads, "
          f"cuecraft {cuecraft.__version__}; {CLIPS} clips of {seconds:g} s at {RATE} Hz, radix2_exp {RADIX2_EXP}")
    header = f"{'row':<32}{'ms/batch':>11}{'clips/s':>10}{'x realtime':>12}{'speed-up':>10}  note"
    print(header + "\n" + "-" * (len(header) + 30))
    for r in rows:
        speedup = f"{r['speedup_vs_hpss']:.0f}x" if "speedup_vs_hpss" in r else ""
        print(f"{r['name']:<32}{r['ms_per_batch']:>11.1f}{r['clips_per_s']:>10.1f}{r['x_realtime']:>12.0f}"
              f"{speedup:>10}  {r['note']}")
    print(f"\nChromaExtractor vs librosa chroma_stft (tuning 0): max abs difference {difference:.2e}")
    print(f"target (every cache hit >= 50x faster than computing with hpss): {'MET' if target_met else 'NOT MET'}")
    write_json(args.out, {
        "benchmark": "chroma", "torch": torch.__version__, "librosa": librosa.__version__,
        "threads": torch.get_num_threads(), "cuecraft": cuecraft.__version__, "python": platform.python_version(),
        "quick": args.quick, "clips": CLIPS, "clip_seconds": seconds, "sample_rate": RATE, "radix2_exp": RADIX2_EXP,
        "max_abs_difference_vs_librosa": difference, "target_met": target_met, "rows": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
