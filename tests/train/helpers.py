"""Shared pieces of the trainer tests: a small corpus and a fast model config (no text encoder)."""

from __future__ import annotations

import copy
from contextlib import contextmanager

import torch

NAMES = [f"piece_{i:06d}" for i in range(8)]


def make_data(path, items: int = 4, seconds: float = 2.0):
    from cuecraft.data.corpus import make_corpus

    make_corpus(path, items=items, seconds=seconds, seed=0, sample_rate=16000)
    return path


def fast_config(**training) -> dict:
    """A model config that trains fast on a CPU: item-name and bpm conditions, a 2-block DiT."""
    config = {
        "conditioning": {
            "cond_dim": 32,
            "conditioners": [
                {"id": "name", "type": "list", "roles": ["cross", "global"], "config": {"options": NAMES}},
                {"id": "bpm", "type": "number", "roles": ["cross"], "config": {"min_val": 40, "max_val": 240}},
            ],
            "dropout": {"cfg": 0.1},
        },
        "representation": {"type": "mel", "sample_rate": 16000, "n_fft": 512, "hop": 256, "n_mels": 16},
        "backbone": {"type": "dit", "latent_dim": 16, "dim": 64, "depth": 2, "heads": 4, "mlp_ratio": 2.0,
                     "cross_attention_dim": 32, "global_dim": 32, "timestep_dim": 64},
        "objective": {"type": "v", "timesteps": "uniform"},
        "training": {"batch_size": 4, "lr": 2e-3, "warmup_steps": 2, "max_steps": 8, "ema_decay": 0.9,
                     "checkpoint_every": 0, "log_every": 2, "segment_seconds": 2.0, "precision": "float32",
                     "seed": 0},
    }
    config["training"].update(training)
    return copy.deepcopy(config)


@contextmanager
def one_thread():
    """One intra-op thread: on a shared 2-core machine, OpenMP spinning makes more threads far slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def quiet(message: str) -> None:
    pass
