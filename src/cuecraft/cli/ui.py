"""``cuecraft ui``: serve the gradio web UI (generate, see the conditions, MusicLDM) on this machine."""

from __future__ import annotations

import argparse
import os


def run_ui(args: argparse.Namespace) -> int:
    from cuecraft.cli.generate import load_pipeline
    from cuecraft.errors import CuecraftError

    if not 1 <= args.port <= 65535:
        raise CuecraftError(f"--port must be in 1..65535; got {args.port}")
    if args.concurrency < 1:
        raise CuecraftError(f"--concurrency must be at least 1; got {args.concurrency}")
    if args.musicldm is not None and not os.path.isfile(os.path.join(args.musicldm, "model_index.json")):
        raise CuecraftError(f"--musicldm: {args.musicldm} is not a MusicLDM model directory (no model_index.json)")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no telemetry, no version check
    from cuecraft.ui import build_app, launch

    pipe = load_pipeline(args.model, args.device)
    app = build_app(pipe, musicldm_dir=args.musicldm, concurrency=args.concurrency)
    print(f"cuecraft ui: serving {pipe.name} on http://{args.host}:{args.port} (Ctrl+C stops it)", flush=True)
    launch(app, host=args.host, port=args.port)
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    ui = commands.add_parser(
        "ui", help="serve the web UI: generate, hear, see the conditions",
        description="Serve a gradio page on this machine for generation with the built-in model or a model "
                    "trained with `cuecraft train`: prompt, tempo, key, instrument, drums, a melody to upload or "
                    "record, and the sampling settings; each result comes with a player, its spectrogram and "
                    "chroma, and its measured tempo and key beside what was asked. A Conditions tab shows what "
                    "the model receives; --musicldm adds a MusicLDM tab. Bound to 127.0.0.1 unless --host says "
                    "otherwise; nothing is shared and nothing reaches the network.")
    ui.add_argument("--model", default="builtin", metavar="builtin|DIR",
                    help="the built-in model (default) or an exported model directory (runs/NAME/model)")
    ui.add_argument("--musicldm", metavar="DIR", help="also serve a local MusicLDM model (diffusers layout)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    ui.add_argument("--concurrency", type=int, default=1, metavar="N",
                    help="generations running at once; the rest wait in the queue (default 1)")
    ui.add_argument("--device", help="cpu or cuda (default cpu)")
    ui.set_defaults(run=run_ui)
