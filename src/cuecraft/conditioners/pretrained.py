"""Loading and holding pretrained encoders: offline resolution, freezing, autocast, an LRU.

Pretrained weights come from a local directory or the user's Hugging Face cache. cuecraft never
downloads unless asked (``allow_download=True``), and then first checks in a few seconds that the
hub answers, so a machine without network fails fast with an error that says what to do.
"""

from __future__ import annotations

import contextvars
import os
import socket
from contextlib import contextmanager
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import torch
from torch import nn

from cuecraft._text import short_repr
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


MAX_NAME_CHARS = 1024  # a hub name or a model directory
# What a local model folder must hold, by what is loaded from it (one file of each group).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "vocab.json", "vocab.txt", "sentencepiece.bpe.model",
                   "tokenizer.model")
# Tokenizers of bytes or characters: no vocabulary file by design; a folder whose tokenizer_config.json
# or config.json names one of them needs no file of TOKENIZER_FILES.
VOCABULARY_FREE_TOKENIZERS = ("ByT5Tokenizer", "CanineTokenizer")
# Errors a from_pretrained raises for a file it refuses or cannot parse (a pickle with code in it
# is refused by weights_only loading as an UnpicklingError).
LOAD_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, EOFError, RuntimeError)


def _load_errors() -> tuple[type[BaseException], ...]:
    import pickle

    return (*LOAD_ERRORS, pickle.UnpicklingError)


def check_model_folder(path: Path, what: str, *, tokenizer: bool) -> None:
    """Refuse a local model folder that lacks a file its loader needs, naming the missing file.

    ``tokenizer``: the folder is read by a tokenizer (it needs one of TOKENIZER_FILES); else by
    a model (it needs config.json and one of WEIGHT_FILES). Without this check transformers builds
    an empty tokenizer (every word unknown) from a folder that has none.
    """
    def has(names: tuple[str, ...]) -> bool:
        return any((path / name).is_file() for name in names)

    if tokenizer:
        if not has(TOKENIZER_FILES) and not _vocabulary_free(path):
            raise PretrainedModelNotFoundError(
                f"{what}: the directory {path} does not hold a complete model: no tokenizer file (none of "
                f"{', '.join(TOKENIZER_FILES)}); "
                "copy the tokenizer files of the model into it (e.g. from `hf download NAME --local-dir DIR`)")
        return
    missing = [] if (path / "config.json").is_file() else ["config.json"]
    if not has(WEIGHT_FILES):
        missing.append(f"weights (one of {', '.join(WEIGHT_FILES)})")
    if missing:
        raise PretrainedModelNotFoundError(f"{what}: the directory {path} does not hold a complete model: "
                                           f"no {' and no '.join(missing)}")


def _vocabulary_free(path: Path) -> bool:
    """Whether the folder's tokenizer_config.json or config.json names a tokenizer without a
    vocabulary file (VOCABULARY_FREE_TOKENIZERS, such as ByT5's, which reads UTF-8 bytes)."""
    from cuecraft._bounded import parse_json, read_regular

    for name in ("tokenizer_config.json", "config.json"):
        try:
            data = parse_json(read_regular(path / name, 1 << 20))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("tokenizer_class") in VOCABULARY_FREE_TOKENIZERS:
            return True
    return False


_DOWNLOADS: contextvars.ContextVar[bool] = contextvars.ContextVar("cuecraft_allow_download", default=False)


@contextmanager
def downloads_allowed(allowed: bool = True) -> Iterator[None]:
    """Within this block every ``load_pretrained`` may download (as with ``allow_download=True``);
    what ``cuecraft --allow-download`` sets."""
    token = _DOWNLOADS.set(allowed)
    try:
        yield
    finally:
        _DOWNLOADS.reset(token)


def _quietly(load: Callable[..., M]) -> Callable[..., M]:
    def quiet_load(*args: Any, **kwargs: Any) -> M:
        with _no_progress_bars():
            return load(*args, **kwargs)

    return quiet_load


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long for the file system, and the like
        return False


def _cached_snapshot(name: str) -> Path | None:
    """The folder of hub model ``name`` in the Hugging Face cache
    (``models--ORG--NAME/snapshots/HASH``), or None where it is not cached (or not a hub name)."""
    try:
        import huggingface_hub
    except ImportError:
        return None
    try:
        return Path(huggingface_hub.snapshot_download(repo_id=name, local_files_only=True))
    except Exception:  # noqa: BLE001 -- not cached, not a valid repo id, an unreadable cache: load decides
        return None


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers' progress bars ("Loading weights") off for one load, then as they were: the
    caller's logging state is left as it found it."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        transformers_logging = None
    enabled = transformers_logging is not None and transformers_logging.is_progress_bar_enabled()
    if enabled:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


def load_pretrained(load: Callable[..., M], name_or_path: str, *, what: str, allow_download: bool = False) -> M:
    """Call ``load(source, local_files_only=...)`` (a transformers ``from_pretrained``) offline-first.

    ``name_or_path`` is a local directory or a hub name. A hub name is looked up in the Hugging
    Face cache only, unless ``allow_download`` is set and the hub answers within seconds.
    Raises PretrainedModelNotFoundError naming the model and how to provide it.
    """
    if not isinstance(name_or_path, str) or not name_or_path:
        raise ConfigError(f"{what}: expected a model name or directory; got {short_repr(name_or_path)}")
    if len(name_or_path) > MAX_NAME_CHARS or "\0" in name_or_path:
        raise ConfigError(f"{what}: a model name or directory of {len(name_or_path):,} characters "
                          f"({short_repr(name_or_path)}); at most {MAX_NAME_CHARS:,}, without NUL")
    path = Path(name_or_path).expanduser()
    tokenizer = "Tokenizer" in getattr(load, "__qualname__", "") or "Processor" in getattr(load, "__qualname__", "")
    load = _quietly(load)  # no "Loading weights" bar on stderr at every load
    if _is_dir(path):
        check_model_folder(path, what, tokenizer=tokenizer)
        try:
            return load(str(path), local_files_only=True, trust_remote_code=False)
        except _load_errors() as error:
            raise PretrainedModelNotFoundError(
                f"{what}: the directory {path} does not hold a complete, loadable model "
                f"({type(error).__name__}: {short_repr(str(error), 300)[1:-1]})"
            ) from None
    if _looks_like_path(name_or_path):
        if path.is_file() or path.suffix in (".ckpt", ".pt", ".pth", ".bin", ".safetensors"):
            raise PretrainedModelNotFoundError(
                f"{what}: {path} is a file{'' if path.is_file() else ' name'} (a checkpoint such as laion_clap's "
                ".ckpt / .pt), not a model directory; cuecraft loads transformers models: convert the checkpoint "
                "to a transformers ClapModel directory (transformers' "
                "models/clap/convert_clap_original_pytorch_to_hf.py --checkpoint_path FILE "
                "--pytorch_dump_folder_path DIR, then save the ClapProcessor of laion/clap-htsat-unfused beside "
                "it) and name that directory, or name a hub model such as laion/larger_clap_music")
        raise PretrainedModelNotFoundError(f"{what}: no such directory: {path}")
    snapshot = _cached_snapshot(name_or_path)
    incomplete = False
    if snapshot is not None:  # in the cache: it must be as whole as a local folder
        try:
            check_model_folder(snapshot, f"{what} ({name_or_path} in the Hugging Face cache)", tokenizer=tokenizer)
        except PretrainedModelNotFoundError:
            if not (allow_download or _DOWNLOADS.get()):
                raise
            incomplete = True  # the download below fetches what is missing
    if not incomplete:
        try:
            return load(name_or_path, local_files_only=True, trust_remote_code=False)
        except _load_errors():
            pass
    how = (f"give a local directory holding the model, or put it in the Hugging Face cache first "
           f"(`hf download {name_or_path}` on a machine with network)")
    if not (allow_download or _DOWNLOADS.get()):
        raise PretrainedModelNotFoundError(
            f"{what}: model {name_or_path!r} is not in the Hugging Face cache and downloads are off. "
            f"To fix: {how}, or allow downloads (allow_download=True; on the command line --allow-download)."
        ) from None
    if not _hub_reachable():
        raise PretrainedModelNotFoundError(
            f"{what}: model {name_or_path!r} is not in the Hugging Face cache and the hub cannot be "
            f"reached from this machine. To fix: {how}."
        )
    return load(name_or_path, local_files_only=False, trust_remote_code=False)


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
