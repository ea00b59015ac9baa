"""The ``cuecraft`` command: a thin, validated layer over the library.

    cuecraft condition [--config FILE] [--metadata FILE] [--seed N] [--train] [--json]
    cuecraft cache fill --config FILE --data DIR [--workers N] [--no-progress] [--strict]
    cuecraft data check DATA [--json] [--strict] [--cache-dir DIR]
    cuecraft data encode DATA --representation DIR --out DIR [--seconds S] [--batch-size N] [--workers N] [--precision P]
    cuecraft corpus make --out DIR [--items N] [--seconds S] [--seed N] [--sample-rate HZ] [--soundfont FILE.sf2] [--workers N]
    cuecraft train --config MODEL.json --data DIR --out runs/NAME [--max-steps N] [--resume] [--precision P]
    cuecraft train vocoder --data DIR --out DIR [--steps N] [--batch-size N] [--seconds S] [--seed N] [--resume]
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
from cuecraft.cli_config import add_config_arguments, add_plugin_arguments
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

    from cuecraft.cli_config import config_source, resolve_audio
    from cuecraft.config import DEFAULT_CONFIG, DEFAULT_METADATA, build_stack, load_config, read_file

    config_path = config_source(args.config, DEFAULT_CONFIG)
    metadata_path = args.metadata or DEFAULT_METADATA
    metadata = read_file(metadata_path)
    if not isinstance(metadata, list):
        raise CuecraftError(f"{metadata_path}: expected a list of metadata objects; got {type(metadata).__name__}")
    _quiet_model_loading()
    stack = build_stack(load_config(config_path, overrides=args.overrides), seed=args.seed)
    kinds = {name: conditioner.kind for name, conditioner in stack.provider.conditioners.items()}
    metadata = resolve_audio(metadata, kinds, os.path.dirname(os.path.abspath(metadata_path)))
    weights = None
    if args.weights:
        from cuecraft.config.weights import load_peer_weights

        try:
            weights = load_peer_weights(stack.provider, args.weights)
        except CuecraftError:
            raise
        except Exception as error:  # noqa: BLE001 - torch's refusal of a pickle with code in it, and the like
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CuecraftError(f"--weights {args.weights}: refused ({type(error).__name__}: {first[:200]}); "
                                "a torch file is read with weights_only=True, so one that holds code is not "
                                "loaded; give .safetensors, or a checkpoint of tensors only") from None
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
    from cuecraft.cli_config import config_source
    from cuecraft.config.reading import compose

    config, _ = compose(config_source(args.config), args.overrides)
    report = fill_cache(config, args.data, workers=args.workers,
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
    add_config_arguments(fill, positional=False, required=True)
    fill.add_argument("--data", metavar="DIR", required=True,
                      help="folder of audio files (searched recursively), or a manifest: .txt (one path per "
                           "line) or .jsonl (objects with a \"path\")")
    fill.add_argument("--workers", metavar="N", type=int, default=1, help="processes per rank (default 1)")
    fill.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    fill.add_argument("--strict", action="store_true", help="exit with status 1 when a file is unreadable")
    fill.set_defaults(run=run_cache_fill, command_name="cache fill")


def run_data_check(args: argparse.Namespace) -> int:
    from cuecraft.data.check import check_data

    report = check_data(args.data, cache_dir=args.cache_dir)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 1 if args.strict and report.unreadable else 0
    print(f"{report.data} ({report.kind}): {report.files} files, {report.usable} usable, "
          f"{len(report.unreadable)} unusable; {report.total_seconds / 3600:.2f} h "
          f"({report.total_seconds:.1f} s) of audio")
    print("sample rates: " + (", ".join(f"{rate} Hz x {n}" for rate, n in report.sample_rates.items()) or "-"))
    print("channels:     " + (", ".join(f"{c} x {n}" for c, n in report.channels.items()) or "-"))
    if report.index_file:
        print(f"index:        {report.index_file}")
    print("\n" + _format_table(["field", "coverage"],
                               [[name, f"{share:.0%}"] for name, share in report.coverage.items()]))
    if report.unreadable:
        print(f"\nunusable ({len(report.unreadable)}):")
        for path, reason in report.unreadable:
            print(f"  {path}: {reason}")
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


def _add_data_parser(commands: argparse._SubParsersAction) -> None:
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


def run_config_validate(args: argparse.Namespace) -> int:
    from cuecraft.cli_config import config_source
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
    from cuecraft.cli_config import config_source
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
    add_config_arguments(validate, positional=True)
    validate.set_defaults(run=run_config_validate, command_name="config validate")
    convert = actions.add_parser(
        "convert", help="write a config in cuecraft's own format",
        description="Read FILE in any supported format and write it in cuecraft's canonical format "
                    "(JSON or YAML by the suffix of --out). Peer fields cuecraft does not use are listed.")
    add_config_arguments(convert, positional=True)
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
    if settings["keep"] is None:  # a preset that keeps every candidate (diffusers')
        settings["keep"] = settings["candidates"]
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
    from cuecraft.pipelines.wav import finish_interrupted_sets

    # runs killed earlier: finish the sets they committed, remove their temporary files
    finish_interrupted_sets(os.path.dirname(os.path.abspath(args.out)))
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


def run_corpus_make(args: argparse.Namespace) -> int:
    from cuecraft.data.corpus import make_corpus

    report = make_corpus(args.out, items=args.items, seconds=args.seconds, seed=args.seed,
                         sample_rate=args.sample_rate, soundfont=args.soundfont, workers=args.workers)
    print(report.summary(), flush=True)
    return 0


def _add_corpus_parser(commands: argparse._SubParsersAction) -> None:
    actions = _add_group(commands, "corpus", "make the labelled corpus of synthesised pieces",
                         "The labelled corpus: short pieces whose tempo, key, metre, instruments, chords, "
                         "melody and description are known exactly.")
    make = actions.add_parser(
        "make",
        help="render a deterministic corpus: a WAV and a JSON sidecar per piece",
        description="Write ITEMS pieces into DIR: piece_NNNNNN.wav (mono, 16-bit) with piece_NNNNNN.json "
                    "(key, bpm, time signature, instruments, drums, chords, melody, beats, description, ...), "
                    "plus corpus.json and manifest.jsonl. Piece k depends only on (seed, k). Complete "
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


def run_train_vocoder(args: argparse.Namespace) -> int:
    from cuecraft.models.representation import MelRepresentation, VocoderOptions
    from cuecraft.models.representation.base import load_representation
    from cuecraft.train.vocoder import train_vocoder

    representation = MelRepresentation() if args.representation is None else load_representation(args.representation)
    if not isinstance(representation, MelRepresentation):
        raise CuecraftError(f"{args.representation}: holds a {representation.kind} representation; "
                            f"a vocoder is trained for a mel representation")
    sizes = {k: v for k, v in (("width", args.width), ("layers", args.layers)) if v is not None}
    if "width" in sizes:
        sizes["intermediate"] = 3 * sizes["width"]

    def log(parts: dict) -> None:
        if not args.no_progress:
            print(f"step {parts['step']}/{parts['steps']}  loss {parts['loss']:.4f}  (stft sc "
                  f"{parts['spectral_convergence']:.4f}, log mag {parts['log_magnitude']:.4f}, mel L1 "
                  f"{parts['mel_l1']:.4f})  {parts['seconds']:.1f} s", file=sys.stderr, flush=True)

    result = train_vocoder(representation, args.data, out_dir=args.out, steps=args.steps, batch_size=args.batch_size,
                           segment_seconds=args.seconds, lr=args.lr, seed=args.seed, log_every=args.log_every,
                           checkpoint_every=args.checkpoint_every, resume=args.resume,
                           vocoder_options=VocoderOptions(**sizes) if sizes else None, log=log)
    start = f", resumed from step {result.resumed_from}" if result.resumed_from is not None else ""
    last = f"; last loss {result.losses[-1][1]:.4f}" if result.losses else ""
    print(f"trained the vocoder to step {result.step}{start} in {result.seconds:.1f} s{last}; "
          f"representation written to {result.out_dir / 'representation'}")
    return 0


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    # ``cuecraft train`` is a group: ``vocoder`` is one action; the model trainer can set the
    # group parser's own options and run (commands.choices["train"]) without touching this one.
    actions = _add_group(commands, "train", "train cuecraft's own models",
                         "Train the models cuecraft learns itself.")
    vocoder = actions.add_parser(
        "vocoder", help="train the neural vocoder of a mel representation on a folder of audio",
        description="Train the ConvNeXt + inverse-STFT vocoder that decodes cuecraft's mel representation "
                    "(multi-resolution STFT + mel L1 losses, AdamW), on random segments of the audio in DATA "
                    "(a folder, searched recursively, or a .jsonl / .txt manifest) at the representation's "
                    "rate. The normalisation statistics are fitted on DATA first when the representation has "
                    "none. Checkpoints go to OUT/checkpoints every --checkpoint-every steps; --resume continues "
                    "the newest one to the same weights as an uninterrupted run. The result is written to "
                    "OUT/representation (load it with cuecraft.models.representation.load_representation).")
    vocoder.add_argument("--data", metavar="DIR", required=True, help="folder of audio files or a manifest")
    vocoder.add_argument("--out", metavar="DIR", required=True, help="run folder (checkpoints, representation)")
    vocoder.add_argument("--representation", metavar="DIR", help="a saved mel representation to train the "
                         "vocoder of (default: 16 kHz, hop 256, 64 mels, n_fft 1024)")
    vocoder.add_argument("--steps", metavar="N", type=int, default=2000, help="total steps (default 2000)")
    vocoder.add_argument("--batch-size", metavar="N", type=int, default=8, help="segments per step (default 8)")
    vocoder.add_argument("--seconds", metavar="S", type=float, default=1.0, help="segment length (default 1.0)")
    vocoder.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate (default 2e-4)")
    vocoder.add_argument("--seed", type=int, default=0, help="initialisation and data order (default 0)")
    vocoder.add_argument("--width", metavar="W", type=int, help="vocoder channels (default 256)")
    vocoder.add_argument("--layers", metavar="N", type=int, help="ConvNeXt blocks (default 8)")
    vocoder.add_argument("--log-every", metavar="N", type=int, default=50, help="steps between log lines (default 50)")
    vocoder.add_argument("--checkpoint-every", metavar="N", type=int, default=500,
                         help="steps between checkpoints (default 500; one is always written at the end)")
    vocoder.add_argument("--resume", action="store_true", help="continue the newest checkpoint in OUT")
    vocoder.add_argument("--no-progress", action="store_true", help="no log lines on stderr")
    vocoder.set_defaults(run=run_train_vocoder, command_name="train vocoder")


def run_train(args: argparse.Namespace) -> int:
    missing = [name for name in ("config", "data", "out") if getattr(args, f"model_{name}") is None]
    if missing:
        raise CuecraftError(f"--{', --'.join(missing)} required: cuecraft train --config MODEL.json --data DIR "
                            "--out runs/NAME (or an action: cuecraft train vocoder ...)")
    from cuecraft.train.loop import train

    _quiet_model_loading()
    result = train(args.model_config, args.model_data, args.model_out, max_steps=args.max_steps,
                   resume=args.model_resume, precision=args.precision, seed=args.model_seed, device=args.device,
                   progress=False if args.model_no_progress else None)
    if result.model_dir is not None:
        last = f"; last loss {result.losses[-1]:.4f}" if result.losses else ""
        state = "stopped (resume with --resume)" if result.interrupted else "trained"
        print(f"{state} to step {result.step} ({result.precision}){last}; model: {result.model_dir}")
    return 0


def _add_model_train_options(commands: argparse._SubParsersAction) -> None:
    """``cuecraft train --config ... --data ... --out ...``: the model trainer, on the ``train`` group
    parser itself (its actions, such as ``vocoder``, keep their own options)."""
    group = commands.choices["train"]
    group.description = ("Train a conditioned diffusion model (cuecraft train --config MODEL.json --data DIR --out "
                         "runs/NAME), or run an action (vocoder). The model config holds conditioning, "
                         "representation, backbone, objective and training blocks (see configs/tiny.json). "
                         "Checkpoints go to OUT/checkpoints (atomically, every training.checkpoint_every steps and "
                         "on SIGINT/SIGTERM); --resume continues the newest to the same result as an "
                         "uninterrupted run; the EMA model is exported to OUT/model; metrics to "
                         "OUT/metrics.jsonl, demos to OUT/demos. Under torchrun --nproc_per_node K (and "
                         "--nnodes/--rdzv-endpoint) it trains with DDP; rank 0 writes.")
    group.add_argument("--config", dest="model_config", metavar="FILE", help="model config, JSON or YAML")
    group.add_argument("--data", dest="model_data", metavar="DIR",
                       help="folder of audio with sidecars, a .jsonl / .txt manifest, or WebDataset shards")
    group.add_argument("--out", dest="model_out", metavar="DIR", help="run directory, e.g. runs/NAME")
    group.add_argument("--max-steps", metavar="N", type=int, help="override training.max_steps")
    group.add_argument("--resume", dest="model_resume", action="store_true",
                       help="continue the newest checkpoint in OUT")
    group.add_argument("--precision", choices=["auto", "float32", "bfloat16", "float16"],
                       help="override training.precision (auto: what this device does well)")
    group.add_argument("--seed", dest="model_seed", metavar="N", type=int, help="override training.seed")
    group.add_argument("--device", metavar="DEVICE", help="cpu or cuda (default: cuda when available)")
    group.add_argument("--no-progress", dest="model_no_progress", action="store_true", help="no progress bar")
    group.set_defaults(run=run_train, command_name="train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cuecraft",
        description="Turn metadata (text, numbers, labels, audio) into the tensors that condition "
                    "audio generative models.",
    )
    parser.add_argument("--version", action="version", version=f"cuecraft {__version__}")
    add_plugin_arguments(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    condition = commands.add_parser(
        "condition",
        help="condition a batch of metadata and print one row per condition",
        description="Build a conditioning stack from a config, condition a batch of metadata and print, "
                    "per condition, its type, fuser roles, embedding shape, share of unmasked "
                    "positions, and the mean and std over unmasked positions. Without options it runs "
                    "the shipped example config on the shipped example metadata.",
    )
    add_config_arguments(condition, positional=False, required=False, default_help="; default: the shipped example")
    condition.add_argument("--metadata", metavar="FILE", help="JSON or YAML list of metadata objects "
                           "(default: the shipped examples); a wav or joint-embed condition may name an audio "
                           "file, relative to this file: \"self_wav\": \"song.flac\" or {\"path\": ..., "
                           "\"seek_time\": S, \"duration\": S}")
    condition.add_argument("--weights", metavar="CKPT", help="load the conditioners' trained weights from a "
                           "stable-audio-tools or AudioCraft checkpoint (.safetensors, .ckpt, .th); strict")
    condition.add_argument("--seed", type=int, default=0, help="seed for weight initialisation and dropout (default 0)")
    condition.add_argument("--train", action="store_true", help="apply the config's training dropouts")
    condition.add_argument("--json", action="store_true", help="print the result as JSON")
    condition.set_defaults(run=run_condition)
    _add_cache_parser(commands)
    _add_config_parser(commands)
    _add_data_parser(commands)
    _add_corpus_parser(commands)
    _add_musicldm_parser(commands)
    _add_train_parser(commands)
    _add_model_train_options(commands)
    return parser


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
        from cuecraft.cli_config import load_plugins

        load_plugins(args.plugin)
        if not args.allow_download:
            return args.run(args)
        from cuecraft.conditioners.pretrained import downloads_allowed

        with downloads_allowed():
            return args.run(args)
    except CuecraftError as error:
        print(f"cuecraft {getattr(args, 'command_name', args.command)}: error: {error}", file=sys.stderr)
        return 2
