"""Benchmark: real-time factor of `cuecraft generate` per stage, on the built-in model (or --model DIR).

Run:  .venv/bin/python bench/generate.py [--quick] [--model builtin|DIR] [--threads N] [--steps 25]
                                         [--seconds 8] [--out PATH]

One request with every control (prompt, bpm, key, instrument, drums and a melody recording), the
issue's target settings: 8 s of audio, 25 dpmpp_2m steps, classifier-free guidance (conditional
and unconditional branches batched in one DiT pass per step). Stages, each timed on its own:

- conditioning: checking the request and building both branches' conditions (text encoder, labels,
  numbers, the melody's chroma): ``pipe._check`` + ``stack.guidance_inputs``;
- sampling: noise to latents (``cuecraft.sampling.sample``);
- decoding: latents to the waveform (the representation's vocoder or Griffin-Lim);
- measuring: the clip's tempo and key (what ``--json`` reports; not part of making the audio);
- total: one whole ``pipe.generate`` call with measuring off (what the target is about);
- command: the whole ``cuecraft generate PROMPT --bpm 90 --seconds S`` in a new process, from the
  command to the WAV (imports, model loading, first call, PNG); one untimed run first warms the
  disk cache (``--no-command`` skips it).

Each figure is the median of 3 runs after one warm-up (``--quick``: 1 run). RTF = wall seconds /
audio seconds. Loading the model (once per process) is reported apart. Prints a table and writes
JSON (atomically) to bench/results/generate.json or ``--out``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import RESULTS, median_seconds, print_table, progress, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one timed run per stage")
    parser.add_argument("--model", default="builtin", help="builtin or an exported model directory")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, = cores)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "generate.json")
    parser.add_argument("--no-command", action="store_true", help="skip the fresh-process `cuecraft generate` row")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from cuecraft.data.corpus import render_piece, sample_piece
    from cuecraft.pipelines.generate import GenerationRequest, measure
    from cuecraft.sampling import sample

    started = time.perf_counter()
    if args.model == "builtin":
        from cuecraft.pipelines.generate import load_builtin

        pipe = load_builtin()
    else:
        from cuecraft.pipelines.generate import GenerationPipeline

        pipe = GenerationPipeline.from_dir(args.model)
    load_seconds = time.perf_counter() - started
    progress(f"model loaded in {load_seconds:.1f} s; {torch.get_num_threads()} threads")
    spec = sample_piece(7, seconds=args.seconds)
    melody = (render_piece(spec, sample_rate=16000)[0].numpy(), 16000)
    wanted = {"prompt": "an upbeat electric piano groove", "bpm": 128, "key": "A minor", "instrument": "electric piano",
              "drums": "on", "melody": melody, "seconds": args.seconds}
    request = GenerationRequest(**{k: v for k, v in wanted.items() if k in pipe.controls or k == "seconds"})
    repeats = 1 if args.quick else 3
    scale = pipe.stack.guidance_scale
    state = {}

    def condition():
        _, metadata = pipe._check(request)
        with torch.no_grad():
            state["fused"] = pipe.stack.guidance_inputs([metadata])

    def sampling():
        conditional, negative = state["fused"]
        with torch.no_grad():
            state["latents"] = sample(pipe.dit, pipe.objective, conditional, steps=args.steps, guidance_scale=scale,
                                      shape=(1, pipe.dit.config.latent_dim, pipe.frames), negative=negative,
                                      generator=torch.Generator().manual_seed(0))

    def decoding():
        with torch.no_grad():
            state["wav"] = pipe.representation.decode(state["latents"], length=round(args.seconds * pipe.sample_rate))

    def measuring():
        measure(state["wav"][0].mean(0).numpy(), pipe.sample_rate)

    def total():
        pipe.generate([request], steps=args.steps, measured=False)

    def command():
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
            subprocess.run([sys.executable, "-m", "cuecraft", "generate", "calm piano", "--bpm", "90", "--seconds",
                            f"{args.seconds:g}", "--steps", str(args.steps), "--model", args.model, "--no-progress",
                            "--out", str(Path(folder) / "x.wav")], check=True, env=env, stdout=subprocess.DEVNULL)

    stages = (("conditioning", condition), ("sampling", sampling), ("decoding", decoding), ("measuring", measuring),
              ("total", total), *(() if args.no_command else (("command", command),)))
    rows, results = [], {}
    for name, fn in stages:
        seconds = median_seconds(fn, budget_s=0.0, min_repeats=repeats)
        results[name] = {"seconds": seconds, "rtf": seconds / args.seconds}
        rows.append([name, seconds, seconds / args.seconds])
        progress(f"{name}: {seconds:.3f} s")
    print_table(["stage", "seconds", "RTF"], rows)
    target = results["total"]["seconds"]
    print(f"8 s target: <= 2 s (stretch 0.8 s); measured {target:.2f} s "
          f"({'met' if target <= 2.0 else f'missed by {target - 2.0:.2f} s'})")
    if "command" in results:
        whole = results["command"]["seconds"]
        print(f"command to WAV, fresh process, target <= 4 s: measured {whole:.2f} s "
              f"({'met' if whole <= 4.0 else f'missed by {whole - 4.0:.2f} s'})")
    write_json(args.out, {
        "bench": "generate", "model": args.model, "steps": args.steps, "seconds": args.seconds,
        "guidance_scale": scale, "threads": torch.get_num_threads(), "load_seconds": load_seconds,
        "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "torch": torch.__version__},
        "controls": sorted(request.asked()), "stages": results,
        "peak_sample": float(np.abs(state["wav"].numpy()).max()),
    })


if __name__ == "__main__":
    main()
