"""The exported model of a run (``runs/NAME/model``): the EMA weights, the config, the representation.

``model.json`` (format, version, step, the model config), ``model.safetensors`` (the EMA of the
trainable weights: DiT and conditioners; with LoRA, the base's weights are the ``init_from``
model and the EMA adapters are in ``lora/``) and ``representation/``. ``load_trained(dir)``
rebuilds ``(stack, representation, dit, objective)`` from it for generation or fine-tuning.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from cuecraft._bounded import parse_json, read_regular
from cuecraft._files import MAX_VERSIONED_JSON_BYTES, atomic_write
from cuecraft._optional import require
from cuecraft.errors import CheckpointError

FORMAT = "cuecraft.model"
VERSION = 1
MODEL_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"


def export_model(directory: str | os.PathLike[str], *, config_data: dict, step: int,
                 weights: dict[str, torch.Tensor], representation: nn.Module, lora_dit: nn.Module | None = None,
                 lora_weights: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the exported model (see the module docstring); ``weights`` are by DiffusionModule name."""
    safetensors = require("safetensors.torch", extra="text", purpose="exporting models")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    representation.save(directory / "representation")
    if lora_dit is not None:
        from cuecraft.train.lora import save_lora

        save_lora(lora_dit, directory / "lora", lora_weights)
    with atomic_write(directory / WEIGHTS_FILE) as handle:
        handle.write(safetensors.save({k: v.detach().cpu().float().contiguous() for k, v in weights.items()}))
    with atomic_write(directory / MODEL_FILE, "w", encoding="utf-8") as handle:
        json.dump({"format": FORMAT, "version": VERSION, "step": step, "lora": lora_dit is not None,
                   "config": config_data}, handle, indent=2)
    return directory


def read_export(directory: str | os.PathLike[str]) -> tuple[dict, dict[str, torch.Tensor]]:
    """(model.json, weights) of an exported model, checked; a CheckpointError names what is wrong."""
    safetensors = require("safetensors.torch", extra="text", purpose="loading models")
    path = Path(directory) / MODEL_FILE
    try:  # a FIFO, a device or JSON nested thousands deep is refused, never waited on
        info = parse_json(read_regular(path, MAX_VERSIONED_JSON_BYTES), max_depth=128)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable exported model ({error}); expected the 'model' directory "
                              "of a cuecraft training run") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT or info.get("version") != VERSION:
        raise CheckpointError(f"{path}: not a cuecraft model of version {VERSION}")
    if not isinstance(info.get("config"), dict):  # a string would be opened as a path from the working directory
        raise CheckpointError(f"{path}: its 'config' must be the model config (a JSON object); got "
                              f"{type(info.get('config')).__name__}")
    try:
        weights = safetensors.load_file(str(Path(directory) / WEIGHTS_FILE))
    except Exception as error:
        raise CheckpointError(f"{Path(directory) / WEIGHTS_FILE}: not a readable safetensors file ({error})") from None
    return info, weights


def load_weights_into(module: nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Copy exported ``weights`` into ``module`` (a DiffusionModule without adapters), strictly."""
    from cuecraft.train.checkpoint import check_tensors
    from cuecraft.train.module import load_trainable

    expected = {name: p.shape for name, p in module.named_parameters() if name in weights or p.requires_grad}
    check_tensors(source, weights, expected)
    load_trainable(module, weights)


def load_trained(directory: str | os.PathLike[str]):
    """``ModelParts(stack, representation, dit, objective)`` of an exported model, EMA weights loaded
    (and its LoRA adapters applied when it has them), in eval mode."""
    from cuecraft.config.model import build_model, parse_model_config
    from cuecraft.models.representation.base import load_representation
    from cuecraft.train.module import DiffusionModule

    directory = Path(directory)
    info, weights = read_export(directory)
    config = parse_model_config(info["config"])
    stack, _, dit, objective = build_model(config)
    module = DiffusionModule(stack, dit)
    if info.get("lora"):
        base = config.training.init_from
        if base is None:
            raise CheckpointError(f"{directory / MODEL_FILE}: LoRA model without training.init_from (its base)")
        _, base_weights = read_export(base)
        load_weights_into(module, base_weights, Path(base) / WEIGHTS_FILE)
        from cuecraft.train.lora import load_lora

        load_lora(dit, directory / "lora")
    else:
        load_weights_into(module, weights, directory / WEIGHTS_FILE)
    representation = load_representation(directory / "representation")
    module.eval()
    from cuecraft.config.model import ModelParts

    return ModelParts(stack, representation.eval(), dit, objective)


def export_checkpoint(run: str | os.PathLike[str], directory: str | os.PathLike[str],
                      checkpoint: str | os.PathLike[str] | None = None) -> Path:
    """Export the EMA weights of a run's checkpoint (default: its ``latest``) as a model directory,
    as the trainer does at the end: for taking a model from a run that is still going or was stopped."""
    from cuecraft.models.representation.base import load_representation
    from cuecraft.train.checkpoint import load_checkpoint

    run = Path(run)
    found = load_checkpoint(checkpoint if checkpoint is not None else run)
    if (found.state["config"].get("training") or {}).get("lora"):
        raise CheckpointError(f"{found.path}: a LoRA run; let the trainer export it (resume with --max-steps)")
    representation = load_representation(run / "representation")
    return export_model(directory, config_data=found.state["config"], step=int(found.state["step"]),
                        weights=found.ema, representation=representation)
