"""The ``cuecraft`` command: a thin, validated layer over the library.

    cuecraft condition [--config FILE] [--metadata FILE] [--seed N] [--train] [--json]
    cuecraft cache fill --config FILE --data DIR [--workers N] [--no-progress] [--strict]
    cuecraft musicldm --model DIR PROMPT --out FILE.wav [--negative TEXT] [--seconds S] [--steps N] ...
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

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
    weights = None
    if args.weights:
        from cuecraft.config.weights import load_peer_weights

        weights = load_peer_weights(stack.provider, args.weights)
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
    if weights is None:
        print(f"weights:  pretrained encoders as the config names them; all other weights random (seed {args.seed})\n")
    else:
        print(f"weights:  {args.weights}: {weights}\n")
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


def _add_group(commands: argparse._SubParsersAction, name: str, help: str,
               description: str) -> argparse._SubParsersAction:
    """A command with sub-actions (``cuecraft NAME ACTION``); alone it prints its help, status 2."""
    group = commands.add_parser(name, help=help, description=description)

    def no_action(args: argparse.Namespace) -> int:
        group.print_help()
        return 2

    group.set_defaults(run=no_action)
    return group.add_subparsers(dest=f"{name}_action", metavar="ACTION")


def _add_cache_parser(commands: argparse._SubParsersAction) -> None:
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
    validate.add_argument("file", metavar="FILE", help="the config, JSON or YAML")
    validate.set_defaults(run=run_config_validate, command_name="config validate")
    convert = actions.add_parser(
        "convert", help="write a config in cuecraft's own format",
        description="Read FILE in any supported format and write it in cuecraft's canonical format "
                    "(JSON or YAML by the suffix of --out). Peer fields cuecraft does not use are listed.")
    convert.add_argument("file", metavar="FILE", help="the config to convert")
    convert.add_argument("--out", metavar="FILE", required=True, help="where to write (.json, .yaml or .yml)")
    convert.set_defaults(run=run_config_convert, command_name="config convert")


MUSICLDM_DEFAULTS = {"seconds": 10.0, "steps": 50, "guidance": 2.0, "eta": 0.0, "candidates": 1, "keep": 1}
# CLI option -> the pipeline argument a preset sets
_PRESET_FIELDS = {"steps": "num_inference_steps", "guidance": "guidance_scale", "eta": "eta",
                  "candidates": "num_waveforms_per_prompt", "keep": "num_waveforms_to_keep"}


def _musicldm_settings(args: argparse.Namespace) -> dict:
    """The generation settings: the preset's (or the CLI defaults), then the options given. Checked
    here, before any model is loaded; every problem is one line."""
    from cuecraft.pipelines import SCHEDULERS, musicldm_preset

    settings = dict(MUSICLDM_DEFAULTS)
    if args.preset is not None:
        preset = musicldm_preset(args.preset)
        settings.update({option: preset[field] for option, field in _PRESET_FIELDS.items()})
    settings.update({name: getattr(args, name) for name in settings if getattr(args, name) is not None})
    problems = []
    if not (math.isfinite(settings["seconds"]) and settings["seconds"] > 0):
        problems.append(f"--seconds must be a positive number; got {settings['seconds']}")
    for name in ("steps", "candidates"):
        if settings[name] < 1:
            problems.append(f"--{name} must be at least 1; got {settings[name]}")
    if not 1 <= settings["keep"] <= max(settings["candidates"], 1):
        problems.append(f"--keep must be between 1 and --candidates ({settings['candidates']}); got {settings['keep']}")
    if not math.isfinite(settings["guidance"]):
        problems.append(f"--guidance must be a finite number; got {settings['guidance']}")
    if not (math.isfinite(settings["eta"]) and settings["eta"] >= 0):
        problems.append(f"--eta must be a number >= 0; got {settings['eta']}")
    if args.scheduler is not None and args.scheduler not in SCHEDULERS:
        problems.append(f"--scheduler must be one of {', '.join(SCHEDULERS)}; got {args.scheduler!r}")
    if not args.out.lower().endswith(".wav"):
        problems.append(f"--out must name a .wav file; got {args.out!r}")
    elif not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        problems.append(f"--out: the directory {os.path.dirname(os.path.abspath(args.out))} does not exist")
    if not args.prompt.strip():
        problems.append("PROMPT is empty; describe the music to generate")
    if problems:
        raise CuecraftError("; ".join(problems))
    return settings


def _progress_bar(stream: TextIO) -> Callable[..., dict]:
    """A callback_on_step_end that draws ``[#####.....] i/total steps`` on ``stream`` (total: the
    scheduler's timesteps, which for some schedulers is one more than the steps asked for)."""
    def on_step_end(pipeline, i: int, t, tensors: dict) -> dict:
        done, total = i + 1, len(pipeline.scheduler.timesteps)
        filled = round(30 * done / total)
        stream.write(f"\rmusicldm: [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} steps")
        if done == total:
            stream.write("\n")
        stream.flush()
        return tensors
    return on_step_end


def run_musicldm(args: argparse.Namespace) -> int:
    import torch

    from cuecraft.errors import GenerationInputError
    from cuecraft.pipelines import MusicLDMPipeline
    from cuecraft.pipelines.wav import write_wavs

    settings = _musicldm_settings(args)
    _quiet_model_loading()
    pipeline = MusicLDMPipeline.from_pretrained(args.model)
    if args.scheduler is not None:
        pipeline.set_scheduler(args.scheduler)
    generator = torch.Generator().manual_seed(args.seed)
    try:
        output = pipeline(
            args.prompt, audio_length_in_s=settings["seconds"], num_inference_steps=settings["steps"],
            guidance_scale=settings["guidance"], negative_prompt=args.negative, eta=settings["eta"],
            num_waveforms_per_prompt=settings["candidates"], num_waveforms_to_keep=settings["keep"],
            generator=generator, clip_output=True,
            callback_on_step_end=None if args.no_progress else _progress_bar(sys.stderr))
    except GenerationInputError as error:
        raise CuecraftError("; ".join(error.problems)) from None
    try:
        paths = write_wavs(args.out, list(output.audios), pipeline.sample_rate)
    except OSError as error:
        raise CuecraftError(f"cannot write {args.out}: {error}") from None
    scores = [None] * len(paths) if output.scores is None else output.scores.reshape(-1).tolist()
    for path, audio, score in zip(paths, output.audios, scores):
        similarity = "" if score is None else f"  CLAP similarity {score:+.3f}"
        print(f"wrote {path}  {audio.shape[-1] / pipeline.sample_rate:.2f} s at {pipeline.sample_rate} Hz{similarity}")
    return 0


def _add_musicldm_parser(commands: argparse._SubParsersAction) -> None:
    from cuecraft.pipelines.presets import PRESETS

    musicldm = commands.add_parser(
        "musicldm", help="generate music from a text prompt with a local MusicLDM model",
        description="Generate music from PROMPT with the MusicLDM model in DIR (a diffusers-format directory: "
                    "model_index.json and vae, text_encoder, tokenizer, feature_extractor, unet, scheduler, "
                    "vocoder; nothing is downloaded). Writes 16-bit WAV at the vocoder's rate, atomically; with "
                    "--keep K > 1 the files are OUT_0.wav .. OUT_{K-1}.wav, best first. Settings come from "
                    "--preset (default: the CLI defaults shown), then from the options given. A progress bar "
                    "goes to stderr.")
    musicldm.add_argument("prompt", metavar="PROMPT", help="what the music should be")
    musicldm.add_argument("--model", metavar="DIR", required=True, help="local MusicLDM model directory")
    musicldm.add_argument("--out", metavar="FILE.wav", required=True,
                          help="output WAV file (several: FILE_0.wav, FILE_1.wav, ...)")
    musicldm.add_argument("--negative", metavar="TEXT", help="negative prompt: what the music should not be")
    musicldm.add_argument("--preset", choices=list(PRESETS),
                          help="diffusers: 200 steps, eta 0, 1 candidate; original (MusicLDM paper): 200 steps, "
                               "eta 1.0, 5 candidates keep the best 1")
    musicldm.add_argument("--seconds", type=float, help="length in seconds (default 10)")
    musicldm.add_argument("--steps", type=int, help="denoising steps (default 50)")
    musicldm.add_argument("--guidance", type=float, help="guidance scale; > 1 turns guidance on (default 2.0)")
    musicldm.add_argument("--eta", type=float, help="DDIM eta: 0 deterministic, 1 stochastic (default 0)")
    musicldm.add_argument("--scheduler", metavar="NAME",
                          help="ddim, pndm, lms, euler, euler-ancestral, dpm-solver++ or unipc "
                               "(default: the model's own)")
    musicldm.add_argument("--candidates", type=int, help="waveforms generated, ranked by CLAP similarity to "
                                                         "the prompt (default 1)")
    musicldm.add_argument("--keep", type=int, help="best candidates written (default 1)")
    musicldm.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    musicldm.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    musicldm.set_defaults(run=run_musicldm)


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
    condition.add_argument("--weights", metavar="CKPT", help="load the conditioners' trained weights from a "
                           "stable-audio-tools or AudioCraft checkpoint (.safetensors, .ckpt, .th); strict")
    condition.add_argument("--seed", type=int, default=0, help="seed for weight initialisation and dropout (default 0)")
    condition.add_argument("--train", action="store_true", help="apply the config's training dropouts")
    condition.add_argument("--json", action="store_true", help="print the result as JSON")
    condition.set_defaults(run=run_condition)
    _add_cache_parser(commands)
    _add_config_parser(commands)
    _add_musicldm_parser(commands)
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
