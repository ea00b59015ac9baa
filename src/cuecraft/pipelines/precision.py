"""Which reduced precision makes a pipeline faster on this processor, if any.

bfloat16 autocast is fast only where the processor has matrix units for it: on an x86 CPU the
``avx512_bf16`` or ``amx_bf16`` flags (``amx_fp16`` / ``avx512_fp16`` for float16), on a GPU its
tensor cores. Elsewhere PyTorch emulates it and a run gets slower (MusicLDM's UNet loop measured
7.8x slower in bfloat16 on an AVX2 EPYC). ``choose_precision`` reads what the processor offers
(``torch.backends.cpu.get_cpu_capability()``, /proc/cpuinfo's flags), times one matmul per
candidate once per process (cached), and picks the fastest precision that is really faster, or
float32 with the reason.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

REDUCED = ("bfloat16", "float16")
# /proc/cpuinfo flags of x86 matrix units per dtype.
CPU_UNITS = {"bfloat16": ("avx512_bf16", "amx_bf16"), "float16": ("avx512_fp16", "amx_fp16")}
MIN_SPEEDUP = 1.1  # a precision must be this much faster on the micro-benchmark to be chosen
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class PrecisionChoice:
    """dtype: the autocast dtype chosen ("float32": none). reason: why, in one sentence.
    speedups: measured matmul speed-up over float32 per candidate dtype."""

    dtype: str
    reason: str
    speedups: dict[str, float] = field(default_factory=dict)


def cpu_capability() -> str:
    """PyTorch's CPU kernel level: "AVX512", "AVX2", "DEFAULT", ... ("unknown" if it cannot tell)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


@lru_cache(maxsize=1)
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is no such file)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_units(flags: frozenset[str] | None = None) -> dict[str, list[str]]:
    """``{dtype: [flags present]}``: the matrix units this CPU has for each reduced dtype."""
    flags = cpu_flags() if flags is None else flags
    return {dtype: [f for f in names if f in flags] for dtype, names in CPU_UNITS.items()}


@lru_cache(maxsize=16)
def matmul_speedup(device_type: str, dtype: str, size: int = 512, repeats: int = 5) -> float:
    """float32 time / ``dtype`` autocast time of a [size, size] matmul on ``device_type`` (median
    of ``repeats`` after a warm-up); measured once per process."""
    device = torch.device(device_type)
    a = torch.randn(size, size, device=device, generator=None)
    b = torch.randn(size, size, device=device)

    def timed(chosen: str) -> float:
        times = []
        for i in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            with torch.autocast(device.type, dtype=_DTYPES[chosen], enabled=chosen != "float32"):
                for _ in range(4):
                    (a @ b).sum()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:  # the first round warms up
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    with torch.no_grad():
        return timed("float32") / timed(dtype)


def choose_precision(device: torch.device | str, requested: str = "auto") -> PrecisionChoice:
    """The autocast dtype for ``device``: ``requested`` ("auto": the fastest of bfloat16 and
    float16) when the processor has units for it and the micro-benchmark finds it at least
    MIN_SPEEDUP times faster than float32; otherwise float32, with the reason."""
    device = torch.device(device)
    if requested == "float32":
        return PrecisionChoice("float32", "float32 asked for (exact)")
    candidates = list(REDUCED) if requested == "auto" else [requested]
    if device.type == "cuda":
        units = {d: ["tensor cores"] for d in candidates
                 if d != "bfloat16" or torch.cuda.is_bf16_supported()}
        where = f"GPU {torch.cuda.get_device_name(device)}"
    elif device.type == "cpu":
        units = {d: found for d, found in cpu_units().items() if d in candidates and found}
        where = f"CPU capability {cpu_capability()}"
    else:
        units = {d: ["device"] for d in candidates}
        where = f"device {device.type}"
    speedups = {d: round(matmul_speedup(device.type, d), 3) for d in candidates}
    usable = [d for d in candidates if d in units and speedups[d] >= MIN_SPEEDUP]
    if usable:
        best = max(usable, key=lambda d: speedups[d])
        return PrecisionChoice(best, f"{where}: {best} units ({', '.join(units[best])}), matmul "
                                     f"{speedups[best]:.2f}x float32", speedups)
    measured = ", ".join(f"{d} {s:.2f}x" for d, s in speedups.items())
    missing = [d for d in candidates if d not in units]
    why = (f"no {'/'.join(missing)} matrix units (flags {', '.join(f for d in missing for f in CPU_UNITS[d])} absent)"
           if missing and device.type == "cpu" else "no reduced precision is faster")
    return PrecisionChoice("float32", f"{where}: {why}; matmul {measured} vs float32, so float32 is kept "
                                      "(a reduced precision would make the run slower)", speedups)
