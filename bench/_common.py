"""Helpers shared by the benchmarks: timing, a printed table, atomic JSON results."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cuecraft._files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"


def median_seconds(fn: Callable[[], object], budget_s: float, min_repeats: int = 3) -> float:
    """Median wall time of ``fn`` after one warm-up call, repeated for about ``budget_s``."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    repeats = max(min_repeats, int(budget_s / max(first, 1e-6)))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header]] + [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        print("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` atomically (temp file + rename)."""
    with atomic_write(path, "w") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")


_START = time.perf_counter()


def progress(message: str) -> None:
    """One progress line, at once: wall-clock time, seconds since the bench started, ``message``."""
    print(f"[{time.strftime('%H:%M:%S')} +{time.perf_counter() - _START:7.1f}s] {message}", flush=True)
