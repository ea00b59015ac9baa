"""``cuecraft train`` (the model trainer) and ``cuecraft train vocoder``."""

from __future__ import annotations

import argparse
import sys

from cuecraft.cli._shared import _add_group, _quiet_model_loading
from cuecraft.errors import CuecraftError


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


def add_parser(commands: argparse._SubParsersAction) -> None:
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
    return 130 if result.interrupted else 0  # a stopped run is not a finished one (128 + SIGINT, as a shell says)


def add_model_train_options(commands: argparse._SubParsersAction) -> None:
    """``cuecraft train --config ... --data ... --out ...``: the model trainer, on the ``train`` group
    parser itself (its actions, such as ``vocoder``, keep their own options)."""
    group = commands.choices["train"]
    group.description = ("Train a conditioned diffusion model (cuecraft train --config MODEL.json --data DIR --out "
                         "runs/NAME), or run an action (vocoder). The model config holds conditioning, "
                         "representation, backbone, objective and training blocks (see configs/tiny.json). "
                         "Checkpoints go to OUT/checkpoints (atomically, every training.checkpoint_every steps and "
                         "on SIGINT/SIGTERM, after which the command exits with status 130); --resume continues the newest to the same result as an "
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
