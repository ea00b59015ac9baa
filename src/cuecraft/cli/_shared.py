"""What the command modules share: table and number formatting, quiet model loading, command
groups (``cuecraft NAME ACTION``) and the rule for ``--out`` files."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence

from cuecraft._text import shorten
from cuecraft.errors import CuecraftError


def printable(text: str) -> str:
    """``text`` with the bytes of a non-UTF-8 file name (surrogate escapes) shown as ``\\xff``, so
    printing it never fails under strict UTF-8 output."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte (from JSON text)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


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


def _add_group(commands: argparse._SubParsersAction, name: str, help: str,
               description: str) -> argparse._SubParsersAction:
    """A command with sub-actions (``cuecraft NAME ACTION``); alone it prints its help, status 2."""
    group = commands.add_parser(name, help=help, description=description)

    def no_action(args: argparse.Namespace) -> int:
        group.print_help()
        return 2

    group.set_defaults(run=no_action)
    return group.add_subparsers(dest=f"{name}_action", metavar="ACTION")


def check_output_file(out: str, suffixes: Sequence[str]) -> None:
    """The one rule for --out files: a name with one of ``suffixes``, not an existing directory,
    in a directory that exists (nothing is created but the file)."""
    if os.path.isdir(out):
        raise CuecraftError(f"--out: {out} is a directory; name a file in it")
    if not out.lower().endswith(tuple(suffixes)):
        raise CuecraftError(f"--out must name a {' or '.join(suffixes)} file; got {out!r}")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise CuecraftError(f"--out: the directory {parent} does not exist")


def storage_message(error: OSError) -> str:
    """One line for an OSError of the file system: what failed, on which path (shortened), why."""
    reason = error.strerror or str(error) or type(error).__name__
    names = [n for n in (error.filename, error.filename2) if n is not None]
    shown = " -> ".join(printable(shorten(os.fsdecode(n) if isinstance(n, bytes) else str(n), 300)) for n in names)
    return f"{shown}: {reason}" if shown else printable(shorten(reason, 300))


def draw_progress(stream, label: str, done: int, total: int) -> None:
    """One ``LABEL: [#####.....] done/total steps`` line on ``stream``, redrawn in place, ended at the last step."""
    filled = round(30 * done / total)
    stream.write(f"\r{label}: [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} steps")
    if done == total:
        stream.write("\n")
    stream.flush()
