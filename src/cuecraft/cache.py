"""``EmbeddingCache``: expensive per-audio features, kept on disk and in a bounded memory layer.

A conditioner whose features cost much to compute (chroma after stem separation, a CLAP audio
embedding) asks ``cache.get_or_compute(audio, compute)``. Nothing stale or foreign is ever served:

- The key is a SHA-256 over the conditioner's type, its settings that shape the features, the
  cache format version and the audio's identity: ``file_identity`` (real path, size and
  modification time in ns) or ``content_identity`` (a BLAKE2b hash of the samples, for audio
  held in memory). Changing a setting or touching a file gives another key.
- An entry is one self-describing file, ``<root>/<key[:2]>/<key>.emb``::

      b"CUEC" | format version (uint8) | header length (uint32, little-endian) | header | payload

  The header is UTF-8 JSON: the entry's key, conditioner type, dtype, shape, payload byte count
  and a BLAKE2b checksum of key, dtype, shape and payload. A reader checks all of it (a torn, truncated, corrupt
  or misplaced file fails), reports it as a ``CacheWarning`` and recomputes the entry.
- Writes are atomic: a temporary file in the entry's folder, flushed and fsynced, then
  ``os.replace``. Several processes may fill and read the same cache at once without locks: a
  reader sees a whole old entry or a whole new one (both right: equal keys, equal features).
- The memory layer is an LRU bounded by bytes (``max_memory_bytes``; 0 turns it off).

Entries are tensors of any shape (chroma: float32 [F, N]); callers get a copy they may modify.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from cuecraft._files import atomic_write
from cuecraft.audio.io import AudioReadError
from cuecraft.errors import CacheWarning, ConfigError

FORMAT_VERSION = 2  # 2: the checksum covers key, dtype and shape as well as the payload
MAGIC = b"CUEC"
_PREAMBLE = struct.Struct("<4sBI")  # magic, format version, header length
_SUFFIX = ".emb"
_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
    torch.uint8, torch.bool)}
DEFAULT_MEMORY_BYTES = 64 * 2**20


class CorruptEntryError(Exception):
    """Internal: why an entry file cannot be used."""


def file_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The identity of an audio file: its real path, size and modification time (ns).

    A missing or unreadable path is an AudioReadError.
    """
    try:
        real = os.path.realpath(path)
        stat = os.stat(real)
    except OSError as error:
        raise AudioReadError(f"{os.fspath(path)}: cannot read audio ({error.strerror or error})") from None
    return {"path": real, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def content_identity(wav: torch.Tensor, sample_rate: int) -> dict[str, Any]:
    """The identity of audio held in memory: a BLAKE2b hash of its float32 samples [C, T] or [T],
    its shape and its sample rate."""
    samples = wav.detach().to("cpu", torch.float32).contiguous()
    digest = hashlib.blake2b(samples.numpy().tobytes(), digest_size=20).hexdigest()
    return {"blake2b": digest, "shape": list(samples.shape), "sample_rate": int(sample_rate)}


def _checksum(key: str, dtype_name: str, shape: list[int], payload: bytes | memoryview) -> str:
    """BLAKE2b over what the entry claims to be (key, dtype, shape) and its payload, so a header
    damaged into another valid-looking one is caught too."""
    digest = hashlib.blake2b(json.dumps([key, dtype_name, shape]).encode("utf-8"), digest_size=20)
    digest.update(payload)
    return digest.hexdigest()


def encode_entry(key: str, conditioner: str, tensor: torch.Tensor) -> bytes:
    """The bytes of an entry file holding ``tensor`` under ``key``."""
    dtype_name = str(tensor.dtype).removeprefix("torch.")
    if dtype_name not in _DTYPES:
        raise TypeError(f"a cache entry holds one of {sorted(_DTYPES)}; got {tensor.dtype}")
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    payload = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
    header = json.dumps({
        "key": key, "conditioner": conditioner, "dtype": dtype_name, "shape": list(tensor.shape),
        "byteorder": "little", "nbytes": len(payload),
        "blake2b": _checksum(key, dtype_name, list(tensor.shape), payload),
    }, sort_keys=True).encode("utf-8")
    return _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(header)) + header + payload


def decode_entry(data: bytes, key: str) -> torch.Tensor:
    """The tensor in an entry file's bytes, after checking everything; CorruptEntryError if not."""
    if len(data) < _PREAMBLE.size:
        raise CorruptEntryError(f"truncated ({len(data)} bytes, not even a preamble)")
    magic, version, header_length = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise CorruptEntryError(f"not a cuecraft cache entry (magic {magic!r})")
    if version != FORMAT_VERSION:
        raise CorruptEntryError(f"format version {version}; this cuecraft reads version {FORMAT_VERSION}")
    start = _PREAMBLE.size + header_length
    try:
        header = json.loads(data[_PREAMBLE.size:start].decode("utf-8"))
        shape, dtype, nbytes = [int(n) for n in header["shape"]], _DTYPES[header["dtype"]], int(header["nbytes"])
        entry_key, checksum, byteorder = header["key"], header["blake2b"], header["byteorder"]
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptEntryError(f"unreadable header ({type(error).__name__}: {error})") from None
    if entry_key != key:
        raise CorruptEntryError(f"holds the entry {entry_key!r}, not {key!r}")
    if byteorder != "little":
        raise CorruptEntryError(f"byte order {byteorder!r}; expected 'little'")
    if len(data) != start + nbytes:
        raise CorruptEntryError(f"truncated or padded: {len(data) - start} payload bytes, header says {nbytes}")
    numel = 1
    for n in shape:
        numel *= n
    if numel * dtype.itemsize != nbytes:
        raise CorruptEntryError(f"shape {shape} of {header['dtype']} does not fill {nbytes} bytes")
    payload = memoryview(data)[start:]
    if _checksum(entry_key, header["dtype"], shape, payload) != checksum:
        raise CorruptEntryError("checksum mismatch (the header or payload is corrupt)")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(payload), dtype=dtype).reshape(shape)


class EmbeddingCache:
    """Features per audio for one conditioner configuration, on disk under ``root``.

    Args:
        root: the cache folder (created on the first write; relative paths are taken from the
            current directory at construction).
        conditioner: the conditioner's registered type name (part of every key).
        settings: the conditioner settings that shape the cached features, JSON-able (part of
            every key). Leave out settings applied after the cache (projection, length fitting).
        max_memory_bytes: bound of the in-memory LRU layer, in bytes (0: no memory layer).
    """

    def __init__(self, root: str | os.PathLike[str], conditioner: str, settings: Mapping[str, Any],
                 *, max_memory_bytes: int = DEFAULT_MEMORY_BYTES):
        problems = []
        if not isinstance(root, (str, os.PathLike)) or not os.fspath(root):
            problems.append(f"cache_path: expected a folder path; got {root!r}")
        if isinstance(max_memory_bytes, bool) or not isinstance(max_memory_bytes, int) or max_memory_bytes < 0:
            problems.append(f"cache_memory_bytes: expected an int >= 0; got {max_memory_bytes!r}")
        try:
            self._namespace = json.dumps({"format": FORMAT_VERSION, "conditioner": conditioner,
                                          "settings": dict(settings)}, sort_keys=True)
        except (TypeError, ValueError) as error:
            problems.append(f"settings: must be JSON-able to make cache keys ({error})")
        if problems:
            raise ConfigError(problems)
        self.root = Path(os.path.abspath(root))
        self.conditioner = conditioner
        self.settings = dict(settings)
        self.max_memory_bytes = max_memory_bytes
        self._memory: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._memory_bytes = 0
        self._lock = threading.Lock()

    # --- keys and files --------------------------------------------------------------------------

    def key(self, audio: Mapping[str, Any]) -> str:
        """The entry key (64 hex digits) for an audio identity (``file_identity``/``content_identity``)."""
        text = self._namespace + "\n" + json.dumps(dict(audio), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def path_of(self, key: str) -> Path:
        """Where the entry ``key`` lives."""
        return self.root / key[:2] / (key + _SUFFIX)

    # --- memory layer ----------------------------------------------------------------------------

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the memory layer now (at most ``max_memory_bytes``)."""
        return self._memory_bytes

    def _remember(self, key: str, tensor: torch.Tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        if size > self.max_memory_bytes:
            return
        with self._lock:
            old = self._memory.pop(key, None)
            if old is not None:
                self._memory_bytes -= old.numel() * old.element_size()
            self._memory[key] = tensor
            self._memory_bytes += size
            while self._memory_bytes > self.max_memory_bytes:
                _, evicted = self._memory.popitem(last=False)
                self._memory_bytes -= evicted.numel() * evicted.element_size()

    def _recall(self, key: str) -> torch.Tensor | None:
        with self._lock:
            tensor = self._memory.get(key)
            if tensor is not None:
                self._memory.move_to_end(key)
            return tensor

    # --- reading and writing ---------------------------------------------------------------------

    def _read(self, key: str) -> torch.Tensor | None:
        """The entry on disk, or None when there is none or it is unusable (reported)."""
        path = self.path_of(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            warnings.warn(f"cuecraft cache: cannot read {path} ({error}); recomputing it", CacheWarning, stacklevel=3)
            return None
        try:
            return decode_entry(data, key)
        except CorruptEntryError as error:
            warnings.warn(f"cuecraft cache: unusable entry {path}: {error}; recomputing it", CacheWarning, stacklevel=3)
            return None

    def load(self, audio: Mapping[str, Any]) -> torch.Tensor | None:
        """The cached features of ``audio`` (a copy), or None when absent or unusable."""
        key = self.key(audio)
        tensor = self._recall(key)
        if tensor is None:
            tensor = self._read(key)
            if tensor is None:
                return None
            self._remember(key, tensor)
        return tensor.clone()

    def has_entry(self, audio: Mapping[str, Any]) -> bool:
        """Whether a usable entry for ``audio`` is on disk (it is read and checked in full)."""
        return self._read(self.key(audio)) is not None

    def store(self, audio: Mapping[str, Any], tensor: torch.Tensor) -> Path:
        """Write ``tensor`` as the entry of ``audio`` atomically; returns the entry's path."""
        key = self.key(audio)
        path = self.path_of(key)
        data = encode_entry(key, self.conditioner, tensor)
        try:
            with atomic_write(path) as file:
                file.write(data)
        except PermissionError:
            if os.name != "nt":
                raise
            # Windows: a reader has the current entry open. It has this key, so it holds the
            # same features; keep it.
        self._remember(key, tensor.detach().to("cpu").clone())
        return path

    def get_or_compute(self, audio: Mapping[str, Any], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The cached features of ``audio``, or ``compute()``'s, stored first. Returns a copy."""
        tensor = self.load(audio)
        if tensor is not None:
            return tensor
        tensor = compute()
        self.store(audio, tensor)  # the memory layer keeps its own copy
        return tensor

    def clear_memory(self) -> None:
        """Empty the memory layer (the entries on disk stay)."""
        with self._lock:
            self._memory.clear()
            self._memory_bytes = 0

    # --- pickling (data-loader workers) ----------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_memory", "_memory_bytes")}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._memory = OrderedDict()
        self._memory_bytes = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"EmbeddingCache(root={str(self.root)!r}, conditioner={self.conditioner!r}, "
                f"max_memory_bytes={self.max_memory_bytes})")
