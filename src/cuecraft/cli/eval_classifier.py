"""``cuecraft eval train-classifier``: train the lead-instrument classifier on a labelled corpus."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "Train the lead-instrument classifier that `cuecraft eval` scores instrument adherence with, on "
    "the training part of a corpus (`cuecraft corpus make`: train.jsonl), and report its accuracy on "
    "the held-out part (heldout.jsonl), on clean audio and after a Griffin-Lim round trip through the "
    "built-in model's 128-band log-mel (how generated audio sounds). Writes classifier.json, "
    "classifier.safetensors and report.json into DIR; features are cached (--cache-dir), so a rerun "
    "only trains.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="CORPUS_DIR_OR_MANIFEST", required=True,
                        help="a corpus folder (train.jsonl + heldout.jsonl) or a manifest whose rows have "
                             "\"path\", \"instrument\" and \"split\" (train / heldout)")
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder for the classifier (created)")
    parser.add_argument("--epochs", metavar="N", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--seed", metavar="N", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--roundtrip", action="store_true",
                        help="also train on Griffin-Lim round trips of each piece's middle --roundtrip-seconds "
                             "(slow the first time: about 0.1 s of one core per second of audio)")
    parser.add_argument("--roundtrip-seconds", metavar="S", type=float, default=2.0,
                        help="seconds of each training piece to round-trip (default 2)")
    parser.add_argument("--no-roundtrip-eval", action="store_true",
                        help="skip the held-out accuracy on round-tripped audio")
    parser.add_argument("--head", choices=("conv", "stats"), default="conv",
                        help="conv: 1-D convolutions over frames (default); stats: per-band statistics only")
    parser.add_argument("--cache-dir", metavar="DIR", help="feature cache (default DIR/feature-cache)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _progress(stage: str, done: int, total: int) -> None:
    if done == total or done % max(1, total // 10) == 0:
        print(f"{stage}: {done}/{total}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from cuecraft.eval.instrument import train_classifier

    report = train_classifier(args.data, args.out, epochs=args.epochs, seed=args.seed, roundtrip=args.roundtrip,
                              roundtrip_seconds=args.roundtrip_seconds, head=args.head,
                              evaluate_roundtrip=not args.no_roundtrip_eval, cache_dir=args.cache_dir,
                              progress=None if args.quiet else _progress)
    print(report.summary(), flush=True)
    print(f"wrote {args.out}/classifier.json, classifier.safetensors and report.json", flush=True)
    return 0
