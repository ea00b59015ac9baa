"""Loading and holding pretrained encoders: offline resolution, freezing, autocast, an LRU.

Pretrained weights come from a local directory or the user's Hugging Face cache. cuecraft never
downloads unless asked (``allow_download=True``), and then first checks in a few seconds that the
hub answers, so a machine without network fails fast with an error that says what to do.
"""

from __future__ import annotations

import os
import socket
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import torch
from torch import nn

from cuecraft.errors import ConfigError, PretrainedModelNotFoundError

M = TypeVar("M")
AUTOCAST_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_PROBE_TIMEOUT_S = 3.0


def _looks_like_path(name: str) -> bool:
    """Hub names are ``name`` or ``owner/name``; anything else is meant as a path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _hub_reachable(timeout: float = _PROBE_TIMEOUT_S) -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def load_pretrained(load: Callable[..., M], name_or_path: str, *, what: str, allow_download: bool = False) -> M:
    """Call ``load(source, local_files_only=...)`` (a transformers ``from_pretrained``) offline-first.

    ``name_or_path`` is a local directory or a hub name. A hub name is looked up in the Hugging
    Face cache only, unless ``allow_download`` is set and the hub answers within seconds.
    Raises PretrainedModelNotFoundError naming the model and how to provide it.
    """
    if not isinstance(name_or_path, str) or not name_or_path:
        raise ConfigError(f"{what}: expected a model name or directory; got {name_or_path!r}")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        try:
            return load(str(path), local_files_only=True)
        except (OSError, ValueError) as error:
            raise PretrainedModelNotFoundError(
                f"{what}: the directory {path} does not hold a complete model ({error})"
            ) from None
    if _looks_like_path(name_or_path):
        raise PretrainedModelNotFoundError(f"{what}: no such directory: {path}")
    try:
        return load(name_or_path, local_files_only=True)
    except (OSError, ValueError):
        pass
    how = (f"give a local directory holding the model, or put it in the Hugging Face cache first "
           f"(`hf download {name_or_path}` on a machine with network)")
    if not allow_download:
        raise PretrainedModelNotFoundError(
            f"{what}: model {name_or_path!r} is not in the Hugging Face cache and downloads are off. "
            f"To fix: {how}, or pass allow_download=True."
        ) from None
    if not _hub_reachable():
        raise PretrainedModelNotFoundError(
            f"{what}: model {name_or_path!r} is not in the Hugging Face cache and the hub cannot be "
            f"reached from this machine. To fix: {how}."
        )
    return load(name_or_path, local_files_only=False)


def check_autocast_dtype(value: Any) -> list[str]:
    if value not in AUTOCAST_DTYPES:
        return [f"autocast_dtype: expected one of {', '.join(AUTOCAST_DTYPES)}; got {value!r}"]
    return []


def autocast(device: torch.device, dtype_name: str) -> torch.autocast:
    """An autocast context running matmuls in ``dtype_name`` (off for float32)."""
    dtype = AUTOCAST_DTYPES[dtype_name]
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype != torch.float32)


def exclude_from_state_dict(module: nn.Module, attribute: str) -> None:
    """Leave ``module.<attribute>`` (a frozen encoder) out of ``module``'s state dict.

    The encoder stays a registered submodule, so ``.to(device)`` and dtype changes move it, but
    checkpoints stay small, and loading a state dict without its keys is not an error.
    """
    marker = attribute + "."
    prefixes: list[str] = []

    def drop(_module: nn.Module, state_dict: dict[str, Any], prefix: str, _metadata: Any) -> None:
        for key in [k for k in state_dict if k.startswith(prefix + marker)]:
            del state_dict[key]

    def remember_prefix(_module: nn.Module, _state_dict: Any, prefix: str, *_: Any) -> None:
        prefixes.append(prefix + marker)

    def forgive_missing(_module: nn.Module, incompatible: Any) -> None:
        incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not k.startswith(tuple(prefixes))]
        prefixes.clear()

    module.register_state_dict_post_hook(drop)
    module.register_load_state_dict_pre_hook(remember_prefix)
    module.register_load_state_dict_post_hook(forgive_missing)


def freeze(module: nn.Module, *attributes: str) -> None:
    """Freeze pretrained encoders ``module.<attribute>``: no gradient, eval mode, and left out of
    ``module``'s state dict (see ``exclude_from_state_dict``). The owner's ``train()`` must keep
    them in eval mode."""
    for attribute in attributes:
        encoder = getattr(module, attribute)
        encoder.requires_grad_(False)
        encoder.eval()
        exclude_from_state_dict(module, attribute)


class EmbeddingLRU:
    """A bounded least-recently-used map from keys to encoder outputs (tensors)."""

    def __init__(self, max_items: int):
        self.max_items = max_items
        self._items: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> torch.Tensor | None:
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: Hashable, value: torch.Tensor) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
