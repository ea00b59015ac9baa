"""``cuecraft config validate`` and ``cuecraft config convert``."""

from __future__ import annotations

import argparse

from cuecraft.cli._shared import _add_group, _format_table, _quiet_model_loading, check_output_file
from cuecraft.cli.options import add_config_arguments


def run_config_validate(args: argparse.Namespace) -> int:
    from cuecraft.cli.options import config_source
    from cuecraft.config.report import validate_config

    _quiet_model_loading()
    model = _model_config_document(args)
    if model is not None:
        return _print_model_validation(args, model)
    report = validate_config(config_source(args.file), overrides=args.overrides)
    print(f"{' + '.join(args.file)}{' (with --set)' if args.overrides else ''}: valid {report.format} config\n")
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


def _model_config_document(args: argparse.Namespace):
    """The merged document when FILE is a model config (conditioning + representation + backbone), else None."""
    from cuecraft.config.reading import compose
    from cuecraft.config.report import is_model_config

    document, _ = compose(args.file if len(args.file) > 1 else args.file[0], args.overrides)
    return document if is_model_config(document) else None


def _print_model_validation(args: argparse.Namespace, document: dict) -> int:
    from cuecraft.config.report import validate_model_config

    report = validate_model_config(document)
    conditioning = report.conditioning
    print(f"{' + '.join(args.file)}{' (with --set)' if args.overrides else ''}: valid model config "
          f"(conditioning: {conditioning.format})\n")
    print(_format_table(
        ["id", "type", "roles", "output [B, T, D]", "parameters", "trainable"],
        [[r.id, r.type, "+".join(r.roles), "-" if r.shape is None else str(list(r.shape)),
          f"{r.parameters:,}", "frozen" if r.parameters and not r.trainable else f"{r.trainable:,}"]
         for r in conditioning.rows],
    ))
    print(f"\nrepresentation: {report.representation}")
    print(f"backbone:       {report.backbone}; {report.dit_parameters:,} parameters")
    print(f"objective:      {report.objective}")
    for note in [*(f"{r.id}: {r.note}" for r in conditioning.rows if r.note), *conditioning.notes, *report.notes]:
        print(f"note: {note}")
    return 0


def run_config_convert(args: argparse.Namespace) -> int:
    from cuecraft.cli.options import config_source
    from cuecraft.config.build import check_config_types
    from cuecraft.config.formats import load_config, save_config

    check_output_file(args.out, (".json", ".yaml", ".yml"))
    loaded = load_config(config_source(args.file), overrides=args.overrides)
    check_config_types(loaded.config)
    save_config(loaded.config, args.out)
    print(f"wrote {args.out} (cuecraft format, from {loaded.format})")
    if loaded.ignored:
        print(f"ignored (not used by cuecraft): {', '.join(loaded.ignored)}")
    for note in loaded.notes:
        print(f"note: {note}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    actions = _add_group(commands, "config", "validate and convert conditioning configs",
                         "Validate a conditioning config, or convert one from stable-audio-tools or "
                         "AudioCraft into cuecraft's format.")
    validate = actions.add_parser(
        "validate", help="check a config and print one row per condition",
        description="Read FILE (cuecraft's format, a stable-audio-tools model_config.json or its "
                    "model.conditioning block, or an AudioCraft YAML), build every conditioner and "
                    "print, per condition: id, type, fuser roles, output shape for an example batch, "
                    "parameter count and whether it trains. On failure every problem is printed with "
                    "its field path and the exit status is 2. Pretrained models missing on this "
                    "machine are reported, not failed.")
    add_config_arguments(validate, positional=True)
    validate.set_defaults(run=run_config_validate, command_name="config validate")
    convert = actions.add_parser(
        "convert", help="write a config in cuecraft's own format",
        description="Read FILE in any supported format and write it in cuecraft's canonical format "
                    "(JSON or YAML by the suffix of --out). Peer fields cuecraft does not use are listed.")
    add_config_arguments(convert, positional=True)
    convert.add_argument("--out", metavar="FILE", required=True, help="where to write (.json, .yaml or .yml)")
    convert.set_defaults(run=run_config_convert, command_name="config convert")
