"""The ``cuecraft`` command: a thin, validated layer over the library.

    cuecraft condition [--config FILE] [--metadata FILE] [--seed N] [--train] [--json]
    cuecraft cache fill --config FILE --data DIR [--workers N] [--no-progress] [--strict]
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


def run_cache_fill(args: argparse.Namespace) -> int:
    from cuecraft.cache_fill import fill_cache, format_unreadable

    report = fill_cache(args.config, args.data, workers=args.workers,
                        progress=None if args.no_progress else sys.stderr)
    print(report.summary(), flush=True)
    if report.unreadable:
        print(format_unreadable(report.unreadable), flush=True)
    return 1 if args.strict and report.unreadable else 0


def _add_cache_parser(commands: argparse._SubParsersAction) -> None:
    cache = commands.add_parser("cache", help="fill embedding caches ahead of training",
                                description="Manage the embedding caches of cache-backed conditioners.")
    actions = cache.add_subparsers(dest="cache_action", metavar="ACTION")

    def no_action(args: argparse.Namespace) -> int:
        cache.print_help()
        return 2

    cache.set_defaults(run=no_action)
    fill = actions.add_parser(
        "fill",
        help="compute every missing cache entry for a folder or manifest of audio",
        description="Build the conditioners of CONFIG, keep those with a cache (cache_path set, e.g. "
                    "chroma_stem) and compute the entry of every audio file in DATA that is missing or "
                    "corrupt (files already cached are skipped, so a stopped run resumes). Under "
                    "torchrun --nproc_per_node K each rank takes every K-th file (RANK, WORLD_SIZE). "
                    "Unreadable files are listed and counted at the end. Prints one summary line per rank.",
    )
    fill.add_argument("--config", metavar="FILE", required=True, help="conditioning config, JSON or YAML")
    fill.add_argument("--data", metavar="DIR", required=True,
                      help="folder of audio files (searched recursively), or a manifest: .txt (one path per "
                           "line) or .jsonl (objects with a \"path\")")
    fill.add_argument("--workers", metavar="N", type=int, default=1, help="processes per rank (default 1)")
    fill.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    fill.add_argument("--strict", action="store_true", help="exit with status 1 when a file is unreadable")
    fill.set_defaults(run=run_cache_fill, command_name="cache fill")


def run_config_validate(args: argparse.Namespace) -> int:
    from cuecraft.config.report import validate_config

    _quiet_model_loading()
    report = validate_config(args.file)
    print(f"{args.file}: valid {report.format} config\n")
    print(_format_table(
        ["id", "type", "roles", "output [B, T, D]", "parameters", "trainable"],
        [[r.id, r.type, "+".join(r.roles), "-" if r.shape is None else str(list(r.shape)),
          f"{r.parameters:,}", "frozen" if r.parameters and not r.trainable else f"{r.trainable:,}"]
         for r in report.rows],
    ))
    for r in report.rows:
        if r.note:
            print(f"\nnote: {r.id}: {r.note}")
    for note in report.notes:
        print(f"note: {note}")
    if report.ignored:
        print(f"\nignored (not used by cuecraft): {', '.join(report.ignored)}")
    return 0


def run_config_convert(args: argparse.Namespace) -> int:
    from cuecraft.config.build import check_config_types
    from cuecraft.config.formats import load_config, save_config

    loaded = load_config(args.file)
    check_config_types(loaded.config)
    save_config(loaded.config, args.out)
    print(f"wrote {args.out} (cuecraft format, from {loaded.format})")
    if loaded.ignored:
        print(f"ignored (not used by cuecraft): {', '.join(loaded.ignored)}")
    for note in loaded.notes:
        print(f"note: {note}")
    return 0


def _add_config_parser(commands: argparse._SubParsersAction) -> None:
    config = commands.add_parser("config", help="validate and convert conditioning configs",
                                 description="Validate a conditioning config, or convert one from "
                                             "stable-audio-tools or AudioCraft into cuecraft's format.")
    actions = config.add_subparsers(dest="config_action", metavar="ACTION")

    def no_action(args: argparse.Namespace) -> int:
        config.print_help()
        return 2

    config.set_defaults(run=no_action)
    validate = actions.add_parser(
        "validate", help="check a config and print one row per condition",
        description="Read FILE (cuecraft's format, a stable-audio-tools model_config.json or its "
                    "model.conditioning block, or an AudioCraft YAML), build every conditioner and "
                    "print, per condition: id, type, fuser roles, output shape for an example batch, "
                    "parameter count and whether it trains. On failure every problem is printed with "
                    "its field path and the exit status is 2. Pretrained models missing on this "
                    "machine are reported, not failed.")
    validate.add_argument("file", metavar="FILE", help="the config, JSON or YAML")
    validate.set_defaults(run=run_config_validate, command_name="config validate")
    convert = actions.add_parser(
        "convert", help="write a config in cuecraft's own format",
        description="Read FILE in any supported format and write it in cuecraft's canonical format "
                    "(JSON or YAML by the suffix of --out). Peer fields cuecraft does not use are listed.")
    convert.add_argument("file", metavar="FILE", help="the config to convert")
    convert.add_argument("--out", metavar="FILE", required=True, help="where to write (.json, .yaml or .yml)")
    convert.set_defaults(run=run_config_convert, command_name="config convert")


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
    _add_cache_parser(commands)
    _add_config_parser(commands)
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
        print(f"cuecraft {getattr(args, 'command_name', args.command)}: error: {error}", file=sys.stderr)
        return 2
