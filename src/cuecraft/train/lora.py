"""LoRA adapters on the DiT's attention and MLP projections (with ``peft``), saved apart from the base.

``add_lora(dit, r=..., alpha=..., dropout=..., targets=...)`` injects adapters (``lora_A`` /
``lora_B``, B zero-initialised, so the model starts as the base) into the Linear layers named by
``targets``: ``self_attention`` and ``cross_attention`` (their ``q``, ``kv`` and ``out``
projections) and ``mlp`` (both MLP layers) of every block, and leaves only the adapters trainable.
``save_lora(dit, dir)`` writes ``adapters.safetensors`` and ``lora.json``; ``load_lora(dit, dir)``
puts them on top of a base DiT built from the same config.
"""

from __future__ import annotations

import json
import re
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from cuecraft._files import atomic_write
from cuecraft._optional import require
from cuecraft.errors import CheckpointError, ConfigError

TARGETS = ("self_attention", "cross_attention", "mlp")
FORMAT = "cuecraft.lora"
VERSION = 1
ADAPTERS_FILE = "adapters.safetensors"
CONFIG_FILE = "lora.json"
_PATTERNS = {"self_attention": r"self_attention\.(q|kv|out)", "cross_attention": r"cross_attention\.(q|kv|out)",
             "mlp": r"mlp\.(0|2)"}


def target_pattern(targets: Sequence[str]) -> str:
    """The regular expression (peft matches it against full module names) for ``targets``."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise ConfigError(f"training.lora.targets: expected a non-empty list of {', '.join(TARGETS)}; got {list(targets)}")
    return r".*blocks\.\d+\.(" + "|".join(_PATTERNS[t] for t in targets) + r")$"


def add_lora(dit: nn.Module, *, r: int, alpha: float, dropout: float = 0.0,
             targets: Sequence[str] = TARGETS) -> nn.Module:
    """Inject LoRA adapters into ``dit`` in place (see the module docstring); returns it."""
    peft = require("peft", extra="train", purpose="LoRA fine-tuning")
    pattern = target_pattern(targets)
    present = [name for name, _ in dit.named_modules() if re.fullmatch(pattern, name)]
    if not present:
        raise ConfigError(f"training.lora.targets: {list(targets)} match no layer of this DiT (is "
                          "cross_attention_dim set for cross_attention?)")
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=pattern, bias="none")
    peft.inject_adapter_in_model(config, dit)
    for name, parameter in dit.named_parameters():
        parameter.requires_grad_("lora_" in name)
    dit.lora_settings = {"r": r, "alpha": alpha, "dropout": dropout, "targets": list(targets)}
    return dit


def lora_state(dit: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter weights of ``dit`` by name."""
    return {name: p.detach() for name, p in dit.named_parameters() if "lora_" in name}


def save_lora(dit: nn.Module, directory: str | os.PathLike[str],
              tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the adapters of ``dit`` (or ``tensors``, e.g. their EMA) into ``directory``."""
    safetensors = require("safetensors.torch", extra="text", purpose="saving LoRA adapters")
    settings = getattr(dit, "lora_settings", None)
    if settings is None:
        raise ConfigError("save_lora: this DiT has no LoRA adapters (add_lora first)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = lora_state(dit) if tensors is None else tensors
    with atomic_write(directory / ADAPTERS_FILE) as handle:
        handle.write(safetensors.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}))
    with atomic_write(directory / CONFIG_FILE, "w", encoding="utf-8") as handle:
        json.dump({"format": FORMAT, "version": VERSION, **settings}, handle, indent=2)
    return directory


def load_lora(dit: nn.Module, directory: str | os.PathLike[str]) -> nn.Module:
    """Put the adapters saved in ``directory`` on top of the base ``dit`` (in place); returns it."""
    safetensors = require("safetensors.torch", extra="text", purpose="loading LoRA adapters")
    directory = Path(directory)
    path = directory / CONFIG_FILE
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not a readable LoRA config ({error})") from None
    if settings.get("format") != FORMAT or settings.get("version") != VERSION:
        raise CheckpointError(f"{path}: not a cuecraft LoRA config of version {VERSION}")
    try:
        tensors = safetensors.load_file(str(directory / ADAPTERS_FILE))
    except Exception as error:
        raise CheckpointError(f"{directory / ADAPTERS_FILE}: not a readable safetensors file ({error})") from None
    add_lora(dit, r=settings["r"], alpha=settings["alpha"], dropout=settings["dropout"], targets=settings["targets"])
    expected = {name: p.shape for name, p in dit.named_parameters() if "lora_" in name}
    from cuecraft.train.checkpoint import check_tensors

    check_tensors(directory / ADAPTERS_FILE, tensors, expected)
    parameters = dict(dit.named_parameters())
    with torch.no_grad():
        for name, value in tensors.items():
            parameters[name].copy_(value)
    return dit
