"""Benchmark: one whole training step of a small DiT, float32 vs bfloat16 autocast, torch.compile off / on.

Run:  .venv/bin/python bench/train.py [--quick] [--out PATH] [--threads N] [--device cpu|cuda]
                                      [--batch B] [--seconds S] [--[no-]compile] [--dim W --depth N --n-mels M]

``--quick`` (about a minute): 4 s items, 3 timed steps, no compile rows unless ``--compile``.

Model: the trainer's own parts, built by ``cuecraft.config.model.build_model`` from a model config:
a mel representation at the built-in geometry (16 kHz, 64 bands, hop 256: 62.5 frames/s), a DiT
over it (patch 4, width 256, depth 4, 4 heads, rotary positions: about 6 M parameters) and a
conditioning stack of bpm (number) and key (24-way list) conditions routed to cross-attention
and global. Batch 8 items of 8 s (``--quick``: 4 s) of seeded noise audio.

A step is what ``cuecraft train`` does per optimizer step (``cuecraft.train.loop``): encode the
wav to normalised log-mel (no grad), per-item timesteps and noise, the v objective's noisy input
and target, the DiffusionModule forward (conditioners + fuser + DiT) under the precision's
autocast, masked MSE, backward, gradient clipping, AdamW, EMA update. Rows: float32 and bfloat16
autocast, each with ``torch.compile`` of the module off and on (``training.compile``); every row
is the median of timed steps after warm-up steps, rows taking turns step by step so that a slow
spell of the shared machine hits them all alike. The compile rows report their compile time
(the first, warm-up steps) apart.

Also reported: what ``choose_precision("auto")`` picks here and why, with the trainer's probe
(a step of this model, timed in both precisions) and without one (the matmul micro-benchmark,
``cpu_matmul_speedup``, which the trainer decided on alone before: it says 2.3x here even where a
whole step of a small model runs slower in bfloat16).

Prints a table and writes JSON (atomically) to bench/results/train.json or ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

import cuecraft
from cuecraft.config.model import build_model
from cuecraft.train.data import frame_mask
from cuecraft.train.ema import EMA
from cuecraft.train.module import DiffusionModule
from cuecraft.train.precision import Precision, choose_precision, cpu_bf16_flags, cpu_matmul_speedup

from _common import print_table, write_json, progress  # isort: skip  (bench/ is on sys.path when run as a script)

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "train.json"
KEYS = [f"{k} {m}" for m in ("major", "minor") for k in ("c", "db", "d", "eb", "e", "f", "f#", "g", "ab", "a",
                                                           "bb", "b")]


def model_config(batch: int, dim: int = 256, depth: int = 4, n_mels: int = 64) -> dict[str, Any]:
    return {
        "conditioning": {
            "cond_dim": 128,
            "conditioners": [
                {"id": "bpm", "type": "number", "roles": ["cross", "global"], "config": {"min_val": 40, "max_val": 240}},
                {"id": "key", "type": "list", "roles": ["cross", "global"], "config": {"options": KEYS}},
            ],
            "dropout": {"cfg": 0.1},
        },
        "representation": {"type": "mel", "sample_rate": 16000, "n_fft": 1024, "hop": 256, "n_mels": n_mels},
        "backbone": {"type": "dit", "latent_dim": n_mels, "dim": dim, "depth": depth, "heads": 4, "mlp_ratio": 4.0,
                     "patch_size": 4, "cross_attention_dim": 128, "global_dim": 256, "timestep_dim": dim},
        "objective": {"type": "v", "timesteps": "logit_normal"},
        "training": {"batch_size": batch, "precision": "float32", "seed": 0},
    }


class Step:
    """One configuration's training step (its own copy of the model, optimizer and EMA)."""

    def __init__(self, parts: Any, precision: Precision, compiled: bool, batch: dict[str, Any], device: torch.device):
        stack, representation, dit, objective = parts
        self.module = DiffusionModule(copy.deepcopy(stack), copy.deepcopy(dit)).to(device)
        self.representation, self.objective, self.precision = representation, objective, precision
        self.parameters = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.parameters, lr=1e-4)
        self.ema = EMA(self.module, 0.999)
        self.forward = torch.compile(self.module) if compiled else self.module
        self.batch, self.device = batch, device
        self.times: list[float] = []

    def __call__(self) -> float:
        batch = self.batch
        start = time.perf_counter()
        with torch.no_grad():
            x0 = self.representation.encode(batch["wav"])  # [B, D, L]
            mask = frame_mask(batch["padding_mask"], x0.shape[-1], self.representation.hop)
        eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1)).to(self.device)
        t = batch["t"]
        x_t, target = self.objective.noise(x0, eps, t), self.objective.target(x0, eps, t)
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.autocast():
            prediction = self.forward(x_t, t, batch["tokens"], mask)
        loss = self.objective.loss(prediction.float(), target, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters, 1.0)
        self.optimizer.step()
        self.ema.update(self.module)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def make_batch(stack: Any, batch: int, seconds: float, device: torch.device) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(0)
    samples = round(seconds * 16000)
    wav = 0.1 * torch.randn(batch, 1, samples, generator=generator)
    metadata = [{"bpm": 60 + 10 * i, "key": KEYS[i % len(KEYS)]} for i in range(batch)]
    tokens = stack.provider.tokenize(metadata, train=True, generator=generator)
    return {"wav": wav.to(device), "padding_mask": torch.ones(batch, samples, dtype=torch.bool, device=device),
            "t": torch.sigmoid(torch.randn(batch, generator=generator)).to(device),
            "tokens": {k: v.to(device) for k, v in tokens.items()}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s items, fewer timed steps (about a minute)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=None, help="item length (default 8; --quick 4)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="the torch.compile rows (default: on, off with --quick: compiling takes 1-2 min)")
    parser.add_argument("--dim", type=int, default=256, help="DiT width (default 256)")
    parser.add_argument("--depth", type=int, default=4, help="DiT blocks (default 4)")
    parser.add_argument("--n-mels", type=int, default=64, help="mel bands = latent channels (default 64)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    seconds = args.seconds or (4.0 if args.quick else 8.0)
    warmup, timed = (1, 3) if args.quick else (2, 8)
    compile_rows = (not args.quick) if args.compile is None else args.compile

    parts = build_model(model_config(args.batch, args.dim, args.depth, args.n_mels))
    stack, representation, dit, _ = parts
    representation.to(device)
    batch = make_batch(stack, args.batch, seconds, device)
    frames = representation.frames(round(seconds * 16000))
    bf16 = "bfloat16" if device.type == "cpu" or torch.cuda.is_bf16_supported() else "float16"
    configurations = [(name, compiled) for compiled in ((False, True) if compile_rows else (False,))
                      for name in ("float32", bf16)]
    steps, compile_seconds = {}, {}
    for name, compiled in configurations:
        progress(f"configuration {name}")
        step = Step(parts, Precision(name, device.type, "benchmark"), compiled, batch, device)
        first = [step() for _ in range(warmup)]  # warm-up (compiles the compiled rows)
        if compiled:
            compile_seconds[(name, compiled)] = first[0]
        steps[(name, compiled)] = step
    for _ in range(timed):  # rows take turns step by step
        for key, step in steps.items():
            step.times.append(step())

    probe_step = steps[("float32", False)]

    def probe(precision: Precision) -> None:  # what the trainer times: a step of this model on this batch
        probe_step.precision = precision
        probe_step()

    chosen = choose_precision("auto", device, probe=probe)
    matmul_rule = choose_precision("auto", device)  # the matmul micro-benchmark alone (the old rule)
    speedup = cpu_matmul_speedup() if device.type == "cpu" else None
    base = statistics.median(steps[("float32", False)].times)
    rows, results = [], []
    for (name, compiled), step in steps.items():
        median = statistics.median(step.times)
        rows.append([name, "on" if compiled else "off", median * 1000, args.batch / median, base / median,
                     f"{compile_seconds[(name, compiled)]:.1f}" if compiled else "-"])
        results.append({"precision": name, "compile": compiled, "step_ms": median * 1000,
                        "step_ms_all": [s * 1000 for s in step.times], "items_per_s": args.batch / median,
                        "speed_vs_float32": base / median,
                        "compile_s": compile_seconds.get((name, compiled))})
    print(f"torch {torch.__version__}, cuecraft {cuecraft.__version__}, {platform.processor() or platform.machine()}, "
          f"device {device.type}, {torch.get_num_threads()} threads, bfloat16 flags: "
          f"{'/'.join(cpu_bf16_flags()) or 'none'}")
    print(f"DiT {dit.parameter_count() / 1e6:.2f} M parameters; batch {args.batch} x {seconds:g} s = {frames} frames "
          f"x {args.n_mels} mels, patch 4, width {args.dim}, depth {args.depth}; median of {timed} steps after {warmup} warm-up")
    print(f"choose_precision('auto') with the trainer's step probe: {chosen.name} ({chosen.reason})")
    print(f"choose_precision('auto') without a probe: {matmul_rule.name} ({matmul_rule.reason})")
    if speedup is not None:
        print(f"matmul micro-benchmark (512 x 512): bfloat16 at {speedup:.2f}x float32")
    print()
    print_table(["precision", "compile", "step ms", "items/s", "vs float32", "compile s"], rows)
    payload = {"torch": torch.__version__, "cuecraft": cuecraft.__version__, "device": device.type,
               "processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "bf16_flags": cpu_bf16_flags(), "parameters": dit.parameter_count(), "dim": args.dim, "depth": args.depth, "n_mels": args.n_mels, "batch": args.batch,
               "seconds": seconds, "frames": frames, "warmup_steps": warmup, "timed_steps": timed,
               "quick": args.quick, "auto": {"precision": chosen.name, "reason": chosen.reason},
               "auto_matmul_rule": {"precision": matmul_rule.name, "reason": matmul_rule.reason},
               "matmul_speedup_bf16": speedup, "rows": results}
    write_json(args.out, payload)
    print(f"\nwrote {args.out}")
    return payload


if __name__ == "__main__":
    main()
