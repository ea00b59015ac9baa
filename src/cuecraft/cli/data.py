"""``cuecraft data check`` and ``cuecraft data encode``: inspect and pre-encode training data."""

from __future__ import annotations

import argparse
import json
import os
import sys

from cuecraft.cli._shared import _add_group, _format_table, printable


def run_data_check(args: argparse.Namespace) -> int:
    from cuecraft.data.check import check_data

    report = check_data(args.data, cache_dir=args.cache_dir)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 1 if args.strict and report.unreadable else 0
    print(f"{printable(report.data)} ({report.kind}): {report.files} files, {report.usable} usable, "
          f"{len(report.unreadable)} unusable; {report.total_seconds / 3600:.2f} h "
          f"({report.total_seconds:.1f} s) of audio")
    print("sample rates: " + (", ".join(f"{rate} Hz x {n}" for rate, n in report.sample_rates.items()) or "-"))
    print("channels:     " + (", ".join(f"{c} x {n}" for c, n in report.channels.items()) or "-"))
    if report.index_file:
        print(f"index:        {printable(report.index_file)}")
    print(printable("\n" + _format_table(["field", "coverage"],
                                         [[name, f"{share:.0%}"] for name, share in report.coverage.items()])))
    if report.unreadable:
        print(f"\nunusable ({len(report.unreadable)}):")
        for path, reason in report.unreadable:
            print(printable(f"  {path}: {reason}"))
    return 1 if args.strict and report.unreadable else 0


def run_data_encode(args: argparse.Namespace) -> int:
    from cuecraft.data.dataset import open_dataset
    from cuecraft.data.encoded import encode_dataset
    from cuecraft.models.representation.base import load_representation

    representation = load_representation(args.representation)
    dataset = open_dataset(args.data, sample_rate=representation.sample_rate, channels=representation.channels,
                           segment_seconds=args.seconds, mode="sequential", cache_dir=args.cache_dir)
    report = encode_dataset(dataset, representation, args.out, batch_size=args.batch_size, workers=args.workers,
                            precision=args.precision, progress=None if args.no_progress else sys.stderr,
                            source=os.fspath(args.data))
    print(report.summary(), flush=True)
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    actions = _add_group(commands, "data", "inspect and pre-encode training data",
                         "Inspect the audio and metadata a dataset would train on, or pre-encode it.")
    check = actions.add_parser(
        "check", help="counts, duration, metadata coverage and unusable files of a dataset",
        description="Inspect DATA: a folder of audio (searched recursively, <audio>.json sidecars beside "
                    "the files), a .jsonl or .txt manifest, or WebDataset shards (a .tar, a glob or brace "
                    "pattern such as 'train-{000..127}.tar', or a folder of .tar files). Prints the number "
                    "of files, total duration, sample rates and channels, per metadata field the share of "
                    "usable files that have it, and every unusable file with its reason. Folders and "
                    "manifests are read through the cached dataset index (headers only).")
    check.add_argument("data", metavar="DATA", help="folder, manifest (.jsonl / .txt) or shards")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--strict", action="store_true", help="exit with status 1 when a file is unusable")
    check.add_argument("--cache-dir", metavar="DIR",
                       help="where to keep the dataset index when the data folder is read-only "
                            "(default: $CUECRAFT_CACHE_DIR/data-index or ~/.cache/cuecraft/data-index)")
    check.set_defaults(run=run_data_check, command_name="data check")
    encode = actions.add_parser(
        "encode", help="pre-encode a dataset with a representation, so training does not encode every step",
        description="Read DATA (a folder, manifest or shards, as in 'data check') at the representation's "
                    "sample rate and channels, cut every file into sequential segments of --seconds (the "
                    "last one padded; whole files without --seconds), run each through the representation "
                    "once and write its frames (safetensors) and metadata (JSON) into --out, with an "
                    "encoded.json describing the representation and the counts. Stopped runs resume: run "
                    "the same command again and complete items are skipped. A folder holds one "
                    "representation; another one is refused. Train on it with EncodedDataset.")
    encode.add_argument("data", metavar="DATA", help="folder, manifest (.jsonl / .txt) or shards")
    encode.add_argument("--representation", metavar="DIR", required=True,
                        help="a saved representation (representation.json + representation.safetensors)")
    encode.add_argument("--out", metavar="DIR", required=True, help="the encoded dataset folder (new, or one to resume)")
    encode.add_argument("--seconds", metavar="S", type=float,
                        help="segment length in seconds (default: whole files)")
    encode.add_argument("--batch-size", metavar="N", type=int, default=8, help="segments encoded together (default 8)")
    encode.add_argument("--workers", metavar="N", type=int, default=0,
                        help="processes reading and resampling audio (default 0: this process)")
    encode.add_argument("--precision", choices=["float32", "float16"], default="float32",
                        help="how the frames are stored (default float32; read back as float32)")
    encode.add_argument("--cache-dir", metavar="DIR", help="where to keep the dataset index when the data "
                                                           "folder is read-only (as in 'data check')")
    encode.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    encode.set_defaults(run=run_data_encode, command_name="data encode")
