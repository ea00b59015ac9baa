"""Beat-synchronous mixup (MusicLDM): audio mixup (BAM) and latent mixup (BLM) of one batch.

Shapes: a waveform is float [C, T] (C channels, T samples); latents are [B, D, L] (L frames at
``frame_rate`` frames per second).

Sampling and applying are separate (``plan = mixup.sample(items, generator)``, then
``mixup.apply(items, plan)``; ``mixup(items, generator)`` does both): the plan is JSON-able, so a
batch's augmentation can be logged and replayed exactly.

Sampling, for each item i of the batch in order: with probability ``p`` it is mixed with a
partner j != i drawn uniformly among the items whose tempo agrees with its own within
``tempo_tolerance`` (``|t_i - t_j| <= tolerance * min(t_i, t_j)``); an item without a partner,
or without beats, stays as it is. ``λ ~ Beta(alpha, beta)`` (drawn by inverting the Beta CDF at a
uniform from the generator). The partner is shifted by ``shift_seconds`` so that its first
downbeat falls on item i's first downbeat (``align="first"``), or, with ``align="nearest"``, by
the smallest shift that puts one of its downbeats on one of item i's (less audio shifted out).

Applying: ``mix = λ·x_i + (1 - λ)·shift(x_j)``. The shifted partner is zero outside its own valid
range (its padding mask, moved by the shift) and outside item i's; the mix keeps item i's
padding mask, length, path and seek time, so padding stays silent and False in the mask.

Beats of an item: its metadata's ``beats`` / ``downbeats`` (seconds in the file, as the corpus
sidecars carry them; moved by the item's ``seek_time`` and kept inside the segment) with
``bpm`` as the tempo when present; otherwise tracked with ``cuecraft.audio.beats`` (cached when
a cache is given).

Conditions of a mixed item (MusicLDM): the stack's ``kinds`` (``{metadata key: kind}``, or the
provider's ``routes``) say what each key is. A ``joint_embed`` (CLAP) key takes a
``JointEmbedCondition`` of the mixed audio; a ``wav`` key a ``WavCondition`` of it (and
``self_wav`` is the mix, as ``AudioItem.to_metadata`` builds it). Text keys follow
``text_policy`` (default ``"null"``: text is not mixed, the joint audio embedding carries the
mix), number and embedding keys ``other_policy`` (``"dominant"``: the value of the source with
the larger weight; ``"null"``: None). Keys the stack does not read are item i's.

Musical labels of a mix (the keys of ``symbolic`` routes: the beats and chords conditioners):
- rhythm (``bpm``, ``time_signature``, ``downbeat_offset``, ``beats``, ``downbeats``, ``duration``)
  are ALIGNED: they stay item i's, which the mix follows: the partner's tempo agrees within
  ``tempo_tolerance`` and it was shifted to put its downbeat on item i's (so the beats and
  downbeats curves of the mix are item i's, and its ``seek_time`` too).
- harmony is DROPPED: ``chords`` becomes None (two progressions sound at once; none describes
  the mix), and ``key`` too, unless both sources are labelled with the same key (then it stays).
These rules hold whatever ``other_policy`` says, also for a key that a number route reads too.
``metadata["mixup"]`` records ``sources`` (both paths), ``seek_times``, ``lam`` and
``shift_seconds``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

from cuecraft._optional import require
from cuecraft.attributes import ATTRIBUTE_KINDS, JointEmbedCondition, Route, WavCondition
from cuecraft.audio.beats import BeatInfo, refine_tempo, track_beats
from cuecraft.cache import EmbeddingCache
from cuecraft.data.item import SELF_WAV, AudioItem
from cuecraft.errors import ConfigError, DatasetError

MIXUP_KEY = "mixup"
HARMONY_KEYS = ("chords", "key")  # symbolic labels a mix drops (the key only when the sources differ)
Kinds = Mapping[str, str] | Sequence[Route]


@dataclass(frozen=True)
class MixupOptions:
    """Settings of beat-synchronous mixup."""

    p: float = 0.5  # probability that an item is mixed with a partner, in [0, 1]
    tempo_tolerance: float = 0.03  # largest relative tempo difference of a pair (> 0)
    alpha: float = 5.0  # λ ~ Beta(alpha, beta), both > 0 (MusicLDM: 5, 5)
    beta: float = 5.0
    align: Literal["first", "nearest"] = "first"  # which downbeats are put on each other
    text_policy: Literal["null", "dominant"] = "null"  # text keys of a mix
    other_policy: Literal["dominant", "null"] = "dominant"  # number / embedding keys of a mix
    beats_per_bar: int = 4  # for tracked beats (items without beats in their metadata)
    tracker: Literal["librosa", "madmom"] = "librosa"

    def __post_init__(self) -> None:
        problems = []
        if not _real(self.p) or not 0.0 <= self.p <= 1.0:
            problems.append(f"mixup.p: a probability in [0, 1]; got {self.p!r}")
        for name in ("tempo_tolerance", "alpha", "beta"):
            value = getattr(self, name)
            if not _real(value) or value <= 0:
                problems.append(f"mixup.{name}: a finite number > 0; got {value!r}")
        choices = {"align": ("first", "nearest"), "text_policy": ("null", "dominant"),
                   "other_policy": ("dominant", "null"), "tracker": ("librosa", "madmom")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                problems.append(f"mixup.{name}: one of {list(allowed)}; got {getattr(self, name)!r}")
        if isinstance(self.beats_per_bar, bool) or not isinstance(self.beats_per_bar, int) or self.beats_per_bar < 1:
            problems.append(f"mixup.beats_per_bar: an int >= 1; got {self.beats_per_bar!r}")
        if problems:
            raise ConfigError(problems)


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class MixPair:
    """Item ``first`` mixed with item ``second``: ``lam * first + (1 - lam) * shift(second)``."""

    first: int
    second: int
    lam: float
    shift_seconds: float  # > 0: the second source starts later


@dataclass(frozen=True)
class MixupPlan:
    """What ``sample`` drew for one batch: a pair (or None) per item, and the batch it is for."""

    pairs: tuple[MixPair | None, ...]
    sources: tuple[tuple[str, float], ...]  # (path, seek_time) of each item, checked at apply

    def to_json(self) -> str:
        return json.dumps({"pairs": [None if p is None else asdict(p) for p in self.pairs],
                           "sources": [list(s) for s in self.sources]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MixupPlan:
        data = json.loads(text)
        pairs = tuple(None if p is None else MixPair(int(p["first"]), int(p["second"]), float(p["lam"]),
                                                     float(p["shift_seconds"])) for p in data["pairs"])
        return cls(pairs, tuple((str(path), float(seek)) for path, seek in data["sources"]))


def kinds_of(kinds: Kinds) -> dict[str, str]:
    """``{metadata key: kind}`` from a mapping or from a provider's ``routes`` (every key a
    route reads gets the route's kind)."""
    if isinstance(kinds, Mapping):
        result = dict(kinds)
    else:  # a symbolic route's labels (bpm, key, ...) follow its rules, whichever route reads them too
        result = {key: route.kind for route in kinds for key in route.keys if route.kind != "symbolic"}
        result.update({key: route.kind for route in kinds for key in route.keys if route.kind == "symbolic"})
    bad = {k: v for k, v in result.items() if v not in ATTRIBUTE_KINDS}
    if bad:
        raise ConfigError([f"mixup.kinds.{k}: one of {list(ATTRIBUTE_KINDS)}; got {v!r}" for k, v in bad.items()])
    return result


def _beta_sample(alpha: float, beta: float, generator: torch.Generator) -> float:
    special = require("scipy.special", extra="audio", purpose="drawing the mixup weight")
    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    return float(special.betaincinv(alpha, beta, u))


def _shift(x: torch.Tensor, steps: int, length: int) -> torch.Tensor:
    """``x`` [..., N] moved ``steps`` later along the last axis (earlier when < 0), zero where
    nothing was moved in, cut to ``length``."""
    out = x.new_zeros(*x.shape[:-1], length)
    n = x.shape[-1]
    start, src = (steps, 0) if steps >= 0 else (0, -steps)
    count = min(n - src, length - start)
    if count > 0:
        out[..., start:start + count] = x[..., src:src + count]
    return out


class BeatSyncMixup:
    """Beat-synchronous mixup of a batch of AudioItems; ``mixup(items, generator)`` is the
    collate function's ``augment`` (``(list[AudioItem], torch.Generator) -> list[AudioItem]``).

    Args:
        options: MixupOptions.
        kinds: ``{metadata key: kind}`` of the conditioning stack, or the provider's ``routes``.
        cache: an EmbeddingCache for tracked beats (items without beats in their metadata).
    """

    def __init__(self, options: MixupOptions | None = None, *, kinds: Kinds = (),
                 cache: EmbeddingCache | None = None):
        self.options = options or MixupOptions()
        self.kinds = kinds_of(kinds)
        self.cache = cache

    # --- beats -----------------------------------------------------------------------------------

    def beat_info(self, item: AudioItem) -> BeatInfo:
        """The tempo and the beats of the item's segment (seconds from its first sample)."""
        seconds = item.length / item.sample_rate
        meta = item.metadata
        if meta.get("beats") is not None and meta.get("downbeats") is not None:
            try:
                beats = [float(t) - item.seek_time for t in meta["beats"]]
                downbeats = [float(t) - item.seek_time for t in meta["downbeats"]]
            except (TypeError, ValueError):
                raise DatasetError(f"{item.path}: field 'beats'/'downbeats': expected lists of seconds; "
                                   f"got {meta['beats']!r:.60} / {meta['downbeats']!r:.60}") from None
            beats = [t for t in beats if 0.0 <= t < seconds]
            bpm = meta.get("bpm")
            tempo = float(bpm) if _real(bpm) and bpm > 0 else refine_tempo(beats)
            return BeatInfo(tempo, tuple(beats), tuple(t for t in downbeats if 0.0 <= t < seconds))
        return track_beats(item.wav[:, :item.length], item.sample_rate, beats_per_bar=self.options.beats_per_bar,
                           tracker=self.options.tracker, cache=self.cache)

    def _shift_seconds(self, first: BeatInfo, second: BeatInfo) -> float:
        if self.options.align == "first":
            return first.downbeats[0] - second.downbeats[0]
        return min((a - b for a in first.downbeats for b in second.downbeats), key=abs)

    # --- sample ----------------------------------------------------------------------------------

    def sample(self, items: Sequence[AudioItem], generator: torch.Generator) -> MixupPlan:
        """Draw the pairs, weights and shifts of one batch (all randomness from ``generator``)."""
        _check_batch(items)
        infos = [self.beat_info(item) for item in items]
        tempos = [info.tempo if info.downbeats else 0.0 for info in infos]
        tol = self.options.tempo_tolerance
        pairs: list[MixPair | None] = []
        for i, tempo in enumerate(tempos):
            mixed = float(torch.rand((), generator=generator, dtype=torch.float64)) < self.options.p
            candidates = [j for j, other in enumerate(tempos) if j != i and tempo > 0 and other > 0
                          and abs(tempo - other) <= tol * min(tempo, other)]
            if not mixed or not candidates:
                pairs.append(None)
                continue
            j = candidates[int(torch.randint(len(candidates), (), generator=generator))]
            lam = _beta_sample(self.options.alpha, self.options.beta, generator)
            pairs.append(MixPair(i, j, lam, self._shift_seconds(infos[i], infos[j])))
        return MixupPlan(tuple(pairs), tuple((item.path, float(item.seek_time)) for item in items))

    # --- apply -----------------------------------------------------------------------------------

    def apply(self, items: Sequence[AudioItem], plan: MixupPlan) -> list[AudioItem]:
        """The batch with every planned pair mixed (the other items as they are, not copied)."""
        _check_plan(items, plan)
        out = []
        for item, pair in zip(items, plan.pairs):
            if pair is None:
                out.append(item)
                continue
            second = items[pair.second]
            steps = round(pair.shift_seconds * item.sample_rate)
            length = item.wav.shape[-1]
            valid = item.padding_mask & _shift(second.padding_mask, steps, length)
            wav = pair.lam * item.wav + (1 - pair.lam) * _shift(second.wav, steps, length) * valid
            wav = wav * item.padding_mask  # padding stays silent
            mixed = AudioItem(wav, item.sample_rate, item.padding_mask.clone(), {}, item.path, item.seek_time)
            mixed.metadata = self.mixed_metadata(item, second, pair, wav)
            out.append(mixed)
        return out

    def mixed_metadata(self, first: AudioItem, second: AudioItem, pair: MixPair,
                       wav: torch.Tensor | None) -> dict[str, Any]:
        """The metadata of the mix of ``first`` and ``second`` (``wav`` [C, T]: the mixed audio,
        for joint and wav keys; None leaves those keys None)."""
        dominant = first if pair.lam >= 0.5 else second
        length = first.length if wav is None else min(first.length, wav.shape[-1])
        metadata = {k: v for k, v in first.metadata.items() if k not in self.kinds}
        for key, kind in self.kinds.items():
            if key == SELF_WAV:
                continue  # AudioItem.to_metadata makes it from the mixed wav
            if kind == "joint_embed":
                value: Any = None if wav is None else JointEmbedCondition(wav, first.sample_rate, length=length)
            elif kind == "wav":
                value = None if wav is None else WavCondition(wav, first.sample_rate, length)
            elif kind == "symbolic" and key in HARMONY_KEYS:
                same = key == "key" and first.metadata.get(key) == second.metadata.get(key)
                value = first.metadata.get(key) if same else None
            elif kind == "symbolic":  # rhythm: item i's, which the partner was aligned to
                if key not in first.metadata:
                    continue  # seek_time and the like come from the item itself
                value = first.metadata[key]
            else:
                policy = self.options.text_policy if kind == "text" else self.options.other_policy
                value = dominant.metadata.get(key) if policy == "dominant" else None
            metadata[key] = value
        metadata[MIXUP_KEY] = {"sources": [first.path, second.path], "seek_times": [first.seek_time, second.seek_time],
                               "lam": pair.lam, "shift_seconds": pair.shift_seconds}
        return metadata

    def __call__(self, items: list[AudioItem], generator: torch.Generator) -> list[AudioItem]:
        return self.apply(items, self.sample(items, generator))

    # --- latent mixup (BLM) ----------------------------------------------------------------------

    def apply_latents(self, items: Sequence[AudioItem], plan: MixupPlan,
                      encode: Callable[[torch.Tensor], torch.Tensor], frame_rate: float, *,
                      decode: Callable[[torch.Tensor], torch.Tensor] | None = None) -> LatentMix:
        """Beat-synchronous latent mixup: the plan's pairs and weights on ``encode``'s latents.

        ``encode(wav [B, C, T]) -> [B, D, L]`` (L frames at ``frame_rate`` per second); the partner
        is shifted by ``round(shift_seconds * frame_rate)`` frames. ``decode([B, D, L]) -> [B, C, T]``
        gives the audio that joint (CLAP) and wav keys of mixed items are conditioned on, as in
        MusicLDM; it is required when the stack has such keys.
        """
        _check_plan(items, plan)
        if decode is None and any(k in ("joint_embed", "wav") and n != SELF_WAV for n, k in self.kinds.items()):
            raise ConfigError("mixup.decode: latent mixup of a stack with joint_embed / wav conditions needs "
                              "decode (the mix is conditioned on its decoded audio); got None")
        latents = encode(torch.stack([item.wav for item in items]))
        if latents.dim() != 3 or latents.shape[0] != len(items):
            raise ConfigError(f"mixup.encode: must return [B, D, L] with B = {len(items)}; got {tuple(latents.shape)}")
        frames = latents.shape[-1]
        valid_frames = torch.tensor([math.ceil(item.length / item.sample_rate * frame_rate) for item in items])
        masks = torch.arange(frames)[None, :] < valid_frames[:, None]  # [B, L]: frames holding real audio
        mixed = latents.clone()
        for i, pair in enumerate(plan.pairs):
            if pair is not None:
                steps = round(pair.shift_seconds * frame_rate)
                valid = masks[i] & _shift(masks[pair.second], steps, frames)
                mixed[i] = (pair.lam * latents[i] + (1 - pair.lam) * _shift(latents[pair.second], steps, frames) * valid)
                mixed[i] = mixed[i] * masks[i]
        audio = decode(mixed) if decode is not None and any(plan.pairs) else None
        metadata = [dict(item.metadata) if pair is None else
                    self.mixed_metadata(item, items[pair.second], pair, None if audio is None else audio[i])
                    for i, (item, pair) in enumerate(zip(items, plan.pairs))]
        return LatentMix(mixed, masks, metadata, plan)


@dataclass
class LatentMix:
    """The result of latent mixup: latents [B, D, L], their mask [B, L] (True on frames of real
    audio), the items' metadata (mixed items' as ``mixed_metadata``) and the plan."""

    latents: torch.Tensor
    mask: torch.Tensor
    metadata: list[dict[str, Any]]
    plan: MixupPlan


def _check_batch(items: Sequence[AudioItem]) -> None:
    if not items:
        raise DatasetError("mixup: the batch is empty")
    first = items[0]
    for i, item in enumerate(items):
        if item.sample_rate != first.sample_rate or item.wav.shape[0] != first.wav.shape[0]:
            raise DatasetError(f"mixup: item {i} ({item.path}) is {item.wav.shape[0]} channels at {item.sample_rate} "
                               f"Hz, item 0 {first.wav.shape[0]} at {first.sample_rate} Hz; a batch must agree")


def _check_plan(items: Sequence[AudioItem], plan: MixupPlan) -> None:
    _check_batch(items)
    sources = tuple((item.path, float(item.seek_time)) for item in items)
    if sources != plan.sources:
        raise DatasetError(f"mixup: the plan was sampled for another batch ({len(plan.sources)} items "
                           f"{plan.sources[:2]}...); got {len(sources)} items {sources[:2]}...")
