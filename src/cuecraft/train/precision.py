"""Training precision: float32, bfloat16 autocast (CPU, CUDA) or float16 autocast with loss scaling (CUDA).

bfloat16 autocast only pays where the processor has bfloat16 units: on an AVX2-only CPU it is
several times *slower* than float32. ``precision="auto"`` therefore picks

- CUDA: bfloat16 when the GPU supports it, else float16 with a GradScaler;
- CPU: bfloat16 only when /proc/cpuinfo lists ``avx512_bf16`` or ``amx_bf16`` *and* bfloat16
  measures faster than float32 on what will run: with a ``probe`` (the trainer passes one whole
  forward + backward of its model on its first batch) the probe is timed in both precisions and
  bfloat16 must be at least ``PROBE_MARGIN`` faster; without one (sampling benchmarks), a 512 x 512
  matmul. Otherwise float32. A matmul alone misleads for small models: on this avx512_bf16 CPU a
  bfloat16 matmul runs 2.3x float32, yet a whole step of a width-64 DiT ran 0.76x (autocast's
  casts cost more than the small products save) while a width-256 one ran 1.66x;
- anything else (MPS ...): float32;

and says why in ``Precision.reason``, which the trainer logs. An explicit choice is honoured,
with a warning in the reason when it is likely to be slower.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from cuecraft.errors import ConfigError

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
PROBE_MARGIN = 1.05  # bfloat16 must run a probe at least this many times faster than float32
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """A resolved precision: ``name`` (float32 / bfloat16 / float16), the device type it runs on
    and why it was chosen."""

    name: str
    device_type: str
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.name]

    def autocast(self) -> AbstractContextManager:
        """The autocast context of the forward pass (a no-op for float32)."""
        if self.name == "float32":
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scaler(self):
        """A GradScaler for float16 (None otherwise)."""
        if self.name != "float16":
            return None
        return torch.amp.GradScaler(self.device_type)


def cpu_bf16_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str]:
    """The bfloat16 instruction-set flags this CPU reports (``avx512_bf16``, ``amx_bf16``); [] when none
    or when the file is unreadable (not Linux)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return sorted(flags & {"avx512_bf16", "amx_bf16"})


@lru_cache(maxsize=1)
def cpu_matmul_speedup(size: int = 512, repeats: int = 8) -> float:
    """float32 time / bfloat16 time of a ``size`` x ``size`` matmul on this CPU (> 1: bfloat16 faster).
    Measured once per process."""
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(size, size, generator=torch.Generator().manual_seed(0)).to(dtype)
        a @ a  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - start)
        results[dtype] = best
    return results[torch.float32] / max(results[torch.bfloat16], 1e-12)


def probe_speedup(probe: Callable[[Precision], object], device_type: str = "cpu", repeats: int = 2) -> float:
    """float32 time / bfloat16 time of ``probe(precision)`` (> 1: bfloat16 faster): one warm-up call
    each, then ``repeats`` timed calls each, taking turns; the fastest of each."""
    candidates = [Precision(name, device_type, "probe") for name in ("float32", "bfloat16")]
    for precision in candidates:
        probe(precision)
    best = {precision.name: float("inf") for precision in candidates}
    for _ in range(repeats):
        for precision in candidates:
            start = time.perf_counter()
            probe(precision)
            best[precision.name] = min(best[precision.name], time.perf_counter() - start)
    return best["float32"] / max(best["bfloat16"], 1e-12)


def choose_precision(requested: str, device: torch.device | str, *,
                     probe: Callable[[Precision], object] | None = None) -> Precision:
    """Resolve ``requested`` (one of PRECISIONS) for ``device``; see the module docstring.
    ``probe(precision)``: one representative unit of work (a training step) under ``precision``'s
    autocast, timed to decide ``auto`` on a CPU with bfloat16 units."""
    if requested not in PRECISIONS:
        raise ConfigError(f"training.precision: expected one of {', '.join(PRECISIONS)}; got {requested!r}")
    device = torch.device(device)
    kind = device.type
    if kind == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if requested == "auto":
            if bf16:
                return Precision("bfloat16", kind, "auto: this GPU supports bfloat16")
            return Precision("float16", kind, "auto: this GPU has no bfloat16; float16 with loss scaling")
        if requested == "bfloat16" and not bf16:
            raise ConfigError("training.precision: bfloat16 requested but this GPU does not support it; "
                              "use float16 or auto")
        return Precision(requested, kind, f"{requested} as requested")
    if kind == "cpu":
        if requested == "float16":
            raise ConfigError("training.precision: float16 (with loss scaling) is for CUDA; on a CPU use "
                              "bfloat16, float32 or auto")
        flags = cpu_bf16_flags()
        if requested == "auto":
            if not flags:
                return Precision("float32", kind, "auto: this CPU has no bfloat16 units (no avx512_bf16 / "
                                                  "amx_bf16), where bfloat16 autocast is slower than float32")
            if probe is not None:
                speedup, what, margin = probe_speedup(probe, kind), "a training step", PROBE_MARGIN
            else:
                speedup, what, margin = cpu_matmul_speedup(), "a bfloat16 matmul", 1.0
            if speedup > margin:
                return Precision("bfloat16", kind, f"auto: this CPU has {'/'.join(flags)} and {what} measured "
                                                   f"{speedup:.2f}x the speed of float32 in bfloat16")
            return Precision("float32", kind, f"auto: this CPU has {'/'.join(flags)} but {what} measured "
                                              f"{speedup:.2f}x the speed of float32 in bfloat16")
        if requested == "bfloat16" and not flags:
            return Precision("bfloat16", kind, "bfloat16 as requested; WARNING: this CPU has no bfloat16 units, "
                                               "so this is likely several times slower than float32")
        return Precision(requested, kind, f"{requested} as requested")
    if requested not in ("auto", "float32"):
        raise ConfigError(f"training.precision: {requested} autocast is not supported on {kind}; use float32 or auto")
    return Precision("float32", kind, f"auto: float32 on {kind}")
