"""``AudioCollate``: a list of AudioItems -> an ``AudioBatch`` with the conditioners' tokens.

Shapes: B items, C channels, T samples (the longest item's; shorter ones are zero-padded).

Give it as the DataLoader's ``collate_fn``; it runs in the workers, so the CPU half of conditioning
(``stack.tokenize(..., train=True, generator=g)``: dropouts, text tokenization, waveform
preparation) happens there and the training step only calls ``stack.provider(batch.tokens)``:

    collate = AudioCollate(stack, seed=0)
    loader = DataLoader(dataset, batch_size=16, num_workers=4, collate_fn=collate)
    for batch in loader:
        conditions = stack.provider(batch.to(device).tokens)

The generator rule (reproducible across runs, worker counts and batch order): each batch's
generator is seeded with ``stable_seed(seed, epoch, [(item.path, item.seek_time) ...])``, a
hash of the base seed, the epoch (``set_epoch``) and the items it holds. The same items in the
same epoch get the same dropouts and augmentation, in the main process or any worker. The
optional ``augment(items, generator) -> items`` (e.g. beat-synchronous mixup) draws from that
generator first, then ``tokenize``.

Missing fields: an item without a value for a condition the stack reads (no sidecar field of
that name, nor of its ``default_keys`` alias) gets None, the null condition, as AudioCraft's
``MusicInfo`` defaults its fields to None (``missing="null"``, the default); ``missing="error"``
makes it an error instead. ``cuecraft data check`` shows each field's coverage.

Items that are None (rejected by the custom metadata hook, or unreadable with
``on_error="skip"``) are dropped and counted in ``batch.dropped``; a batch with no items left has
B = 0 and no tokens (skip it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch

from cuecraft.data.item import AudioItem
from cuecraft.data.segments import stable_seed
from cuecraft.errors import DatasetError

Augment = Callable[[list[AudioItem], torch.Generator], list[AudioItem]]


@dataclass
class AudioBatch:
    """A training batch.

    wav: float32 [B, C, T]. padding_mask: bool [B, T], True on real audio.
    metadata: each item's metadata (without ``self_wav``). tokens: ``{name: Tokens}`` from the
    stack (None without one). seed: the seed of the batch's generator. dropped: None items left out.
    """

    wav: torch.Tensor
    padding_mask: torch.Tensor
    sample_rate: int
    metadata: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    seek_times: list[float] = field(default_factory=list)
    tokens: dict[str, Any] | None = None
    seed: int = 0
    dropped: int = 0

    def __len__(self) -> int:
        return self.wav.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> AudioBatch:
        """The batch with its tensors (waveforms, masks, tokens) on ``device``."""
        return replace(self, wav=self.wav.to(device, non_blocking=non_blocking),
                       padding_mask=self.padding_mask.to(device, non_blocking=non_blocking),
                       tokens=tokens_to(self.tokens, device))


def tokens_to(tokens: dict[str, Any] | None, device: torch.device | str) -> dict[str, Any] | None:
    """A batch's ``{name: Tokens}`` on ``device`` (None stays None)."""
    return None if tokens is None else {name: t.to(device) for name, t in tokens.items()}


def stack_items(items: Sequence[AudioItem]) -> tuple[torch.Tensor, torch.Tensor]:
    """Waveforms [C, T_i] and masks [T_i] -> (wav [B, C, max T_i], padding_mask [B, max T_i])."""
    channels = {item.wav.shape[0] for item in items}
    rates = {item.sample_rate for item in items}
    if len(channels) > 1 or len(rates) > 1:
        raise DatasetError(f"cannot batch items of different channels {sorted(channels)} or sample rates "
                           f"{sorted(rates)}; open the dataset with one sample_rate and channels")
    length = max(item.wav.shape[-1] for item in items)
    wav = torch.zeros(len(items), channels.pop(), length)
    mask = torch.zeros(len(items), length, dtype=torch.bool)
    for i, item in enumerate(items):
        wav[i, :, : item.wav.shape[-1]] = item.wav
        mask[i, : item.padding_mask.shape[-1]] = item.padding_mask
    return wav, mask


class AudioCollate:
    """``collate_fn`` for cuecraft datasets (module docstring: what it does, the generator rule).

    stack: a ConditioningStack (anything with ``tokenize(batch, *, train, generator)``), or None
    for waveforms only. train: tokenize with the training dropouts. seed: the base seed.
    augment: ``augment(items, generator) -> items``, applied before tokenizing.
    """

    def __init__(self, stack: Any = None, *, train: bool = True, seed: int = 0, augment: Augment | None = None,
                 missing: Literal["null", "error"] = "null"):
        if stack is not None and not callable(getattr(stack, "tokenize", None)):
            raise DatasetError(f"AudioCollate needs a stack with tokenize(batch, *, train, generator) "
                               f"(a ConditioningStack); got {type(stack).__name__}")
        if missing not in ("null", "error"):
            raise DatasetError(f"AudioCollate: missing must be 'null' or 'error'; got {missing!r}")
        self.stack, self.train, self.seed, self.augment = stack, train, int(seed), augment
        self.missing = missing
        routes = getattr(getattr(stack, "provider", None), "routes", None) or []
        self._keys = [tuple(route.keys) for route in routes]  # the metadata keys each condition reads
        self.epoch = 0

    def _complete(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """``metadata`` with None for every condition it has no key for (``missing="null"``)."""
        if self.missing == "error":
            return metadata
        absent = {keys[0]: None for keys in self._keys if not any(k in metadata for k in keys)}
        return {**metadata, **absent} if absent else metadata

    def set_epoch(self, epoch: int) -> None:
        """New dropouts for the same items: call before each epoch, as ``dataset.set_epoch``."""
        self.epoch = int(epoch)

    def batch_seed(self, items: Sequence[AudioItem]) -> int:
        """The seed of the generator for a batch of ``items`` (the rule in the module docstring)."""
        return stable_seed(self.seed, self.epoch, [(item.path, round(item.seek_time, 6)) for item in items])

    def __call__(self, items: Sequence[AudioItem | None]) -> AudioBatch:
        kept = [item for item in items if item is not None]
        dropped = len(items) - len(kept)
        if not kept:
            return AudioBatch(torch.zeros(0, 0, 0), torch.zeros(0, 0, dtype=torch.bool), 0, dropped=dropped)
        seed = self.batch_seed(kept)
        generator = torch.Generator().manual_seed(seed)
        if self.augment is not None:
            kept = list(self.augment(kept, generator))
        wav, mask = stack_items(kept)
        tokens = None
        if self.stack is not None:
            metadata = [self._complete(item.to_metadata()) for item in kept]
            tokens = self.stack.tokenize(metadata, train=self.train, generator=generator)
        return AudioBatch(
            wav=wav, padding_mask=mask, sample_rate=kept[0].sample_rate,
            metadata=[dict(item.metadata) for item in kept], paths=[item.path for item in kept],
            seek_times=[item.seek_time for item in kept], tokens=tokens, seed=seed, dropped=dropped,
        )
