"""What ``train`` prepares before its first step: the data, the representation, the module.

Each raises a typed error (DatasetError, ConfigError, CheckpointError) naming what does not fit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from torch.utils.data import IterableDataset

from cuecraft.config.model import ModelConfig
from cuecraft.errors import CheckpointError, DatasetError


def open_training_data(data: str | os.PathLike[str], config: ModelConfig, representation: Any, context: Any):
    """The dataset of ``data`` at the representation's rate and channels, in seeded random segments
    of ``training.segment_seconds``; a map-style one must hold at least one global batch."""
    from cuecraft.data import DataOptions, open_dataset
    from cuecraft.data.dataset import is_shards

    training = config.training
    if not is_shards(data) and not Path(data).exists():
        raise DatasetError(f"--data {data}: no such folder or manifest")
    options = DataOptions(sample_rate=representation.sample_rate, channels=representation.channels,
                          segment_seconds=float(training.segment_seconds), seed=training.seed)
    if is_shards(data):
        from cuecraft.data import ShardDataset

        return ShardDataset(data, options, rank=context.rank, world_size=context.world_size)
    dataset = open_dataset(data, options)
    if len(dataset) < training.batch_size:
        raise DatasetError(f"{data}: holds {len(dataset)} items, fewer than one batch (training.batch_size "
                           f"{training.batch_size}); add audio or lower the batch size")
    return dataset


def prepare_representation(representation: Any, config: ModelConfig, dataset: Any, out: Path, resumed: Any,
                           context: Any, say: Callable[[str], None]):
    """The run's representation: the one saved in ``out/representation`` when resuming, else the
    built one with its statistics fitted on the first ``fit_stats_items`` items (the same on every
    rank), saved there by rank 0."""
    from cuecraft.models.representation.base import load_representation

    saved = out / "representation"
    if resumed is not None:
        if not (saved / "representation.json").is_file():
            raise CheckpointError(f"{saved}: missing; a run directory keeps the representation it trained with")
        return load_representation(saved)
    settings = config.representation
    if settings.load is None and settings.fit_stats_items and hasattr(representation, "fit_stats"):
        if isinstance(dataset, IterableDataset):
            items = dataset
        else:
            items = (dataset[i] for i in range(min(len(dataset), settings.fit_stats_items)))
        representation.fit_stats((item for item in items if item is not None), max_items=settings.fit_stats_items)
        say(f"representation: {representation.kind} statistics fitted on up to {settings.fit_stats_items} items")
    if context.is_main:
        representation.save(saved)
    return representation


def prepare_module(module: Any, config: ModelConfig, say: Callable[[str], None]):
    """Load ``training.init_from`` (fine-tuning) and add LoRA adapters when configured."""
    training = config.training
    if training.init_from is not None:
        from cuecraft.train.export import WEIGHTS_FILE, load_weights_into, read_export

        _, weights = read_export(training.init_from)
        load_weights_into(module, weights, Path(training.init_from) / WEIGHTS_FILE)
        say(f"fine-tuning from {training.init_from}")
    if training.lora is not None:
        from cuecraft.train.lora import add_lora

        lora = training.lora
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        add_lora(module.dit, r=lora.r, alpha=float(lora.alpha), dropout=float(lora.dropout), targets=lora.targets)
        say(f"LoRA: r {lora.r}, alpha {lora.alpha} on {', '.join(lora.targets)}; only the adapters train")
    return module


def precision_probe(module: Any, representation: Any, objective: Any, batch: Any, device: Any,
                    inpainting: Any = None):
    """``probe(precision)``: one forward + backward of ``module`` on ``batch`` under the precision's
    autocast, as a training step does it (for ``choose_precision``; ``inpainting``: the
    ``training.inpaint`` settings of a DiT with ``inpaint``, whose known frames the step draws as
    training does, at step 0). It leaves no trace: the global random state is restored and the
    gradients are dropped."""
    import torch

    from cuecraft.train.data import frame_mask
    from cuecraft.train.inpaint import item_known

    batch = batch.to(device)
    with torch.no_grad():
        x0 = representation.encode(batch.wav)  # [B, D, L]
        mask = frame_mask(batch.padding_mask, x0.shape[-1], representation.hop)
    generator = torch.Generator().manual_seed(0)
    t = torch.rand(x0.shape[0], generator=generator).to(device)
    eps = torch.randn(x0.shape, generator=generator).to(device)
    x_t, target = objective.noise(x0, eps, t), objective.target(x0, eps, t)
    known = None if inpainting is None else item_known(batch, 0, 0, x0, mask, inpainting)

    def probe(precision: Any) -> None:
        with torch.random.fork_rng(devices=[]):
            with precision.autocast():
                prediction = module(x_t, t, batch.tokens, mask, known)
            objective.loss(prediction.float(), target, mask, t).backward()
        for parameter in module.parameters():
            parameter.grad = None

    return probe
