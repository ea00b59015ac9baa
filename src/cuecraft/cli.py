"""The ``cuecraft`` command: a thin, validated layer over the library.

    cuecraft condition [--config FILE] [--metadata FILE] [--seed N] [--train] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from cuecraft._version import __version__
from cuecraft.errors import CuecraftError


def _format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:+.4f}"


def _quiet_model_loading() -> None:
    """The command prints its own output: turn off transformers' per-load progress bars."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return
    transformers_logging.disable_progress_bar()


def run_condition(args: argparse.Namespace) -> int:
    import torch

    from cuecraft.config import DEFAULT_CONFIG, DEFAULT_METADATA, build_stack, read_file

    config_path = args.config or DEFAULT_CONFIG
    metadata_path = args.metadata or DEFAULT_METADATA
    metadata = read_file(metadata_path)
    if not isinstance(metadata, list):
        raise CuecraftError(f"{metadata_path}: expected a list of metadata objects; got {type(metadata).__name__}")
    _quiet_model_loading()
    stack = build_stack(config_path, seed=args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    with torch.inference_mode():
        conditions = stack.condition(metadata, train=args.train, generator=generator)
        fused = stack.fuse(conditions)
    rows = stack.summarize(conditions)
    outputs = {
        name: tuple(getattr(fused, name).shape)
        for name in ("cross_attention_src", "cross_attention_mask", "prepend_cond", "prepend_mask", "global_cond")
        if getattr(fused, name) is not None
    }
    if args.json:
        print(json.dumps({
            "config": str(config_path), "metadata": str(metadata_path), "batch": len(metadata),
            "conditions": [
                {**row.__dict__, "mean": None if math.isnan(row.mean) else row.mean,
                 "std": None if math.isnan(row.std) else row.std}
                for row in rows
            ],
            "fused": {name: list(shape) for name, shape in outputs.items()},
        }, indent=2))
        return 0
    print(f"config:   {config_path}")
    print(f"metadata: {metadata_path} ({len(metadata)} items{', training dropout on' if args.train else ''})")
    print(f"weights:  pretrained encoders as the config names them; all other weights random (seed {args.seed})\n")
    print(_format_table(
        ["condition", "type", "roles", "shape [B, T, D]", "unmasked", "mean", "std"],
        [[r.name, r.type, "+".join(r.roles), str(list(r.shape)), f"{r.unmasked:.0%}", _number(r.mean), _number(r.std).lstrip("+")]
         for r in rows],
    ))
    print("\nfused (what the backbone reads):")
    for name, shape in outputs.items():
        print(f"  {name:<22} {list(shape)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cuecraft",
        description="Turn metadata (text, numbers, labels, audio) into the tensors that condition "
                    "audio generative models.",
    )
    parser.add_argument("--version", action="version", version=f"cuecraft {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    condition = commands.add_parser(
        "condition",
        help="condition a batch of metadata and print one row per condition",
        description="Build a conditioning stack from a config, condition a batch of metadata and print, "
                    "per condition, its type, fuser roles, embedding shape, share of unmasked "
                    "positions, and the mean and std over unmasked positions. Without options it runs "
                    "the shipped example config on the shipped example metadata.",
    )
    condition.add_argument("--config", metavar="FILE", help="conditioning config, JSON or YAML "
                           "(default: the shipped example)")
    condition.add_argument("--metadata", metavar="FILE", help="JSON or YAML list of metadata objects "
                           "(default: the shipped examples)")
    condition.add_argument("--seed", type=int, default=0, help="seed for weight initialisation and dropout (default 0)")
    condition.add_argument("--train", action="store_true", help="apply the config's training dropouts")
    condition.add_argument("--json", action="store_true", help="print the result as JSON")
    condition.set_defaults(run=run_condition)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except CuecraftError as error:
        print(f"cuecraft {args.command}: error: {error}", file=sys.stderr)
        return 2
