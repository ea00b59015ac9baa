"""``cuecraft musicldm``: generate music from a text prompt with a local MusicLDM model."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import TextIO

from cuecraft.cli._shared import _quiet_model_loading, draw_progress
from cuecraft.errors import CuecraftError


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
        draw_progress(stream, "musicldm", i + 1, len(pipeline.scheduler.timesteps))
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


def add_parser(commands: argparse._SubParsersAction) -> None:
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
