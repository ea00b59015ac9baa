"""A tiny exported generation model with ``beats`` and ``chords`` conditioners, built in code (random weights).

The conditioners have ids of their own (``rhythm``, ``harmony``): the pipeline finds them by their
type. Both feed the DiT's input channels raw (6 + 24), at 25 frames per second over the model's
4 s clips (T = 100). With ``bpm_number`` the model also has a global ``number`` bpm over 60-180.
"""

from __future__ import annotations

import copy
from pathlib import Path

SECONDS = 4.0  # training.segment_seconds and the conditioners' duration
FRAME_RATE = 25  # frames per second of both conditions: T = 100


def time_generation_config(*, bpm_number: bool = False) -> dict:
    frames = {"frame_rate": FRAME_RATE, "duration": SECONDS}
    conditioners = [
        {"id": "rhythm", "type": "beats", "roles": ["input_concat"], "config": dict(frames)},
        {"id": "harmony", "type": "chords", "roles": ["input_concat"], "config": dict(frames)},
    ]
    if bpm_number:
        conditioners.insert(0, {"id": "bpm", "type": "number", "roles": ["global"],
                                "config": {"min_val": 60, "max_val": 180}})
    return copy.deepcopy({
        "conditioning": {"cond_dim": 16, "conditioners": conditioners, "dropout": {"cfg": 0.1},
                         "guidance": {"scale": 2.0}},
        "representation": {"type": "mel", "sample_rate": 16000, "n_fft": 512, "hop": 256, "n_mels": 16},
        "backbone": {"type": "dit", "latent_dim": 16, "patch_size": 2, "dim": 32, "depth": 1, "heads": 2,
                     "mlp_ratio": 2.0, "cross_attention_dim": None, "global_dim": 16 if bpm_number else None,
                     "input_concat_dim": 6 + 24, "timestep_dim": 32},
        "training": {"segment_seconds": SECONDS, "warmup_steps": 0, "max_steps": 1},
    })


def export_time_model(directory: Path, *, bpm_number: bool = False) -> Path:
    """Build the model with seeded random weights (zero-initialised layers too, so the conditions
    reach the output) and export it as ``cuecraft train`` does; returns the model directory."""
    import torch

    from cuecraft.config.model import build_model, parse_model_config
    from cuecraft.train.export import export_model
    from cuecraft.train.module import DiffusionModule, trainable_state

    torch.manual_seed(0)
    config = parse_model_config(time_generation_config(bpm_number=bpm_number))
    stack, representation, dit, _ = build_model(config, seed=0)
    with torch.no_grad():
        for parameter in dit.parameters():
            if parameter.abs().sum() == 0:
                parameter.normal_(0, 0.02)
    weights = trainable_state(DiffusionModule(stack, dit))
    return export_model(directory, config_data=config.data, step=0, weights=weights, representation=representation)
