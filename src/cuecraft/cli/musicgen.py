"""``cuecraft musicgen``: generate music from a text prompt (and a melody) with a MusicGen model."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from cuecraft.cli._shared import _quiet_model_loading, draw_progress
from cuecraft.errors import AudioReadError, GenerationInputError, PretrainedModelNotFoundError

# the pipeline's argument -> the option that sets it
FLAGS = {"prompt": "PROMPT", "negative_prompt": "--negative", "melody": "--melody", "audio_prompt": "--continue",
         "seconds": "--seconds", "guidance": "--guidance", "guidance_text": "--guidance-text",
         "two_step_cfg": "--two-step-cfg", "top_k": "--top-k", "top_p": "--top-p", "temperature": "--temperature",
         "candidates": "--candidates"}


def _as_flags(problem: str) -> str:
    """A pipeline problem line with its argument named as the option that sets it."""
    name, _, rest = problem.partition(":")
    return f"{FLAGS[name]}:{rest}" if name in FLAGS else problem


def _out_problems(out: str) -> list[str]:
    if os.path.isdir(out):
        return [f"--out: {out} is a directory; name a file in it"]
    if not out.lower().endswith(".wav"):
        return [f"--out must name a .wav file; got {out!r}"]
    parent = os.path.dirname(os.path.abspath(out))
    return [] if os.path.isdir(parent) else [f"--out: the directory {parent} does not exist"]


def _read_clip(flag: str, path: str | None, problems: list[str]) -> Any:
    from cuecraft.attributes import WavCondition
    from cuecraft.audio.io import load_audio

    if path is None:
        return None
    try:
        wav, rate = load_audio(path)
    except AudioReadError as error:
        problems.append(f"{flag}: {error}")
        return None
    return WavCondition(wav, rate, path=str(path))


def _checked(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """(the model folder, the options, the melody, the clip to continue), after checking every
    option, the files and the model folder, all problems at once (one line each)."""
    from cuecraft.pipelines.musicgen import MusicGenOptions, read_folder
    from cuecraft.pipelines.musicgen.checks import check_inputs

    problems = _out_problems(args.out)
    melody = _read_clip("--melody", args.melody, problems)
    clip = _read_clip("--continue", args.continue_from, problems)
    options = MusicGenOptions(seconds=args.seconds, guidance=args.guidance, guidance_text=args.guidance_text,
                              two_step_cfg=args.two_step_cfg, top_k=args.top_k, top_p=args.top_p,
                              temperature=args.temperature, candidates=args.candidates)
    folder = folder_error = None
    try:
        folder = read_folder(args.model)
    except PretrainedModelNotFoundError as error:
        folder_error = error
        problems.append(str(error))
    if folder is not None:
        tokenizer = folder.tokenizer

        def count(texts: list[str]) -> list[int]:
            return [len(ids) for ids in tokenizer(list(texts))["input_ids"]]

        try:
            check_inputs(folder.spec, count, prompt=args.prompt, negative_prompt=args.negative, melody=melody,
                         audio_prompt=clip, options=options, generator=None, progress=None)
        except GenerationInputError as error:
            problems += [_as_flags(p) for p in error.problems]
    if folder_error is not None and len(problems) == 1:
        raise folder_error  # the folder alone: its own one-line error
    if problems:
        raise GenerationInputError(problems)
    return folder, options, melody, clip


def run_musicgen(args: argparse.Namespace) -> int:
    import torch

    from cuecraft.pipelines.musicgen import MusicGenPipeline
    from cuecraft.pipelines.musicgen.spectrogram import log_mel
    from cuecraft.pipelines.wav import finish_interrupted_sets, write_wavs
    from cuecraft.train.media import write_spectrogram

    _quiet_model_loading()
    folder, options, melody, clip = _checked(args)
    finish_interrupted_sets(Path(args.out).resolve().parent)  # sets of runs killed earlier
    pipeline = MusicGenPipeline(folder.load_model(), folder.tokenizer, spec=folder.spec)
    device = args.device or "cpu"
    pipeline.to(device)
    generator = torch.Generator(device).manual_seed(args.seed)
    progress = None if args.no_progress else (lambda done, total: draw_progress(sys.stderr, "musicgen", done, total))
    output = pipeline(args.prompt, negative_prompt=args.negative, melody=melody, audio_prompt=clip,
                      seconds=options.seconds, guidance=options.guidance, guidance_text=options.guidance_text,
                      two_step_cfg=options.two_step_cfg, top_k=options.top_k, top_p=options.top_p,
                      temperature=options.temperature, candidates=options.candidates, generator=generator,
                      progress=progress)
    rate = output.sample_rate
    paths = write_wavs(args.out, list(output.audio), rate)
    outputs = []
    for path, audio in zip(paths, output.audio):
        picture = path.with_suffix(".png")
        write_spectrogram(picture, log_mel(audio, rate), title=path.name)
        outputs.append({"path": str(path), "spectrogram": str(picture), "seconds": len(audio) / rate,
                        "sample_rate": rate})
    if args.json:
        asked = {"prompt": args.prompt, "negative": args.negative, "melody": args.melody,
                 "continue": args.continue_from, "seconds": options.seconds}
        settings = {name: getattr(options, name) for name in ("guidance", "guidance_text", "two_step_cfg", "top_k",
                                                             "top_p", "temperature", "candidates")}
        print(json.dumps({"model": str(folder.path), "kind": folder.spec.kind, "layout": folder.layout,
                          "asked": asked, "settings": {**settings, "seed": args.seed},
                          "frames": int(output.tokens.shape[-1]), "timings": output.timings, "outputs": outputs},
                         indent=2))
        return 0
    for out in outputs:
        print(f"wrote {out['path']}  {out['seconds']:.2f} s at {rate} Hz (spectrogram {out['spectrogram']})")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    musicgen = commands.add_parser(
        "musicgen", help="generate music from a text prompt (and a melody) with a MusicGen model",
        description="Generate music from PROMPT with a MusicGen or MusicGen-melody model: a folder in transformers' "
                    "layout (config.json, model.safetensors, the T5 tokenizer) or AudioCraft's (state_dict.bin, "
                    "compression_state_dict.bin), or a hub name in the Hugging Face cache; nothing is downloaded. "
                    "The conditions are cuecraft's (its T5 and chroma conditioners, provider and fuser); the tokens "
                    "are those of transformers' generate for the same settings. Writes 16-bit WAV at the model's "
                    "rate and a spectrogram PNG beside it, atomically; with --candidates N > 1 the files are "
                    "OUT_0.wav .. OUT_{N-1}.wav. A progress bar (one step per token step) goes to stderr. Bad "
                    "options are reported all at once, one line each, before the weights are read.")
    musicgen.add_argument("prompt", metavar="PROMPT", help="what the music should be (\"\" for no text)")
    musicgen.add_argument("--model", metavar="DIR|NAME", required=True,
                          help="a MusicGen model folder, or a hub name in the Hugging Face cache "
                               "(e.g. facebook/musicgen-small, facebook/musicgen-melody)")
    musicgen.add_argument("--out", metavar="FILE.wav", default="musicgen.wav",
                          help="output WAV (default musicgen.wav; several: FILE_0.wav, FILE_1.wav, ...)")
    musicgen.add_argument("--melody", metavar="FILE",
                          help="a recording whose melody (chroma) to follow, looped or cut to the model's 30 s "
                               "as AudioCraft does (MusicGen-melody models)")
    musicgen.add_argument("--continue", dest="continue_from", metavar="FILE",
                          help="a clip to continue: encoded by EnCodec, its tokens start the output")
    musicgen.add_argument("--negative", metavar="TEXT",
                          help="negative prompt: the text of the unconditional branch of guidance")
    musicgen.add_argument("--seconds", type=float, default=10.0, metavar="S",
                          help="length in seconds, exact (with --continue: the seconds added; default 10)")
    musicgen.add_argument("--guidance", type=float, default=3.0, metavar="G",
                          help="classifier-free guidance of all conditions, AudioCraft's cfg_coef (1: off; default 3)")
    musicgen.add_argument("--guidance-text", type=float, default=0.0, metavar="G2",
                          help="double CFG: the text's guidance on top of --guidance, against the melody, in the "
                               "same batched pass (MusicGen-melody with --melody; G2 = G * (B - 1) for AudioCraft's "
                               "cfg_coef_beta B; default 0: off)")
    musicgen.add_argument("--two-step-cfg", action="store_true",
                          help="run the guidance branches as separate passes, each with its own padding "
                               "(AudioCraft's two_step_cfg); default: one batched pass")
    musicgen.add_argument("--top-k", type=int, default=250, metavar="K",
                          help="sample from the K most likely tokens (0: all; 1: greedy; default 250)")
    musicgen.add_argument("--top-p", type=float, default=0.0, metavar="P",
                          help="sample from the most likely tokens up to probability P, after top-k (0: off; "
                               "default 0)")
    musicgen.add_argument("--temperature", type=float, default=1.0, metavar="T",
                          help="sampling temperature (0: greedy; default 1)")
    musicgen.add_argument("--candidates", type=int, default=1, metavar="N", help="clips generated (default 1)")
    musicgen.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
    musicgen.add_argument("--device", help="cpu or cuda (default cpu)")
    musicgen.add_argument("--json", action="store_true",
                          help="print what was asked, the settings and the files as JSON")
    musicgen.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    musicgen.set_defaults(run=run_musicgen)

