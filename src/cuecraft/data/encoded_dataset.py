"""``EncodedDataset`` and ``EncodedCollate``: training on frames that ``encode_dataset`` stored.

Shapes: an item's latents are float32 [D, L] (D = ``latent_dim``, L frames), its latent mask bool
[L]; a batch holds latents [B, D, L] and latent_mask [B, L] (L the longest item's).

    dataset = EncodedDataset("encoded/", segment_frames=256, mode="random", seed=0)
    collate = EncodedCollate(stack, seed=0)
    loader = DataLoader(dataset, batch_size=16, num_workers=4, collate_fn=collate)
    for batch in loader:
        conditions = stack.provider(batch.to(device).tokens)  # batch.latents: what the model learns

Items (the rules of ``AudioDataset``, counted in frames):
- ``segment_frames=None``: item i is stored item i as it is (its padded frames masked);
- ``mode="sequential"``: every window of ``segment_frames`` over each stored item's valid frames,
  the last one zero-padded;
- ``mode="random"``: item i is stored item i at a window start drawn from (seed, epoch, i), the
  same in every process, a new one each epoch (``set_epoch``).
A window's ``seek_time`` is the stored item's plus the window's offset (``start * hop /
sample_rate``), and its ``seconds_start`` metadata is updated to match, so a window gives the
conditions and the collate seed of the same span read from audio.

``EncodedCollate`` follows ``AudioCollate``'s generator rule (``stable_seed(seed, epoch,
[(path, seek_time) ...])``) and its handling of missing fields, so tokens are the same in the main
process and in any worker. Conditions that read the waveform (kind ``wav``: melody chroma, CLAP
audio, or any key ``self_wav``) cannot be computed from frames; a stack that has one is refused
with a DatasetError naming them (the waveform is not stored; train from audio for those).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from cuecraft._optional import require
from cuecraft.data.collate import AudioCollate, tokens_to
from cuecraft.data.encoded import INDEX_FILE, item_files, read_info, read_item_json, representation_fingerprint
from cuecraft.data.item import SEEK_TIME, SELF_WAV
from cuecraft.data.segments import random_start, sequential_starts
from cuecraft.errors import DatasetError


@dataclass
class EncodedItem:
    """One window of stored frames, with its metadata.

    latents: float32 [D, L]. latent_mask: bool [L], True on frames of real audio.
    metadata: the stored item's fields (``seconds_start`` of the window). path / seek_time: the
    audio file and where in it (seconds) the window starts.
    """

    latents: torch.Tensor
    latent_mask: torch.Tensor
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    seek_time: float = 0.0
    frame_rate: float = 0.0  # frames per second

    def to_metadata(self) -> dict[str, Any]:
        """The metadata dict the conditioning stack reads: ``metadata`` plus ``seek_time`` (as
        ``AudioItem.to_metadata``; no ``self_wav``: frames only)."""
        return {**self.metadata, SEEK_TIME: self.seek_time}


@dataclass
class EncodedBatch:
    """A training batch of frames. latents: float32 [B, D, L]. latent_mask: bool [B, L].

    frame_rate: frames per second. tokens: ``{name: Tokens}`` (None without a stack). seed: the
    seed of the batch's generator. dropped: None items left out.
    """

    latents: torch.Tensor
    latent_mask: torch.Tensor
    frame_rate: float
    metadata: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    seek_times: list[float] = field(default_factory=list)
    tokens: dict[str, Any] | None = None
    seed: int = 0
    dropped: int = 0

    def __len__(self) -> int:
        return self.latents.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> EncodedBatch:
        """The batch with its tensors (latents, mask, tokens) on ``device``."""
        return replace(self, latents=self.latents.to(device, non_blocking=non_blocking),
                       latent_mask=self.latent_mask.to(device, non_blocking=non_blocking),
                       tokens=tokens_to(self.tokens, device))


class EncodedDataset(torch.utils.data.Dataset):
    """Map-style dataset over a folder that ``encode_dataset`` finished (module docstring)."""

    def __init__(self, directory: str | os.PathLike[str], *, segment_frames: int | None = None,
                 mode: Literal["random", "sequential"] = "random", seed: int = 0):
        self.directory = Path(directory)
        self.info = info = read_info(directory)
        if not info.get("complete"):
            raise DatasetError(f"{directory}: the encoding is not finished (an interrupted run); run "
                               f"`cuecraft data encode` again with the same options to finish it")
        if segment_frames is not None and (isinstance(segment_frames, bool) or not isinstance(segment_frames, int)
                                           or segment_frames < 1):
            raise DatasetError(f"segment_frames must be a positive int or None (stored items whole); "
                               f"got {segment_frames!r}")
        if mode not in ("random", "sequential"):
            raise DatasetError(f"mode must be 'random' or 'sequential'; got {mode!r}")
        self.segment_frames, self.mode, self.seed, self.epoch = segment_frames, mode, int(seed), 0
        self.entries = self._read_index()
        if segment_frames is not None and mode == "sequential":
            self._windows = [(i, start) for i, entry in enumerate(self.entries)
                             for start in sequential_starts(entry["frames"], segment_frames)]
        else:
            self._windows = None

    def _read_index(self) -> list[dict[str, Any]]:
        import json

        path = self.directory / INDEX_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            entries = [json.loads(line) for line in lines if line.strip()]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DatasetError(f"{path}: cannot read the index of the encoded dataset ({error})") from None
        if len(entries) != self.info.get("counts", {}).get("items"):
            raise DatasetError(f"{path}: holds {len(entries)} items; {self.directory / 'encoded.json'} counts "
                               f"{self.info.get('counts', {}).get('items')}: the folder was changed by hand")
        return entries

    # -- what the folder holds -------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return int(self.info["latent_dim"])

    @property
    def frame_rate(self) -> float:
        return float(self.info["frame_rate"])

    @property
    def fingerprint(self) -> str:
        return str(self.info["representation"]["fingerprint"])

    def check_representation(self, representation: Any) -> None:
        """Raise a DatasetError unless ``representation`` is the one the frames were encoded with."""
        found = representation_fingerprint(representation)
        if found != self.fingerprint:
            raise DatasetError(f"{self.directory} was encoded with the {self.info['representation']['kind']!r} "
                               f"representation of fingerprint {self.fingerprint}; the model's has fingerprint "
                               f"{found}: encode the data again with the model's representation")

    # -- items -----------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Draw new random windows: call before each epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._windows) if self._windows is not None else len(self.entries)

    def locate(self, index: int) -> tuple[int, int]:
        """(stored item number, first frame) of item ``index``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"item {index} of a dataset of {len(self)} items")
        index %= len(self)
        if self._windows is not None:
            return self._windows[index]
        if self.segment_frames is None:
            return index, 0
        return index, random_start(self.entries[index]["frames"], self.segment_frames, self.seed, self.epoch, index)

    def load(self, number: int) -> tuple[torch.Tensor, int, dict[str, Any]]:
        """Stored item ``number``: (latents float32 [D, L], valid frames, its JSON record)."""
        entry = self.entries[number]
        tensors, meta = item_files(self.directory, entry["name"])
        safetensors = require("safetensors.torch", extra="text", purpose="reading pre-encoded datasets")
        record = read_item_json(meta)
        try:
            stored = safetensors.load_file(str(tensors))
        except Exception as error:  # SafetensorError, OSError: a missing or corrupt file
            raise DatasetError(f"{tensors}: cannot read the frames of {entry['path']} at {entry['seek_time']} s "
                               f"({error}); run `cuecraft data encode` again to repair the folder") from None
        latents, valid = stored.get("latents"), stored.get("valid_frames")
        if record is None or latents is None or valid is None or latents.shape != (self.latent_dim, entry["length"]) \
                or int(valid[0]) != entry["frames"]:
            shape = None if latents is None else list(latents.shape)
            raise DatasetError(f"{tensors}: does not hold the item the index lists ({entry['path']} at "
                               f"{entry['seek_time']} s: latents [{self.latent_dim}, {entry['length']}], "
                               f"{entry['frames']} valid frames; found {shape}); run `cuecraft data encode` again")
        return latents.float(), entry["frames"], record

    def __getitem__(self, index: int) -> EncodedItem:
        number, start = self.locate(index)
        latents, valid, record = self.load(number)
        size = latents.shape[-1] if self.segment_frames is None else self.segment_frames
        window = latents.new_zeros(latents.shape[0], size)
        taken = latents[:, start: start + size]
        window[:, : taken.shape[-1]] = taken
        mask = torch.zeros(size, dtype=torch.bool)
        mask[: max(0, min(valid - start, size))] = True
        metadata = dict(record.get("metadata") or {})
        seek_time = record["seek_time"] + start * self.info["hop"] / self.info["sample_rate"]
        if start and "seconds_start" in metadata:
            metadata["seconds_start"] = math.floor(seek_time)  # integer seconds, as AudioDataset
        return EncodedItem(window, mask, metadata, record["path"], seek_time, self.frame_rate)


def wav_conditions(stack: Any) -> list[str]:
    """The names of the stack's conditions that read a waveform (not available from frames)."""
    routes = getattr(getattr(stack, "provider", None), "routes", None) or []
    return [route.name for route in routes if route.kind == "wav" or SELF_WAV in route.keys]


class EncodedCollate(AudioCollate):
    """``collate_fn`` for an EncodedDataset: stacks frames and masks, tokenizes the metadata.

    stack: a ConditioningStack (no waveform conditions: module docstring), or None for frames
    only. train: tokenize with the training dropouts. seed: the base seed (AudioCollate's rule).
    missing: "null" (an absent field is the null condition) or "error".
    """

    def __init__(self, stack: Any = None, *, train: bool = True, seed: int = 0,
                 missing: Literal["null", "error"] = "null"):
        super().__init__(stack, train=train, seed=seed, missing=missing)
        needs_wav = wav_conditions(stack)
        if needs_wav:
            raise DatasetError(f"conditions {needs_wav} read the waveform (melody chroma, CLAP audio, self_wav), "
                               f"which a pre-encoded dataset does not hold; train them from audio "
                               f"(AudioDataset + AudioCollate), or leave them out of the stack")

    def __call__(self, items: Sequence[EncodedItem | None]) -> EncodedBatch:  # type: ignore[override]
        kept = [item for item in items if item is not None]
        dropped = len(items) - len(kept)
        if not kept:
            return EncodedBatch(torch.zeros(0, 0, 0), torch.zeros(0, 0, dtype=torch.bool), 0.0, dropped=dropped)
        seed = self.batch_seed(kept)  # type: ignore[arg-type]
        generator = torch.Generator().manual_seed(seed)
        length = max(item.latents.shape[-1] for item in kept)
        latents = kept[0].latents.new_zeros(len(kept), kept[0].latents.shape[0], length)  # [B, D, L]
        mask = torch.zeros(len(kept), length, dtype=torch.bool)  # [B, L]
        for i, item in enumerate(kept):
            latents[i, :, : item.latents.shape[-1]] = item.latents
            mask[i, : item.latent_mask.shape[-1]] = item.latent_mask
        tokens = None
        if self.stack is not None:
            tokens = self.stack.tokenize([self._complete(item.to_metadata()) for item in kept],
                                         train=self.train, generator=generator)
        return EncodedBatch(latents, mask, kept[0].frame_rate, [dict(item.metadata) for item in kept],
                            [item.path for item in kept], [item.seek_time for item in kept], tokens, seed, dropped)
