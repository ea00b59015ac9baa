"""Why are generated latents rougher than the data? Minutes-long experiments on small models.

    .venv/bin/python recipes/sample_quality.py --corpus runs/builtin/corpus --work runs/quality \\
        --variants patch4_v,patch4_x0,patch1_v --steps 1500 [--memorise 16]

Each variant trains a small unconditioned ``cuecraft.models.DiT`` (width ``--dim``, depth
``--depth``) on the corpus's latents through the built-in model's representation (128-band
log-mel, normalised by the shipped statistics; the first ``--seconds`` of each training piece),
with cuecraft's objectives, timestep samplers and samplers, then samples ``--samples`` latents
(dpmpp_2m, 25 steps, from fixed noises) and measures them against held-out pieces
(``cuecraft.eval.sample_stats``): roughness and standard deviation as ratios to the data's, and
the relative error of the denoiser's x0 estimate on held-out latents at t = 0.05, 0.2, 0.5, 0.95.
``--memorise N`` trains on N pieces only and also reports each sample's squared distance to its
nearest training latent over that latent's energy (an all-zero latent scores 1.0; a memorised
one near 0).

A variant is ``patch{P}_{OUT}[_{TIMESTEPS}][_w{DIM}][_c{KERNEL}]``: patch size P, network output
``v`` (the v objective's own quantity) or ``x0``, timesteps ``uniform`` (default) or
``logitnormal``, optionally another width, and optionally the DiT's residual output conv of that
kernel (``output_conv``). Prints a table and writes ``WORK/quality.json`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import torch

from cuecraft._files import atomic_write
from cuecraft.eval.sample_stats import LatentStats, sample_quality
from cuecraft.fuser import FusedInputs
from cuecraft.models.dit import DiT
from cuecraft.models.dit_config import DiTConfig
from cuecraft.models.objectives import get_objective, get_timestep_sampler
from cuecraft.sampling import sample

BUILTIN_REPRESENTATION = Path(__file__).resolve().parents[1] / "src/cuecraft/builtin/model/representation"
PROBE_TIMES = (0.05, 0.2, 0.5, 0.95)


def load_latents(corpus: Path, part: str, count: int, seconds: float, cache: Path) -> torch.Tensor:
    """[count, 128, L] latents of the first ``seconds`` of the first ``count`` pieces of ``part``."""
    if cache.exists():
        latents = torch.load(cache, weights_only=True)
        if latents.shape[0] >= count:
            return latents[:count]
    from cuecraft.audio.io import load_audio
    from cuecraft.models.representation.base import load_representation

    representation = load_representation(BUILTIN_REPRESENTATION)
    lines = (corpus / f"{part}.jsonl").read_text().splitlines()[:count]
    wavs = []
    for line in lines:
        path = corpus / json.loads(line)["path"]
        wav, rate = load_audio(path, duration=seconds)
        if rate != representation.sample_rate:
            raise SystemExit(f"{path}: {rate} Hz; the representation reads {representation.sample_rate} Hz")
        wavs.append(wav[:1])
    with torch.no_grad():
        latents = torch.cat([representation.encode(torch.stack(wavs[i:i + 64])) for i in range(0, len(wavs), 64)])
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(latents, cache)
    return latents


def parse_variant(name: str, default_dim: int) -> dict:
    match = re.fullmatch(r"patch(\d+)_(v|x0)(?:_(uniform|logitnormal))?(?:_w(\d+))?(?:_c(\d+))?", name)
    if match is None:
        raise SystemExit(f"unknown variant {name!r}: expected "
                         "patch{P}_{v|x0}[_uniform|_logitnormal][_w{DIM}][_c{KERNEL}]")
    patch, output, timesteps, dim, conv = match.groups()
    return {"patch": int(patch), "output": "target" if output == "v" else "x0",
            "timesteps": timesteps or "uniform", "dim": int(dim) if dim else default_dim,
            "output_conv": int(conv) if conv else 0}


def relative_x0_error(model: DiT, objective, latents: torch.Tensor, t: float, seed: int) -> float:
    """|x0_hat - x0|^2 / |x0|^2 on ``latents`` noised at t (fixed noise)."""
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(latents.shape, generator=generator)
    times = torch.full((latents.shape[0],), t)
    x_t = objective.noise(latents, eps, times)
    with torch.no_grad():
        x0_hat = objective.denoised(x_t, times, model(x_t, times, FusedInputs()))
    return float((x0_hat - latents).square().sum() / latents.square().sum())


def run_variant(name: str, train: torch.Tensor, heldout: torch.Tensor, args: argparse.Namespace) -> dict:
    spec = parse_variant(name, args.dim)
    torch.manual_seed(args.seed)
    config = DiTConfig(latent_dim=train.shape[1], patch_size=spec["patch"], dim=spec["dim"], depth=args.depth,
                       heads=4, mlp_ratio=3.0, output_conv=spec["output_conv"])
    model = DiT(config)
    objective = get_objective("v", spec["output"])
    sampler = (get_timestep_sampler("uniform") if spec["timesteps"] == "uniform"
               else get_timestep_sampler("logit_normal"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    generator = torch.Generator().manual_seed(args.seed)
    start, losses = time.perf_counter(), []
    for step in range(args.steps):
        rows = torch.randint(0, train.shape[0], (args.batch,), generator=generator)
        x0 = train[rows]
        t = sampler(args.batch, generator=generator)
        eps = torch.randn(x0.shape, generator=generator)
        lr = args.lr * min(1.0, (step + 1) / 100)
        for group in optimizer.param_groups:
            group["lr"] = lr
        prediction = model(objective.noise(x0, eps, t), t, FusedInputs())
        loss = objective.loss(prediction, objective.target(x0, eps, t), t=t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if args.progress and (step + 1) % 100 == 0:
            print(f"  {name} step {step + 1}: loss {sum(losses[-100:]) / 100:.4f}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    model.eval()
    noise = torch.randn((args.samples, *train.shape[1:]), generator=torch.Generator().manual_seed(1234))
    with torch.no_grad():
        samples = sample(model, objective, FusedInputs(), shape=noise.shape, steps=25, sampler="dpmpp_2m",
                         noise=noise)
    quality = sample_quality(samples, heldout)
    args.work.mkdir(parents=True, exist_ok=True)
    torch.save(samples, args.work / f"samples_{name}{'_memorise' if args.memorise else ''}.pt")
    step = (samples[..., 1:] - samples[..., :-1]).abs().mean(dim=(0, 1))  # [L - 1]: roughness per frame boundary
    boundary = step[spec["patch"] - 1::spec["patch"]].mean() if spec["patch"] > 1 else step.mean()
    result = {"variant": name, **spec, "steps": args.steps, "train_seconds": round(seconds, 1),
              "final_loss": sum(losses[-100:]) / min(100, len(losses)), **quality.summary(),
              "roughness_at_patch_edges": float(boundary) / quality.data.roughness,
              "x0_error": {str(t): relative_x0_error(model, objective, heldout[:32], t, 99) for t in PROBE_TIMES}}
    if args.memorise:
        distances = torch.cdist(samples.flatten(1), train.flatten(1)).square()  # [S, N]
        nearest = distances.argmin(1)
        energy = train.flatten(1).square().sum(1)[nearest]
        result["nearest_over_energy"] = (distances.min(1).values / energy).tolist()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--variants", default="patch4_v,patch4_x0,patch1_v")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=6e-4)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--pieces", type=int, default=1500, help="training pieces (default 1500)")
    parser.add_argument("--memorise", type=int, default=0, help="train on this many pieces only")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tag = f"{args.seconds:g}s"
    train = load_latents(args.corpus, "train", args.pieces, args.seconds, args.work / f"train_{tag}.pt")
    heldout = load_latents(args.corpus, "heldout", 128, args.seconds, args.work / f"heldout_{tag}.pt")
    if args.memorise:
        train = train[: args.memorise]
    data = LatentStats.of(heldout if not args.memorise else train)
    print(f"data: roughness {data.roughness:.3f}, std {data.std:.3f} ({train.shape[0]} training latents "
          f"{list(train.shape[1:])})")
    results = []
    for name in args.variants.split(","):
        result = run_variant(name, train, heldout if not args.memorise else train, args)
        results.append(result)
        errors = " ".join(f"{v:.3f}" for v in result["x0_error"].values())
        extra = (f" nearest/energy {min(result['nearest_over_energy']):.2f}-{max(result['nearest_over_energy']):.2f}"
                 if args.memorise else "")
        print(f"{name:24s} loss {result['final_loss']:.4f} roughness x{result['roughness_ratio']:.2f} "
              f"(x{result['roughness_at_patch_edges']:.2f} at patch edges) std x{result['std_ratio']:.2f} x0 err {errors} ({result['train_seconds']:.0f} s){extra}", flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    out = args.work / ("memorise.json" if args.memorise else "quality.json")
    previous = json.loads(out.read_text()) if out.exists() else []
    with atomic_write(out, "w", encoding="utf-8") as handle:
        json.dump(previous + results, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
