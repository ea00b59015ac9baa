"""``cuecraft generate``: conditioned generation with the built-in model or any model ``cuecraft train`` made."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cuecraft.cli._shared import check_output_file, draw_progress
from cuecraft.cli.generate_windows import add_window_arguments, context_of

DEFAULT_PROMPT = "an upbeat electric piano groove"


def _progress(stream):
    return lambda done, total: draw_progress(stream, "generate", done, total)


def load_pipeline(model: str, device: str | None = None):
    """The pipeline of ``--model``: ``builtin`` or an exported model directory."""
    from cuecraft.pipelines.generate import GenerationPipeline, load_builtin

    device = device or "cpu"
    return load_builtin(device=device) if model == "builtin" else GenerationPipeline.from_dir(model, device=device)


def run_generate(args: argparse.Namespace) -> int:
    from cuecraft.pipelines.generate import GenerationRequest, clip_frames
    from cuecraft.pipelines.wav import finish_interrupted_sets, numbered_paths, write_wavs
    from cuecraft.train.media import spectrogram_png

    check_output_file(args.out, (".wav",))
    context = context_of(args)  # --continue / --inpaint FILE (--region)
    finish_interrupted_sets(Path(args.out).resolve().parent)
    pipe = load_pipeline(args.model, args.device)
    drums = None if args.drums is None else args.drums == "on"
    prompt = args.prompt if args.prompt is not None or "prompt" not in pipe.controls else DEFAULT_PROMPT
    request = GenerationRequest(prompt=prompt, negative_prompt=args.negative, bpm=args.bpm, key=args.key,
                                instrument=args.instrument, drums=drums, melody=args.melody, seconds=args.seconds,
                                time_signature=args.time_signature, downbeat_offset=args.downbeat_offset,
                                chords=args.chords, context=context, overlap=args.overlap)
    [result] = pipe.generate([request], steps=args.steps, guidance=args.guidance, guidance_text=args.guidance_text,
                             sampler=args.sampler, seed=args.seed, candidates=args.candidates, keep=args.keep,
                             progress=None if args.no_progress else _progress(sys.stderr),
                             measured=args.measure or args.json)  # librosa's beat tracker: seconds per process
    pictures = [{".png": spectrogram_png(clip_frames(pipe.representation, clip), title=path.name)}
                for path, clip in zip(numbered_paths(args.out, len(result.audio)), result.audio)]
    paths = write_wavs(args.out, result.audio, result.sample_rate, companions=pictures)  # WAVs + PNGs: one set
    outputs = [{"path": str(p), "spectrogram": str(p.with_suffix(".png")), "seconds": len(c) / result.sample_rate,
                "measured": m, "score": s}
               for p, c, m, s in zip(paths, result.audio, result.measured, result.scores)]
    if args.json:
        print(json.dumps({"model": pipe.name, "asked": result.asked,
                          "settings": {"steps": args.steps,
                                       "guidance": pipe.stack.guidance_scale if args.guidance is None
                                       else args.guidance,
                                       "guidance_text": pipe.stack.guidance_group_scale if args.guidance_text is None
                                       else args.guidance_text,
                                       "guidance_group": list(pipe.stack.guidance_group_conditions()),
                                       "sampler": args.sampler, "seed": args.seed, "candidates": args.candidates},
                          "outputs": outputs}, indent=2))
        return 0
    asked = ", ".join(f"{k} {v}" for k, v in result.asked.items())
    print(f"asked: {asked}")
    for out in outputs:
        m = out["measured"]
        found = f", measured tempo {m.get('tempo')} bpm, key {m.get('key')}" if args.measure else ""
        print(f"{out['path']}: {out['seconds']:.2f} s{found} (spectrogram {out['spectrogram']})")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    generate = commands.add_parser(
        "generate",
        help="generate audio that follows a prompt, tempo, key, instrument, drums, melody, metre and chords",
        description="Generate audio with the built-in model (offline, on a CPU) or a model trained with "
                    "`cuecraft train`. Every control is optional; a value the model does not know is an error "
                    "listing what it knows. Writes OUT (and OUT_1.wav ... with --keep > 1) and a spectrogram PNG "
                    "beside each.",
    )
    generate.add_argument("prompt", nargs="?", default=None,
                          help=f"text prompt (default: {DEFAULT_PROMPT!r} for a model with a prompt; none otherwise)")
    generate.add_argument("--model", default="builtin", metavar="builtin|DIR",
                          help="the built-in model (default) or an exported model directory (runs/NAME/model)")
    generate.add_argument("--negative", metavar="TEXT", help="negative prompt (the guidance branch)")
    generate.add_argument("--bpm", type=float, help="tempo in beats per minute")
    generate.add_argument("--key", help='key, e.g. "A minor", "F# major", "Bbm"')
    generate.add_argument("--instrument", help="lead instrument, e.g. piano")
    generate.add_argument("--drums", choices=["on", "off"], help="drums on or off")
    generate.add_argument("--melody", metavar="FILE", help="a recording whose melody (chroma) to follow")
    generate.add_argument("--time-signature", metavar="N/D",
                          help='metre, e.g. "4/4", "3/4", "6/8" (with --bpm; models with a beats or chords '
                               'conditioner)')
    generate.add_argument("--downbeat-offset", type=float, metavar="S",
                          help="seconds into the clip where the first bar starts (with --bpm; beats / chords models)")
    generate.add_argument("--chords", metavar="TEXT",
                          help='chord progression: one chord per bar at --bpm, repeated ("Am F C G"), or timed in '
                               'seconds ("Am@0 F@2 C@4 G@6") (models with a chords conditioner)')
    generate.add_argument("--seconds", type=float,
                          help="length in seconds (default: the model's training length); longer, for a model "
                               "trained with inpaint, by windows that continue each other; with --continue: the "
                               "seconds added")
    add_window_arguments(generate)  # --continue, --inpaint, --region, --overlap
    generate.add_argument("--steps", type=int, default=25, help="sampler steps (default 25)")
    generate.add_argument("--guidance", type=float, metavar="G",
                          help="classifier-free guidance scale of all conditions (default: the model's)")
    generate.add_argument("--guidance-text", type=float, metavar="G2",
                          help="guidance scale of the text prompt on top of --guidance, in the same batched pass "
                               "(the conditions of the model config's guidance.group, else its text encoders); "
                               "0 turns it off (default: the model's guidance.group.scale, else 0)")
    generate.add_argument("--sampler", default="dpmpp_2m", choices=["euler", "heun", "dpmpp_2m", "ddim"],
                          help="sampler (default dpmpp_2m)")
    generate.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    generate.add_argument("--candidates", type=int, default=1, metavar="N",
                          help="sample N candidates and keep the ones that best follow tempo and key")
    generate.add_argument("--keep", type=int, default=1, metavar="K", help="candidates kept, best first (default 1)")
    generate.add_argument("--out", default="generated.wav", metavar="FILE.wav", help="output WAV (default generated.wav)")
    generate.add_argument("--device", help="cpu or cuda (default cpu)")
    generate.add_argument("--measure", action="store_true",
                          help="measure each output's tempo and key and print them (librosa's beat tracker: a few "
                               "seconds more in a new process; --json and --candidates > 1 always measure)")
    generate.add_argument("--json", action="store_true", help="print what was asked and measured as JSON")
    generate.add_argument("--no-progress", action="store_true", help="no progress bar")
    generate.set_defaults(run=run_generate)
