"""``cuecraft corpus make``: render the labelled corpus of synthesised pieces."""

from __future__ import annotations

import argparse

from cuecraft.cli._shared import _add_group


def run_corpus_make(args: argparse.Namespace) -> int:
    from cuecraft.data.corpus import make_corpus

    report = make_corpus(args.out, items=args.items, seconds=args.seconds, seed=args.seed,
                         sample_rate=args.sample_rate, soundfont=args.soundfont, workers=args.workers)
    print(report.summary(), flush=True)
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    actions = _add_group(commands, "corpus", "make the labelled corpus of synthesised pieces",
                         "The labelled corpus: short pieces whose tempo, key, metre, instruments, chords, "
                         "melody and description are known exactly.")
    make = actions.add_parser(
        "make",
        help="render a deterministic corpus: a WAV and a JSON sidecar per piece",
        description="Write ITEMS pieces into DIR: piece_NNNNNN.wav (mono, 16-bit) with piece_NNNNNN.json "
                    "(key, bpm, time signature, instruments, drums, chords, melody, beats, description, ...), "
                    "plus corpus.json, manifest.jsonl and its parts train.jsonl and heldout.jsonl (held-out "
                    "instrument, key and drums combinations). Piece k depends only on (seed, k). Complete "
                    "pieces are skipped, so a stopped run resumes; DIR must hold a corpus of the same "
                    "seed, seconds, sample rate and renderer, or none.",
    )
    make.add_argument("--out", metavar="DIR", required=True, help="output folder (created)")
    make.add_argument("--items", metavar="N", type=int, default=2000, help="number of pieces (default 2000)")
    make.add_argument("--seconds", metavar="S", type=float, default=8.0, help="seconds per piece (default 8)")
    make.add_argument("--seed", metavar="N", type=int, default=0, help="corpus seed (default 0)")
    make.add_argument("--sample-rate", metavar="HZ", type=int, default=16000, help="sample rate (default 16000)")
    make.add_argument("--soundfont", metavar="FILE", help="render through this General MIDI .sf2 (tinysoundfont) "
                      "instead of cuecraft's own synthesis, e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2")
    make.add_argument("--workers", metavar="N", type=int, default=1, help="processes (default 1)")
    make.set_defaults(run=run_corpus_make, command_name="corpus make")
