"""Benchmark: how well the mel representation decodes, by its trained vocoder and by Griffin-Lim.

Run:  .venv/bin/python bench/representation.py [--quick] [--vocoder DIR] [--steps N] [--out PATH] [--threads N]

Audio: cuecraft's labelled corpus (``cuecraft.data.corpus.make_corpus``, cuecraft's own synthesis
at 16 kHz): a training corpus (seed 1) and a held-out one (seed 2), pieces of different seeds, so
no held-out piece is heard in training. Full: 32 training and 8 held-out items of 8 s; ``--quick``:
8 and 4 items of 4 s.

Representation: the default mel (16 kHz, hop 256, 64 mels, n_fft 1024), statistics fitted on the
training corpus. Vocoder: loaded from ``--vocoder DIR`` (a saved mel representation), or trained
here by ``train_vocoder`` (full: 1500 steps of the default size; quick: 150 steps of a small one,
width 64 and 4 blocks), batch 8 of 1 s, lr 1e-3.

Rows, per decoder, over the held-out items (each decoded whole): mel L1 (the mean absolute
difference of natural-log mel spectrograms of the original and encode -> decode, the
representation's own analysis), the multi-resolution STFT distance (spectral convergence + log
magnitude L1 at 512/1024/2048, ``cuecraft.train.losses``), and decode speed in x real time
(seconds of audio per second of decoding, the median of timed runs after a warm-up, one item at a
time). Prints a table and writes JSON (atomically) to bench/results/representation.json or ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from cuecraft.audio.io import load_audio
from cuecraft.data.corpus import make_corpus
from cuecraft.models.representation import GriffinLimOptions, MelRepresentation, VocoderOptions, load_representation
from cuecraft.train.losses import MultiResolutionSTFTLoss
from cuecraft.train.vocoder import train_vocoder

from _common import median_seconds, print_table, write_json, progress  # isort: skip  (bench/ is on sys.path)

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "representation.json"


def corpus(folder: Path, items: int, seconds: float, seed: int) -> list[torch.Tensor]:
    make_corpus(folder, items=items, seconds=seconds, seed=seed, sample_rate=16000)
    return [load_audio(path)[0] for path in sorted(folder.glob("*.wav"))]  # [1, T] each


def evaluate(representation: MelRepresentation, wavs: list[torch.Tensor], budget_s: float) -> dict[str, float]:
    loss = MultiResolutionSTFTLoss()
    mel, convergence, magnitude, speeds = [], [], [], []
    with torch.no_grad():
        for wav in wavs:
            x = wav[None]  # [1, 1, T]
            z = representation.encode(x)
            y = representation.decode(z, length=x.shape[-1])
            mel.append(float((representation.log_mel(y) - representation.log_mel(x)).abs().mean()))
            distance = loss.distance(y[:, 0], x[:, 0])
            convergence.append(float(distance.spectral_convergence))
            magnitude.append(float(distance.log_magnitude))
        x = wavs[0][None]
        z = representation.encode(x)
        seconds = median_seconds(lambda: representation.decode(z, length=x.shape[-1]), budget_s)
        speeds.append(x.shape[-1] / representation.sample_rate / seconds)
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    return {"mel_l1": mean(mel), "stft_spectral_convergence": mean(convergence),
            "stft_log_magnitude": mean(magnitude), "stft_distance": mean(convergence) + mean(magnitude),
            "decode_x_realtime": speeds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller corpus and a briefly trained small vocoder")
    parser.add_argument("--vocoder", metavar="DIR", help="a saved mel representation with a trained vocoder")
    parser.add_argument("--steps", type=int, help="training steps of the vocoder trained here")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train_items, held_items, seconds = (8, 4, 4.0) if args.quick else (32, 8, 8.0)
    steps = args.steps or (150 if args.quick else 1500)
    sizes = VocoderOptions(width=64, intermediate=192, layers=4) if args.quick else VocoderOptions()
    with tempfile.TemporaryDirectory(prefix="cuecraft-bench-representation-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        corpus(root / "train", train_items, seconds, seed=1)
        held = corpus(root / "held", held_items, seconds, seed=2)
        print(f"corpus: {train_items} training + {held_items} held-out items of {seconds:g} s "
              f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
        if args.vocoder:
            trained = load_representation(args.vocoder)
            training = {"loaded_from": os.fspath(args.vocoder)}
        else:
            trained = MelRepresentation()
            result = train_vocoder(trained, root / "train", out_dir=root / "run", steps=steps, batch_size=8,
                                   segment_seconds=1.0, lr=1e-3, log_every=max(1, steps // 10),
                                   checkpoint_every=steps, vocoder_options=sizes,
                                   log=lambda p: print(f"  step {p['step']}: loss {p['loss']:.3f}", file=sys.stderr))
            training = {"steps": steps, "seconds": round(result.seconds, 1), "vocoder": dataclasses.asdict(sizes),
                        "losses": result.losses,
                        "parameters": sum(p.numel() for p in trained.vocoder.parameters())}
    trained.eval()
    rows, results = [], {}
    budget = 1.0 if args.quick else 3.0
    decoders = [("vocoder", trained)]
    for n_iter in (32, 64):
        progress(f"griffin-lim n_iter {n_iter}")
        griffin_lim = MelRepresentation(dataclasses.replace(trained.options, griffin_lim=GriffinLimOptions(n_iter=n_iter)))
        griffin_lim.mean.copy_(trained.mean)
        griffin_lim.std.copy_(trained.std)
        decoders.append((f"griffin-lim {n_iter}", griffin_lim))
    for name, representation in decoders:
        progress(f"decoder {name}")
        metrics = evaluate(representation, held, budget)
        results[name] = metrics
        rows.append([name, metrics["mel_l1"], metrics["stft_spectral_convergence"], metrics["stft_log_magnitude"],
                     metrics["stft_distance"], f"{metrics['decode_x_realtime']:.1f}x"])
    print_table(["decoder", "mel L1", "STFT sc", "STFT log mag", "STFT dist", "decode speed"], rows)
    write_json(args.out, {
        "benchmark": "representation", "quick": args.quick, "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "corpus": {"train_items": train_items, "held_out_items": held_items, "seconds": seconds,
                   "train_seed": 1, "held_out_seed": 2, "sample_rate": 16000},
        "representation": dataclasses.asdict(trained.options), "training": training, "results": results,
    })
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
