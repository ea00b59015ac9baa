"""``cuecraft cache fill``: compute the missing entries of the embedding caches."""

from __future__ import annotations

import argparse
import sys

from cuecraft.cli._shared import _add_group
from cuecraft.cli.options import add_config_arguments


def run_cache_fill(args: argparse.Namespace) -> int:
    from cuecraft.cache_fill import fill_cache, format_unreadable
    from cuecraft.cli.options import config_source
    from cuecraft.config.reading import compose

    config, _ = compose(config_source(args.config), args.overrides)
    report = fill_cache(config, args.data, workers=args.workers,
                        progress=None if args.no_progress else sys.stderr)
    print(report.summary(), flush=True)
    if report.unreadable:
        print(format_unreadable(report.unreadable), flush=True)
    return 1 if args.strict and report.unreadable else 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    actions = _add_group(commands, "cache", "fill embedding caches ahead of training",
                         "Manage the embedding caches of cache-backed conditioners.")
    fill = actions.add_parser(
        "fill",
        help="compute every missing cache entry for a folder or manifest of audio",
        description="Build the conditioners of CONFIG, keep those with a cache (cache_path set, e.g. "
                    "chroma_stem) and compute the entry of every audio file in DATA that is missing or "
                    "corrupt (files already cached are skipped, so a stopped run resumes). Under "
                    "torchrun --nproc_per_node K each rank takes every K-th file (RANK, WORLD_SIZE). "
                    "Unreadable files are listed and counted at the end. Prints one summary line per rank.",
    )
    add_config_arguments(fill, positional=False, required=True)
    fill.add_argument("--data", metavar="DIR", required=True,
                      help="folder of audio files (searched recursively), or a manifest: .txt (one path per "
                           "line) or .jsonl (objects with a \"path\")")
    fill.add_argument("--workers", metavar="N", type=int, default=1, help="processes per rank (default 1)")
    fill.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    fill.add_argument("--strict", action="store_true", help="exit with status 1 when a file is unreadable")
    fill.set_defaults(run=run_cache_fill, command_name="cache fill")
