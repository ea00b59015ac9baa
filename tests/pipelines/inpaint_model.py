"""The tiny generation model of ``generation_model.py`` with ``backbone.inpaint`` on (random weights), exported."""

from __future__ import annotations

from pathlib import Path

from tests.pipelines.generation_model import tiny_generation_config

WINDOW_FRAMES = 63  # 1 s at 16 kHz, hop 256: ceil(16000 / 256)
HOP = 256


def export_inpaint_model(directory: Path, **options) -> Path:
    """Build the model with seeded random weights (zero-initialised layers too, so every input
    reaches the output) and export it as ``cuecraft train`` does; returns the model directory."""
    import torch

    from cuecraft.config.model import build_model, parse_model_config
    from cuecraft.train.export import export_model
    from cuecraft.train.module import DiffusionModule, trainable_state

    config = tiny_generation_config(**options)
    config["backbone"]["inpaint"] = True
    torch.manual_seed(0)
    parsed = parse_model_config(config)
    stack, representation, dit, _ = build_model(parsed, seed=0)
    with torch.no_grad():
        for parameter in dit.parameters():
            if parameter.abs().sum() == 0:
                parameter.normal_(0, 0.02)
    weights = trainable_state(DiffusionModule(stack, dit))
    return export_model(directory, config_data=parsed.data, step=0, weights=weights, representation=representation)
