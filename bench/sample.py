"""Benchmark: real-time factor of sampling 8 s of latents with 25 steps and CFG, per sampler.

Run:  .venv/bin/python bench/sample.py [--quick] [--out PATH] [--threads N] [--device cpu|cuda]
                                       [--precision auto|float32|bfloat16|float16] [--batch B]

Model: ``cuecraft.models.DiT`` with random (seeded) weights, sized as a small music model over a
mel latent: 64 bands at 62.5 frames/s (8 s = 500 frames), patch 4 (125 tokens), width 256, depth
8, 4 heads, rotary positions; conditions as a text-prompt model has them: a cross-attention
source of 64 tokens x 768 (a T5-base width; the prompt fills 20 of them, the rest is masked
padding) and a global vector of 64 (seconds). The unconditional branch is the null condition
(zeros, all-False mask), batched with the conditional one in one DiT call per step (``concat_fused``).
Random weights cost what trained ones do; the numbers are speed only.

Rows: every v sampler (euler, heun, dpmpp_2m, ddim) and rectified flow's euler, 25 steps, CFG
scale 5 over all steps; then dpmpp_2m without guidance, and with guidance only for t in
[0.2, 0.8] (the interval saves the unconditional half of the steps outside it). Each figure is
the median wall time of 3 whole ``cuecraft.sampling.sample`` calls (noise to latents, decoding
not included) after one warm-up DiT call; ``--quick`` times one call per row. RTF = wall seconds / audio
seconds (< 1: faster than real time); ``x realtime`` is its inverse.

Precision: ``--precision auto`` (the default) asks ``cuecraft.train.precision.choose_precision``,
which keeps float32 on a CPU without bfloat16 units; the choice and its reason are reported.

Prints a table and writes JSON (atomically) to bench/results/sample.json or ``--out``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import cuecraft
from cuecraft.fuser import FusedInputs
from cuecraft.models import DiT, DiTConfig
from cuecraft.sampling import concat_fused, sample
from cuecraft.train.precision import choose_precision

from _common import print_table, write_json, progress  # isort: skip  (bench/ is on sys.path when run as a script)

SECONDS = 8.0
FRAME_RATE = 62.5  # mel frames per second of the latent (e.g. 16 kHz audio, hop 256)
N_MELS = 64
STEPS = 25
SCALE = 5.0
CROSS_LENGTH, CROSS_DIM, PROMPT_TOKENS, GLOBAL_DIM = 64, 768, 20, 64
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "sample.json"

ROWS = (  # (objective, sampler, guidance scale, interval)
    ("v", "euler", SCALE, (0.0, 1.0)),
    ("v", "heun", SCALE, (0.0, 1.0)),
    ("v", "dpmpp_2m", SCALE, (0.0, 1.0)),
    ("v", "ddim", SCALE, (0.0, 1.0)),
    ("rectified_flow", "euler", SCALE, (0.0, 1.0)),
    ("v", "dpmpp_2m", 1.0, (0.0, 1.0)),
    ("v", "dpmpp_2m", SCALE, (0.2, 0.8)),
)


def conditions(batch: int, device: torch.device) -> tuple[FusedInputs, FusedInputs]:
    """(conditional, null) FusedInputs: a 20-token prompt padded to 64, and a global vector."""
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(batch, CROSS_LENGTH, dtype=torch.bool)
    mask[:, :PROMPT_TOKENS] = True
    src = torch.randn(batch, CROSS_LENGTH, CROSS_DIM, generator=g) * mask.unsqueeze(-1)
    cond = FusedInputs(cross_attention_src=src.to(device), cross_attention_mask=mask.to(device),
                       global_cond=torch.randn(batch, GLOBAL_DIM, generator=g).to(device))
    null = FusedInputs(cross_attention_src=torch.zeros_like(cond.cross_attention_src),
                       cross_attention_mask=torch.zeros_like(cond.cross_attention_mask),
                       global_cond=torch.zeros_like(cond.global_cond))
    return cond, null


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timed call per row instead of 3")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--precision", default="auto", help="auto, float32, bfloat16 or float16 (CUDA)")
    parser.add_argument("--batch", type=int, default=1, help="clips per call (default 1; CFG doubles it)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    precision = choose_precision(args.precision, device)
    frames = round(SECONDS * FRAME_RATE)
    config = DiTConfig(latent_dim=N_MELS, patch_size=4, dim=256, depth=8, heads=4,
                       cross_attention_dim=CROSS_DIM, global_dim=GLOBAL_DIM)
    torch.manual_seed(0)
    dit = DiT(config).to(device).eval()
    with torch.no_grad():  # adaLN-zero starts as the identity: give the blocks weight, so all of them run
        for p in dit.parameters():
            if p.abs().max() == 0:
                p.normal_(0.0, 0.02)

    def model(x: torch.Tensor, t: torch.Tensor, fused: FusedInputs, *, x_mask: torch.Tensor | None = None) -> torch.Tensor:
        with precision.autocast():
            return dit(x, t, fused, x_mask=x_mask).float()

    cond, null = conditions(args.batch, device)
    repeats = 1 if args.quick else 3
    rows: list[dict[str, Any]] = []
    with torch.inference_mode():
        warm = torch.zeros(2 * args.batch, N_MELS, frames, device=device)
        model(warm, torch.ones(2 * args.batch, device=device), concat_fused(cond, null))  # warm-up
        for objective, sampler, scale, interval in ROWS:
            progress(f"{objective} {sampler} scale {scale}")
            calls = {"n": 0, "items": 0}

            def counted(x, t, fused, *, x_mask=None):
                calls["n"] += 1
                calls["items"] += x.shape[0]
                return model(x, t, fused, x_mask=x_mask)

            times = []
            for _ in range(repeats):
                calls.update(n=0, items=0)
                start = time.perf_counter()
                out = sample(counted, objective, cond, shape=(args.batch, N_MELS, frames), steps=STEPS,
                             sampler=sampler, guidance_scale=scale, negative=null if scale != 1.0 else None,
                             interval=interval, generator=torch.Generator(device=device.type).manual_seed(0))
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
                assert out.shape == (args.batch, N_MELS, frames) and bool(torch.isfinite(out).all())
            seconds = statistics.median(times)
            rtf = seconds / (SECONDS * args.batch)
            rows.append({"objective": objective, "sampler": sampler, "cfg_scale": scale, "interval": list(interval),
                         "model_calls": calls["n"], "items_per_clip": calls["items"] // args.batch,
                         "seconds": seconds, "seconds_all": times, "rtf": rtf, "x_realtime": 1.0 / rtf,
                         "ms_per_call": 1e3 * seconds / calls["n"]})

    print(f"torch {torch.__version__}, cuecraft {cuecraft.__version__}, device {device}, "
          f"{torch.get_num_threads()} threads, precision {precision.name} ({precision.reason})")
    print(f"DiT {dit.parameter_count() / 1e6:.1f} M parameters; {args.batch} x {SECONDS:g} s = {frames} frames x "
          f"{N_MELS} mels, patch 4; {STEPS} steps; cross {CROSS_LENGTH} x {CROSS_DIM}, global {GLOBAL_DIM}\n")
    print_table(["objective", "sampler", "cfg", "interval", "DiT calls", "items/clip", "seconds", "RTF", "x realtime",
                 "ms/call"],
                [[r["objective"], r["sampler"], f"{r['cfg_scale']:g}", f"{r['interval'][0]:g}-{r['interval'][1]:g}",
                  r["model_calls"], r["items_per_clip"], r["seconds"], r["rtf"], f"{r['x_realtime']:.1f}",
                  f"{r['ms_per_call']:.1f}"] for r in rows])
    write_json(args.out, {
        "benchmark": "sample", "torch": torch.__version__, "cuecraft": cuecraft.__version__,
        "python": platform.python_version(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "threads": torch.get_num_threads(), "precision": precision.name, "precision_reason": precision.reason,
        "quick": args.quick, "batch": args.batch, "audio_seconds": SECONDS, "frames": frames, "n_mels": N_MELS,
        "steps": STEPS, "dit": {"patch_size": 4, "dim": 256, "depth": 8, "heads": 4, "cross_attention_dim": CROSS_DIM,
                                "global_dim": GLOBAL_DIM, "parameters": dit.parameter_count()},
        "rows": rows})
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
