"""Tiny exported cuecraft models for the web UI tests (random weights, built once per session).

``full`` has every control the page knows (prompt, bpm, key, instrument, drums, melody);
``bare`` has only bpm, so the page must hide the rest. Both make 1 s clips at 16 kHz.
"""

import copy
import json
from pathlib import Path

import pytest

TINY = Path(__file__).resolve().parents[2] / "src" / "cuecraft" / "config" / "examples" / "tiny.json"
SECONDS = 1.0  # training.segment_seconds of the test models: the longest clip they make


def _config(full: bool) -> dict:
    config = copy.deepcopy(json.loads(TINY.read_text()))
    conditioners = config["conditioning"]["conditioners"]
    if full:
        conditioners += [
            {"id": "instrument", "type": "list", "roles": ["cross", "global"],
             "config": {"options": ["piano", "organ", "flute"]}},
            {"id": "drums", "type": "list", "roles": ["cross", "global"], "config": {"options": ["on", "off"]}},
            {"id": "self_wav", "type": "chroma_stem", "roles": ["input_concat"],
             "config": {"sample_rate": 16000, "radix2_exp": 11, "duration": SECONDS, "stems": "none",
                        "argmax": True}},
        ]
        config["backbone"]["input_concat_dim"] = config["conditioning"]["cond_dim"]
        config["backbone"]["global_dim"] = 4 * config["conditioning"]["cond_dim"]  # bpm, key, instrument, drums
    else:
        config["conditioning"]["conditioners"] = [c for c in conditioners if c["id"] == "bpm"]
        config["conditioning"].pop("default_keys")
        config["backbone"]["global_dim"] = config["conditioning"]["cond_dim"]
    config["training"]["segment_seconds"] = SECONDS
    config["training"].pop("demo_prompts")
    config["training"]["demo_every"] = 0
    return config


def export_tiny(directory: Path, *, full: bool = True) -> Path:
    """Build the tiny model in code and export it as ``cuecraft train`` does."""
    from cuecraft.config.model import build_model, parse_model_config
    from cuecraft.train.export import export_model
    from cuecraft.train.module import DiffusionModule, trainable_state

    data = _config(full)
    config = parse_model_config(data)
    stack, representation, dit, _ = build_model(config, seed=0)
    weights = trainable_state(DiffusionModule(stack, dit))
    return export_model(directory, config_data=config.data, step=0, weights=weights, representation=representation)


@pytest.fixture(scope="session")
def tiny_pipe(tmp_path_factory):
    """A GenerationPipeline over the full tiny model (tests must not modify it)."""
    from cuecraft.pipelines.generate import GenerationPipeline

    return GenerationPipeline.from_dir(export_tiny(tmp_path_factory.mktemp("ui-model") / "model"))


@pytest.fixture(scope="session")
def bare_pipe(tmp_path_factory):
    """A GenerationPipeline over a tiny model whose only control is bpm."""
    from cuecraft.pipelines.generate import GenerationPipeline

    return GenerationPipeline.from_dir(export_tiny(tmp_path_factory.mktemp("ui-bare") / "model", full=False))


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def served(tiny_pipe):
    """The page over the full tiny model, served on 127.0.0.1 for the session; yields its URL."""
    import os

    pytest.importorskip("gradio")
    from cuecraft.ui import build_app, launch

    previous = os.environ.get("GRADIO_ANALYTICS_ENABLED")
    app = build_app(tiny_pipe)
    launch(app, host="127.0.0.1", port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield app.local_url
    finally:
        app.close()
        if previous is None:
            os.environ.pop("GRADIO_ANALYTICS_ENABLED", None)
        else:
            os.environ["GRADIO_ANALYTICS_ENABLED"] = previous
