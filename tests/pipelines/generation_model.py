"""A tiny exported generation model with every control of the built-in one, built in code (random weights)."""

from __future__ import annotations

import copy
from pathlib import Path

KEYS = ["C major", "A minor", "G major", "E minor"]
INSTRUMENTS = ["piano", "marimba", "flute"]


def tiny_generation_config(*, seconds: float = 1.0, melody: bool = True, prompt: bool = True,
                           timing: bool = False) -> dict:
    conditioners = [
        {"id": "bpm", "type": "number", "roles": ["cross", "global"], "config": {"min_val": 60, "max_val": 180}},
        {"id": "key", "type": "list", "roles": ["cross", "global"], "config": {"options": KEYS}},
        {"id": "instrument", "type": "list", "roles": ["cross", "global"], "config": {"options": INSTRUMENTS}},
        {"id": "drums", "type": "list", "roles": ["cross", "global"], "config": {"options": ["on", "off"]}},
    ]
    if prompt:
        conditioners.insert(0, {"id": "prompt", "type": "sentence", "roles": ["cross"],
                                "config": {"output": "tokens", "max_length": 16}})
    if timing:  # stable-audio-tools' seconds_start / seconds_total, global
        conditioners += [{"id": name, "type": "number", "roles": ["global"], "config": {"min_val": 0, "max_val": 10}}
                         for name in ("seconds_start", "seconds_total")]
    if melody:
        conditioners.append({"id": "self_wav", "type": "chroma_stem", "roles": ["input_concat"],
                             "config": {"sample_rate": 16000, "radix2_exp": 11, "duration": seconds,
                                        "stems": "none", "argmax": True}})
    return copy.deepcopy({
        "conditioning": {"cond_dim": 16, "conditioners": conditioners, "dropout": {"cfg": 0.1},
                         "guidance": {"scale": 2.0}},
        "representation": {"type": "mel", "sample_rate": 16000, "n_fft": 512, "hop": 256, "n_mels": 16},
        "backbone": {"type": "dit", "latent_dim": 16, "patch_size": 2, "dim": 32, "depth": 1, "heads": 2,
                     "mlp_ratio": 2.0, "cross_attention_dim": 16, "global_dim": 96 if timing else 64,
                     "input_concat_dim": 16 if melody else 0, "timestep_dim": 32},
        "training": {"segment_seconds": seconds, "warmup_steps": 0, "max_steps": 1},
    })


def export_tiny_model(directory: Path, **options) -> Path:
    """Build the tiny model with seeded random weights (the DiT's output layer too, so it is not all
    zeros) and export it as ``cuecraft train`` does; returns the model directory."""
    import torch

    from cuecraft.config.model import build_model, parse_model_config
    from cuecraft.train.export import export_model
    from cuecraft.train.module import DiffusionModule, trainable_state

    torch.manual_seed(0)
    config = parse_model_config(tiny_generation_config(**options))
    stack, representation, dit, _ = build_model(config)
    with torch.no_grad():
        for parameter in dit.parameters():
            if parameter.abs().sum() == 0:
                parameter.normal_(0, 0.02)
    weights = trainable_state(DiffusionModule(stack, dit))
    return export_model(directory, config_data=config.data, step=0, weights=weights, representation=representation)
