"""``cuecraft eval``: score how well audio follows its conditions (and ``cuecraft eval train-classifier``)."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from cuecraft.errors import CuecraftError, EvaluationInputError

MAX_SECONDS = 120.0  # cuecraft.eval.prompts.MAX_SECONDS (not imported here: --help stays light)


def _progress(enabled: bool):
    """A (stage, done, total) callback: a tqdm bar per stage on stderr, or plain lines without tqdm."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    state: dict = {"stage": None, "bar": None, "last": -1}

    def report(stage: str, done: int, total: int) -> None:
        if stage != state["stage"]:
            if state["bar"] is not None:
                state["bar"].close()
            state.update(stage=stage, bar=None, last=-1)
            if tqdm is not None:
                state["bar"] = tqdm(total=total, desc=stage, unit="step" if "generate" in stage or "floor" in stage
                                    else "item", file=sys.stderr, dynamic_ncols=True)
        if state["bar"] is not None:
            state["bar"].total = total
            state["bar"].n = done
            state["bar"].refresh()
            if done >= total:
                state["bar"].close()
                state["bar"] = None
        elif done * 10 // max(total, 1) != state["last"]:
            state["last"] = done * 10 // max(total, 1)
            print(f"{stage}: {done}/{total}", file=sys.stderr, flush=True)

    return report


def _check(args: argparse.Namespace) -> None:
    problems = []
    if args.limit is not None and args.limit < 1:
        problems.append(f"--limit must be >= 1; got {args.limit}")
    if args.steps < 1:
        problems.append(f"--steps must be >= 1; got {args.steps}")
    if args.batch_size < 1:
        problems.append(f"--batch-size must be >= 1; got {args.batch_size}")
    if args.seconds is not None and not 0 < args.seconds <= MAX_SECONDS:
        problems.append(f"--seconds must be in (0, {MAX_SECONDS:g}]; got {args.seconds}")
    if args.audio is None and args.model is None:
        problems.append("give --model builtin|DIR (generate and score) or --audio DIR (score existing audio)")
    if args.audio is not None and args.model is not None:
        problems.append("give --model or --audio, not both")
    if args.audio is not None and args.prompts is not None:
        problems.append("--prompts is for --model; with --audio the asked values are the sidecars")
    if args.out is None:
        problems.append("--out DIR is required")
    elif Path(args.out).exists() and not Path(args.out).is_dir():
        problems.append(f"--out {args.out} is a file; give a folder")
    if problems:
        raise EvaluationInputError("; ".join(problems))


def _classifier(args: argparse.Namespace):
    try:
        instrument = importlib.import_module("cuecraft.eval.instrument")
    except ImportError:
        if args.classifier is not None:
            raise CuecraftError("--classifier: this cuecraft has no instrument classifier module "
                                "(cuecraft.eval.instrument)") from None
        return None
    if args.classifier is not None:
        return instrument.InstrumentClassifier.load(args.classifier)
    return instrument.builtin_classifier()


def _pipeline(model: str):
    try:
        generate = importlib.import_module("cuecraft.pipelines.generate")
    except ImportError as error:
        raise CuecraftError(f"--model: the generation pipeline (cuecraft.pipelines.generate) is not available "
                            f"({error})") from None
    if model == "builtin":
        return generate.load_builtin()
    if not Path(model).is_dir():
        raise CuecraftError(f"--model {model}: no such folder; give 'builtin' or the model folder of a "
                            "cuecraft training run (runs/NAME/model)")
    return generate.GenerationPipeline.from_dir(model)


def _novelty(args: argparse.Namespace):
    if args.novelty_reference is None:
        return None, 16000
    from cuecraft._bounded import is_folder, is_regular
    from cuecraft.eval.run import load_clips

    folder = Path(args.novelty_reference)
    wavs = sorted(p for p in folder.glob("*.wav") if is_regular(p)) if is_folder(folder) else []
    if not wavs:
        raise CuecraftError(f"--novelty-reference {folder}: no .wav files there")
    return load_clips(wavs, f"--novelty-reference {folder}")  # bounded: each clip and all of them


def run_eval(args: argparse.Namespace) -> int:
    from cuecraft.eval.prompts import load_prompts
    from cuecraft.eval.report import format_table, write_outputs
    from cuecraft.eval.run import Extras, evaluate_audio, evaluate_pipeline

    _check(args)
    progress = _progress(not args.no_progress)
    reference, rate = _novelty(args)
    extras = Extras(classifier=_classifier(args), clap_model=args.clap, novelty_reference=reference,
                    novelty_rate=rate)
    if extras.novelty_reference is not None and extras.classifier is None:
        raise CuecraftError("--novelty-reference needs an instrument classifier (its embedding); give --classifier DIR")
    if args.audio is not None:
        result = evaluate_audio(args.audio, ceiling=not args.no_ceiling, pitch=args.pitch_accuracy, extras=extras,
                                progress=progress)
    else:
        rows = load_prompts(args.prompts)
        if args.limit is not None:
            rows = rows[:args.limit]
        pipe = _pipeline(args.model)
        result = evaluate_pipeline(pipe, rows, steps=args.steps, guidance=args.guidance,
                                   guidance_text=args.guidance_text, seed=args.seed,
                                   batch_size=args.batch_size, seconds=args.seconds, floor=not args.no_floor,
                                   ceiling=not args.no_ceiling, pitch=args.pitch_accuracy, extras=extras,
                                   progress=progress)
        result.report["settings"]["model"] = args.model
        result.report["settings"]["prompts"] = str(args.prompts) if args.prompts else "heldout (shipped)"
    write_outputs(result, args.out)
    print(format_table(result.report))
    ignored = result.report["settings"].get("ignored_sidecar_fields")
    if ignored:
        print(f"note: sidecar fields that are not asked values, ignored: {', '.join(ignored)}")
    print(f"{len(result.rows)} items in {result.report['wall_seconds']:.1f} s; report: {Path(args.out) / 'report.json'}")
    return 0


def _add_train_classifier(actions: argparse._SubParsersAction) -> None:
    try:
        module = importlib.import_module("cuecraft.cli.eval_classifier")
    except ImportError:
        return  # the classifier trainer is not part of this cuecraft
    parser = actions.add_parser("train-classifier", help="train the lead-instrument classifier on a corpus",
                                description="Train the lead-instrument classifier that cuecraft eval uses for "
                                            "instrument accuracy (and its embedding for novelty).")
    module.add_arguments(parser)
    parser.set_defaults(run=module.run, command_name="eval train-classifier")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "eval", help="score how well audio follows its conditions (tempo, key, melody, rhythm, chords, instrument)",
        description="Generate audio for a prompt set with a model and score its adherence to what was asked "
                    "(tempo within 4 % and Mustango's tempo bins, key exact / with relative / MIREX, MusicGen's "
                    "melody chroma cosine, onset and beat F-measure, beat and downbeat F-measure against the asked "
                    "beat grid (rows with bpm and time_signature), chord IOU and mir_eval majmin against the asked "
                    "progression (rows with chords), instrument accuracy with a classifier), beside "
                    "a ceiling (the same metrics on corpus audio with the same asked values) and floors (the model "
                    "with every condition dropped, and with the conditions shuffled across prompts). --audio DIR "
                    "scores existing WAVs with JSON sidecars of the asked values instead. Writes OUT/report.json, "
                    "OUT/audio/NNN.wav + NNN.json, and PNG plots (tempo, key and instrument confusion); prints a "
                    "table.")
    parser.add_argument("--model", metavar="builtin|DIR", help="the built-in model or an exported model folder")
    parser.add_argument("--prompts", metavar="FILE.jsonl", help="prompt rows (default: the shipped held-out set "
                        "of 100: combinations of instrument, key and drums the corpus' training part never has)")
    parser.add_argument("--audio", metavar="DIR", help="score these WAVs (each with NAME.json of asked values: "
                        "prompt, bpm, key, instrument, drums, seconds, melody_seed, melody_path, reference_beats)")
    parser.add_argument("--out", metavar="DIR", help="output folder (created)")
    parser.add_argument("--limit", metavar="N", type=int, help="only the first N prompt rows")
    parser.add_argument("--steps", metavar="N", type=int, default=25, help="sampler steps (default 25)")
    parser.add_argument("--guidance", metavar="G", type=float, help="guidance scale (default: the model's)")
    parser.add_argument("--guidance-text", metavar="G2", type=float,
                        help="guidance scale of the text prompt on top of --guidance, as in cuecraft generate "
                             "(default: the model's)")
    parser.add_argument("--seed", metavar="N", type=int, default=0, help="generation seed (default 0)")
    parser.add_argument("--batch-size", metavar="N", type=int, default=8, help="requests per batch (default 8)")
    parser.add_argument("--seconds", metavar="S", type=float, help="clip length for every row (default: the "
                        "row's, at most the model's longest)")
    parser.add_argument("--no-floor", action="store_true", help="skip the floors (two more generation passes)")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling (rendering corpus pieces)")
    parser.add_argument("--pitch-accuracy", action="store_true", help="also the frame pitch accuracy of the "
                        "melody (librosa.pyin; meaningful for monophonic audio; ~1.5 s per 8 s item)")
    parser.add_argument("--classifier", metavar="DIR", help="instrument classifier (default: the shipped one, "
                        "when there is one)")
    parser.add_argument("--clap", metavar="DIR", help="a CLAP model folder: adds the CLAP text-audio score")
    parser.add_argument("--novelty-reference", metavar="DIR", help="training WAVs: adds SIM_AA novelty")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    parser.set_defaults(run=run_eval, command_name="eval")
    actions = parser.add_subparsers(dest="eval_action", metavar="ACTION")
    _add_train_classifier(actions)
