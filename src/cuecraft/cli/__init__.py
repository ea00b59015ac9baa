"""The ``cuecraft`` command: a thin, validated layer over the library.

    cuecraft generate [PROMPT] [--bpm N] [--key K] [--instrument I] [--drums on|off] [--melody FILE] [--seconds S] [--model builtin|DIR] [--out FILE.wav] [--json] ...
    cuecraft condition [--config FILE] [--metadata FILE] [--seed N] [--train] [--json] [--out FILE.safetensors]
    cuecraft cache fill --config FILE --data DIR [--workers N] [--no-progress] [--strict]
    cuecraft data check DATA [--json] [--strict] [--cache-dir DIR]
    cuecraft data encode DATA --representation DIR --out DIR [--seconds S] [--batch-size N] [--workers N] [--precision P]
    cuecraft corpus make --out DIR [--items N] [--seconds S] [--seed N] [--sample-rate HZ] [--soundfont FILE.sf2] [--workers N]
    cuecraft train --config MODEL.json --data DIR --out runs/NAME [--max-steps N] [--resume] [--precision P]
    cuecraft train vocoder --data DIR --out DIR [--steps N] [--batch-size N] [--seconds S] [--seed N] [--resume]
    cuecraft eval --model builtin|DIR [--prompts FILE.jsonl] --out DIR [--limit N] [--steps N] ... | --audio DIR --out DIR
    cuecraft musicldm --model DIR PROMPT --out FILE.wav [--negative TEXT] [--seconds S] [--steps N] ...
    cuecraft musicgen PROMPT --model DIR|NAME [--melody FILE] [--continue FILE] [--seconds S] [--guidance G] ...
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cuecraft._version import __version__
from cuecraft.cli import cache, condition, config, corpus, data, eval, generate, musicgen, musicldm, train, ui
from cuecraft.cli._shared import check_output_file, storage_message
from cuecraft.cli.cache import run_cache_fill
from cuecraft.cli.condition import run_condition
from cuecraft.cli.config import run_config_convert, run_config_validate
from cuecraft.cli.corpus import run_corpus_make
from cuecraft.cli.data import run_data_check, run_data_encode
from cuecraft.cli.musicldm import MUSICLDM_DEFAULTS, run_musicldm
from cuecraft.cli.options import add_plugin_arguments
from cuecraft.cli.train import run_train, run_train_vocoder
from cuecraft.errors import CuecraftError

__all__ = ["MUSICLDM_DEFAULTS", "build_parser", "check_output_file", "main", "run_cache_fill", "run_condition",
           "run_config_convert", "run_config_validate", "run_corpus_make", "run_data_check", "run_data_encode",
           "run_musicldm", "run_train", "run_train_vocoder"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cuecraft",
        description="Turn metadata (text, numbers, labels, audio) into the tensors that condition "
                    "audio generative models.",
    )
    parser.add_argument("--version", action="version", version=f"cuecraft {__version__}")
    add_plugin_arguments(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    generate.add_parser(commands)
    condition.add_parser(commands)
    cache.add_parser(commands)
    config.add_parser(commands)
    data.add_parser(commands)
    corpus.add_parser(commands)
    eval.add_parser(commands)
    musicldm.add_parser(commands)
    musicgen.add_parser(commands)
    train.add_parser(commands)
    ui.add_parser(commands)
    train.add_model_train_options(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--version"]:  # answered before anything heavy is imported
        print(f"cuecraft {__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        from cuecraft.cli.options import load_plugins

        load_plugins(args.plugin)
        if getattr(args, "device", None) is not None:  # before any model is built on it
            from cuecraft._device import check_device

            check_device(args.device)
        if not args.allow_download:
            return args.run(args)
        from cuecraft.conditioners.pretrained import downloads_allowed

        with downloads_allowed():
            return args.run(args)
    except CuecraftError as error:
        print(f"cuecraft {getattr(args, 'command_name', args.command)}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # storage: a read-only or full disk, an output that is a folder, a name too long
        print(f"cuecraft {getattr(args, 'command_name', args.command)}: error: {storage_message(error)}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before a command installs its own handling (model loading, set-up)
        print(f"cuecraft {getattr(args, 'command_name', args.command)}: interrupted", file=sys.stderr)
        return 130
