"""Waveform conditioners: ``WaveformConditioner`` (the base) and ``chroma_stem`` (melody).

Notation: B batch, T frames, N features per frame (n_chroma for chroma), D width.
"""

from __future__ import annotations

import math
import os
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from cuecraft.attributes import AttributeValue, WavCondition
from cuecraft.audio.chroma import ChromaExtractor
from cuecraft.audio.io import load_audio
from cuecraft.audio.resample import prepare_waveform
from cuecraft.audio.stems import StemBackend, make_stem_backend
from cuecraft.cache import DEFAULT_MEMORY_BYTES, EmbeddingCache, content_identity, file_identity
from cuecraft.condition import Condition
from cuecraft.conditioners.base import BaseConditioner, check_int, check_real
from cuecraft.conditioners.registry import register_conditioner
from cuecraft.errors import ConditioningInputError, ConfigError

NULL_MELODIES = ("null", "silence")  # at inference: the null condition, or AudioCraft's chroma of silence
BATCH_LAYOUTS = ("items", "padded")  # each item on its own, or AudioCraft's zero-padded batch
FEATURES_VERSION = 1  # bump when chroma_stem's features change for the same settings (cache keys)


def feature_settings(extractor: ChromaExtractor, stems: StemBackend) -> dict[str, Any]:
    """What shapes chroma_stem's features, for cache keys: the chroma geometry and the stems.

    Settings applied after the cache (duration, argmax, the projection) are left out, so
    conditioners that differ only in those share entries.
    """
    settings = {"features_version": FEATURES_VERSION, "sample_rate": extractor.sample_rate,
                "n_chroma": extractor.n_chroma, "radix2_exp": extractor.radix2_exp, "eps": extractor.eps,
                "stems": stems.settings()}
    # AudioCraft's spectrogram settings, named only when set, so existing caches keep their keys.
    for name, default in (("pad_mode", "constant"), ("normalized", False), ("silent_frames", "zeros")):
        if getattr(extractor, name) != default:
            settings[name] = getattr(extractor, name)
    return settings


class WaveformTokens(NamedTuple):
    """A waveform conditioner's CPU-side preparation of a batch: frame features.

    features: float32 [B, T, N], zeros where masked.
    mask: bool [B, T]: True on an item's own frames; False on padding and null items.
    """

    features: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device | str) -> WaveformTokens:
        return WaveformTokens(self.features.to(device, non_blocking=True), self.mask.to(device, non_blocking=True))


class WaveformConditioner(BaseConditioner):
    """Base of conditioners that turn a waveform into frame features [B, T, N].

    ``tokenize`` (CPU): each ``WavCondition`` (any sample rate, any channel count) is cut to its
    ``length``, down-mixed to mono and resampled to ``sample_rate`` (``prepare``); its features
    [T_i, N] come from ``item_features``, with T_i = 1 + samples // ``downsampling_factor``;
    ``fit_length`` may then change T_i. Items are right-padded to the longest (at least
    ``null_length`` frames) and the length mask keeps each item's own T_i frames.
    With ``argmax`` each frame keeps only its strongest feature, as a one-hot (an all-zero frame,
    silence, stays all zeros). ``encode``: the features in the conditioner's dtype, [B, T, N];
    the base class then projects them to [B, T, output_dim].

    None and an empty waveform (length 0) give the null condition: zeros, mask all False.
    Subclasses implement ``compute_features``; they may override ``item_features`` (a cache)
    and ``fit_length``.

    Args:
        n_features: N, the width of a frame's features (the conditioner's ``dim``).
        output_dim, project_out: see BaseConditioner.
        sample_rate: the rate every waveform is resampled to, in Hz.
        downsampling_factor: samples per frame.
        argmax: keep only each frame's strongest feature, one-hot (silent frames stay zeros).
    """

    kind = "wav"
    output_length = None

    def __init__(self, n_features: int, output_dim: int, sample_rate: int, downsampling_factor: int, *,
                 argmax: bool = False, project_out: bool = False, silent_frames: str = "zeros"):
        super().__init__(n_features, output_dim, project_out)
        self.sample_rate = sample_rate
        self.downsampling_factor = downsampling_factor
        self.argmax = argmax
        self.silent_frames = silent_frames  # "zeros", or "c": argmax makes a silent frame a one-hot C
        # Moves with .to(dtype / device) even when proj_out is the identity, so encode knows the
        # dtype to return; not saved in state dicts.
        self.register_buffer("_dtype_anchor", torch.empty(0), persistent=False)

    def num_frames(self, n_samples: int) -> int:
        """Frames of a waveform of ``n_samples`` at ``sample_rate``: 1 + n_samples // factor."""
        return 1 + n_samples // self.downsampling_factor

    @staticmethod
    def is_null(value: WavCondition | None) -> bool:
        """None and empty waveforms make the null condition."""
        return value is None or value.length == 0

    def prepare(self, value: WavCondition) -> torch.Tensor:
        """A WavCondition -> its first ``length`` samples, mono, at ``sample_rate``: float32 [T]."""
        return prepare_waveform(value.wav, value.sample_rate, self.sample_rate, value.length)

    @abstractmethod
    def compute_features(self, wavs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Mono waveforms [T_i] at ``sample_rate`` -> features [num_frames(T_i), N] each."""

    def item_features(self, values: Sequence[WavCondition | None]) -> list[torch.Tensor | None]:
        """Features [T_i, N] per item; None for a null item."""
        chosen = [i for i, value in enumerate(values) if not self.is_null(value)]
        wavs = [self.prepare(values[i]) for i in chosen]  # type: ignore[arg-type]
        features: list[torch.Tensor | None] = [None] * len(values)
        for i, wav, item in zip(chosen, wavs, self.compute_features(wavs)):
            assert item.shape == (self.num_frames(wav.shape[-1]), self.dim), (item.shape, wav.shape)
            features[i] = item
        return features

    def fit_length(self, features: torch.Tensor, *, train: bool = False) -> torch.Tensor:
        """A hook on each item's features [T_i, N] before padding; the identity here."""
        return features

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> WaveformTokens:
        features = self.item_features(values)  # type: ignore[arg-type]
        return self.pack([None if f is None else self.fit_length(f, train=train) for f in features])

    def pack(self, features: Sequence[torch.Tensor | None]) -> WaveformTokens:
        """Per-item features [T_i, N] (None: null) -> WaveformTokens [B, T, N], T = max(T_i, null_length)."""
        lengths = [0 if f is None else f.shape[0] for f in features]
        length = max(self.null_length, *lengths)
        batch = torch.zeros(len(features), length, self.dim)
        for i, item in enumerate(features):
            if item is not None:
                batch[i, : item.shape[0]] = item
        mask = torch.arange(length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # [B, T]
        return WaveformTokens(self.one_hot(batch, mask), mask)

    def one_hot(self, batch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """With ``argmax``: each frame of ``batch`` [B, T, N] a one-hot of its strongest feature.

        Silent frames stay zeros, or (silent_frames "c", AudioCraft's argmax) become a C where
        ``mask`` [B, T] is True; masked frames stay zeros either way. Without argmax: ``batch``.
        """
        if not self.argmax:
            return batch
        keep = batch.amax(dim=-1, keepdim=True) > 0 if self.silent_frames == "zeros" else mask.unsqueeze(-1)
        return torch.nn.functional.one_hot(batch.argmax(dim=-1), self.dim).to(batch.dtype) * keep

    def encode(self, tokens: WaveformTokens) -> Condition:
        return Condition(tokens.features.to(self._dtype_anchor.dtype), tokens.mask)

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, downsampling_factor={self.downsampling_factor}, "
                f"argmax={self.argmax}, " + super().extra_repr())


@register_conditioner("chroma_stem")
class ChromaStemConditioner(WaveformConditioner):
    """Melody conditioning from audio (MusicGen-Melody's): the chroma of a mix's melodic part.

    Args:
        output_dim: condition width (a projection from n_chroma is added when it differs).
        sample_rate: waveforms are resampled to this rate (Hz) before anything else.
        n_chroma: chroma bins per octave (12).
        radix2_exp: chroma window n_fft = 2**radix2_exp samples, hop n_fft / 4 (the
            downsampling factor); 14 at 32 kHz gives 7.8125 frames per second.
        duration: the training segment length, in seconds; outside training (``tokenize``
            with ``train=False``) with ``match_len_on_eval``, a shorter melody is looped and a
            longer one cut to its ``chroma_len = 1 + duration * sample_rate // hop`` frames.
        match_len_on_eval: loop / cut melodies to ``duration`` when not ``train``.
        stems: ``hpss`` (default, no weights), ``demucs`` (needs the demucs package and
            ``stems_model``) or ``none``; see cuecraft.audio.stems.
        stems_model: a local Demucs model file, for ``stems="demucs"`` only.
        argmax: one-hot of each frame's strongest pitch class instead of the chroma.
        cache_path: a folder for an EmbeddingCache of chroma per audio (None: no cache).
            With a cache, an item with a ``path`` is looked up by its file: the chroma of the
            whole file is computed (or loaded) once and the item's frames are taken from
            ``seek_time`` on, as AudioCraft does; the waveform handed in is not read. Items
            without a path are looked up by a hash of their samples.
        cache_memory_bytes: bound of the cache's in-memory layer.
        project_out: see BaseConditioner.
        pad_mode, normalized, silent_frames: the chroma's edge padding, power scale and silent
            frames (see cuecraft.audio.chroma); AudioCraft's are "reflect", true and "c", which
            its reader sets. With silent_frames "c", argmax also marks a silent frame as a C.
        pad_to_duration: pad a batch to at least ``chroma_len`` frames (default). Off (AudioCraft's
            layout): a batch is as long as its longest item, and an all-null batch has the
            frames of a one-sample waveform (1, or 1 + n_fft // hop with pad_mode "reflect").
        null_melody, batch_layout: what a null item and a mixed-length batch give at inference
            (``tokenize`` with ``train=False`` and ``match_len_on_eval``), ``compat: exact``
            settings reproducing AudioCraft 1.3.0's MusicGen (which loops and does not mask at
            inference). ``null_melody``: ``null`` (default: zeros, mask False, as training
            dropout makes it) or ``silence`` (AudioCraft's: the chroma of a silent waveform,
            unmasked, ``chroma_len`` frames, so its projection, a one-hot C with argmax and
            silent_frames "c"; training saw zeros). ``batch_layout``: ``items`` (default: each
            item's chroma from its own samples, looped on its own frames) or ``padded``
            (AudioCraft's: the waveforms zero-padded to the batch's longest before stems and
            chroma, and the padded frames looped, unmasked, the padding included; in training
            each item keeps its own frames of that chroma). With a cache, ``padded`` pads the
            cached frames with zero frames.

    Output: [B, T, output_dim]; T = the longest item's frame count, at least ``chroma_len``
    (with ``pad_to_duration``).
    Null (None, dropout, the unconditional branch of guidance, an empty waveform): zeros with
    an all-False mask, ``chroma_len`` frames long, the same in training and at inference
    (unless ``null_melody`` is "silence"). (A
    silent waveform is not null: its frames are valid and all-zero, never a one-hot C.)
    Features are computed in ``tokenize`` on the CPU (where the cache lives); ``forward`` only
    projects them.
    """

    def __init__(
        self,
        output_dim: int,
        sample_rate: int = 32000,
        n_chroma: int = 12,
        radix2_exp: int = 14,
        duration: float = 30.0,
        match_len_on_eval: bool = True,
        stems: str = "hpss",
        stems_model: str | None = None,
        argmax: bool = False,
        cache_path: str | None = None,
        cache_memory_bytes: int = DEFAULT_MEMORY_BYTES,
        project_out: bool = False,
        pad_mode: str = "constant",
        normalized: bool = False,
        silent_frames: str = "zeros",
        pad_to_duration: bool = True,
        null_melody: str = "null",
        batch_layout: str = "items",
    ):
        problems: list[str] = [*check_real("duration", duration)]
        if not problems and duration <= 0:
            problems.append(f"duration: must be > 0 seconds; got {duration}")
        for name, flag in (("match_len_on_eval", match_len_on_eval), ("argmax", argmax),
                           ("pad_to_duration", pad_to_duration)):
            if not isinstance(flag, bool):
                problems.append(f"{name}: expected true or false; got {flag!r}")
        if null_melody not in NULL_MELODIES:
            problems.append(f"null_melody: expected one of {', '.join(NULL_MELODIES)}; got {null_melody!r}")
        if batch_layout not in BATCH_LAYOUTS:
            problems.append(f"batch_layout: expected one of {', '.join(BATCH_LAYOUTS)}; got {batch_layout!r}")
        extractor = stem_backend = cache = None
        try:
            extractor = ChromaExtractor(sample_rate, n_chroma, radix2_exp, pad_mode=pad_mode, normalized=normalized,
                                        silent_frames=silent_frames)
        except ConfigError as error:
            problems += error.problems
        try:
            stem_backend = make_stem_backend(stems, stems_model)
        except ConfigError as error:
            problems += error.problems
        problems += check_int("output_dim", output_dim, minimum=1)
        if cache_path is not None and extractor is not None and stem_backend is not None:
            try:
                cache = EmbeddingCache(cache_path, "chroma_stem", feature_settings(extractor, stem_backend),
                                       max_memory_bytes=cache_memory_bytes)
            except ConfigError as error:
                problems += error.problems
        if problems:
            raise ConfigError(problems)
        assert extractor is not None and stem_backend is not None
        super().__init__(n_chroma, output_dim, sample_rate, extractor.hop_length, argmax=argmax,
                         project_out=project_out, silent_frames=silent_frames)
        self.extractor = extractor
        self.pad_to_duration = pad_to_duration
        self.null_melody = null_melody
        self.batch_layout = batch_layout
        self.stem_backend: StemBackend = stem_backend
        self.cache = cache
        self.duration = float(duration)
        self.match_len_on_eval = match_len_on_eval
        self.chroma_len = self.num_frames(round(duration * sample_rate))
        # The one fixed null melody (an instance-level setting): chroma_len frames, or without
        # pad_to_duration those of a one-sample waveform (AudioCraft's null wav [1, 1, 1]).
        self.null_length = self.chroma_len if pad_to_duration else self.num_frames(1)

    def num_frames(self, n_samples: int) -> int:
        """Chroma frames of ``n_samples``: 1 + n_samples // hop (see ChromaExtractor.num_frames)."""
        return self.extractor.num_frames(n_samples)

    @property
    def frame_rate(self) -> float:
        """Chroma frames per second: sample_rate / hop."""
        return self.extractor.frame_rate

    def feature_settings(self) -> dict[str, Any]:
        """The settings that shape the cached chroma (its cache namespace)."""
        return feature_settings(self.extractor, self.stem_backend)

    def compute_features(self, wavs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Stems, then chroma: [T_i] at sample_rate -> [1 + T_i // hop, n_chroma] each.

        Waveforms of equal length go through the chroma extractor as one batch (each item's
        frames depend on its own samples only, so batching never changes a result).
        """
        melodic = [self.stem_backend(wav, self.sample_rate) for wav in wavs]
        features: list[torch.Tensor] = [torch.empty(0)] * len(wavs)
        by_length: dict[int, list[int]] = {}
        for i, wav in enumerate(melodic):
            by_length.setdefault(wav.shape[-1], []).append(i)
        for indices in by_length.values():
            chroma = self.extractor(torch.stack([melodic[i] for i in indices]))  # [b, F, N]
            for j, i in enumerate(indices):
                features[i] = chroma[j]
        return features

    def file_features(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """The chroma of a whole audio file: [F, n_chroma]. An unreadable file is an AudioReadError."""
        wav, rate = load_audio(path)
        return self.compute_features([prepare_waveform(wav, rate, self.sample_rate)])[0]

    def item_features(self, values: Sequence[WavCondition | None]) -> list[torch.Tensor | None]:
        if self.cache is None:
            return super().item_features(values)
        cache = self.cache
        features: list[torch.Tensor | None] = []
        for index, value in enumerate(values):
            if value is None or self.is_null(value):
                features.append(None)
            elif value.path is not None:
                path = value.path
                whole = cache.get_or_compute(file_identity(path), lambda: self.file_features(path))
                features.append(self._segment(whole, value, index))
            else:
                wav = value.wav[..., : value.length]
                features.append(cache.get_or_compute(
                    content_identity(wav, value.sample_rate),
                    lambda: self.compute_features([self.prepare(value)])[0]))  # noqa: B023 (called at once)
        return features

    def _segment(self, whole: torch.Tensor, value: WavCondition, index: int) -> torch.Tensor:
        """The frames of ``whole`` (a file's chroma [F, N]) that the item covers."""
        seek = 0.0 if value.seek_time is None else float(value.seek_time)
        start = round(seek * self.frame_rate) if math.isfinite(seek) else -1
        if start < 0 or start >= whole.shape[0]:
            raise ConditioningInputError(
                f"item {index}: seek_time {value.seek_time!r} s is outside {value.path} "
                f"({(whole.shape[0] - 1) / self.frame_rate:.2f} s of chroma frames)")
        count = self.num_frames(round(value.length * self.sample_rate / value.sample_rate))  # type: ignore[operator]
        return whole[start: start + count]

    def used_span(self, value: WavCondition | None) -> WavCondition | None:
        """``value`` cut to what ``fit_length`` keeps outside training (its first ``chroma_len``
        frames) plus the context those frames depend on (the chroma window, the stem backend's
        ``context_samples``, 0.1 s for resampling), so a 10-minute file is separated for its first
        ``duration`` seconds only, with the frames the whole file would give. Unchanged when the
        backend needs the whole input (demucs) or the waveform is no longer than that."""
        context = self.stem_backend.context_samples(self.sample_rate)
        if value is None or self.is_null(value) or context is None:
            return value
        hop, n_fft = self.extractor.hop_length, self.extractor.n_fft
        needed = (self.chroma_len - 1) * hop + n_fft + context  # samples at sample_rate
        keep = math.ceil(needed * value.sample_rate / self.sample_rate)
        if value.sample_rate != self.sample_rate:
            keep += value.sample_rate // 10
        if keep >= value.length:  # type: ignore[operator]
            return value
        return WavCondition(value.wav[..., :keep], value.sample_rate, path=value.path, seek_time=value.seek_time)

    def fit_length(self, features: torch.Tensor, *, train: bool = False) -> torch.Tensor:
        """Not in training (``train``), with match_len_on_eval: loop a shorter melody, cut a longer
        one, to chroma_len."""
        if train or not self.match_len_on_eval or features.shape[0] == 0:
            return features
        repeats = math.ceil(self.chroma_len / features.shape[0])
        return features.repeat(repeats, 1)[: self.chroma_len]

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> WaveformTokens:
        looping = not train and self.match_len_on_eval
        if looping and self.cache is None:  # only the first chroma_len frames are kept: separate those
            values = [self.used_span(value) for value in values]  # type: ignore[arg-type]
        if self.batch_layout == "items" and not (looping and self.null_melody == "silence"):
            return super().tokenize_checked(values, train=train, generator=generator)
        if self.batch_layout == "items":
            features = [None if f is None else self.fit_length(f) for f in self.item_features(values)]  # type: ignore[arg-type]
            return self._looped(features)
        padded, own = self._padded_features(values)  # type: ignore[arg-type]
        if not looping:  # training layout: each item's own frames of the padded batch's chroma
            return self.pack([None if f is None else f[:n] for f, n in zip(padded, own)])
        return self._looped(padded)

    def _padded_features(self, values: Sequence[WavCondition | None]) -> tuple[list[torch.Tensor | None], list[int]]:
        """AudioCraft's collated batch: features [F, N] of each item's waveform zero-padded to the
        batch's longest (F = num_frames(longest)), None for null items; and each item's own
        frame count (0 for null items)."""
        chosen = [i for i, value in enumerate(values) if not self.is_null(value)]
        features: list[torch.Tensor | None] = [None] * len(values)
        own = [0] * len(values)
        if not chosen:
            return features, own
        if self.cache is not None:
            items = self.item_features(values)
            frames = max(items[i].shape[0] for i in chosen)  # type: ignore[union-attr]
            for i in chosen:
                item = items[i]
                assert item is not None
                own[i] = item.shape[0]
                features[i] = torch.nn.functional.pad(item, (0, 0, 0, frames - item.shape[0]))
            return features, own
        wavs = {i: self.prepare(values[i]) for i in chosen}  # type: ignore[arg-type]
        longest = max(w.shape[-1] for w in wavs.values())
        padded = [torch.nn.functional.pad(wavs[i], (0, longest - wavs[i].shape[-1])) for i in chosen]
        for i, item in zip(chosen, self.compute_features(padded)):
            features[i], own[i] = item, self.num_frames(wavs[i].shape[-1])
        return features, own

    def _looped(self, features: Sequence[torch.Tensor | None]) -> WaveformTokens:
        """MusicGen's inference layout: the batch [B, F, N] (F its longest item, zero frames
        after shorter ones) repeated and cut to chroma_len frames as one tensor, unmasked; null
        items zeros, masked (null_melody "null") or unmasked, as the chroma of silence."""
        frames = max([f.shape[0] for f in features if f is not None], default=self.chroma_len)
        batch = torch.zeros(len(features), frames, self.dim)
        for i, item in enumerate(features):
            if item is not None:
                batch[i, : item.shape[0]] = item
        batch = batch.repeat(1, math.ceil(self.chroma_len / frames), 1)[:, : self.chroma_len]
        valid = torch.tensor([f is not None or self.null_melody == "silence" for f in features])
        mask = valid.unsqueeze(1).expand(-1, self.chroma_len).contiguous()
        return WaveformTokens(self.one_hot(batch, mask), mask)

    def fill_cache(self, path: str | os.PathLike[str]) -> bool:
        """Make sure the cache holds the chroma of the file at ``path``; True if it was computed,
        False if a usable entry was already there. Needs ``cache_path``."""
        if self.cache is None:
            raise ConfigError("cache_path: this chroma_stem conditioner has no cache to fill")
        identity = file_identity(path)
        if self.cache.has_entry(identity):
            return False
        self.cache.store(identity, self.file_features(path))
        return True

    def extra_repr(self) -> str:
        return (f"n_chroma={self.extractor.n_chroma}, radix2_exp={self.extractor.radix2_exp}, "
                f"duration={self.duration}, stems={self.stem_backend.name!r}, pad_mode={self.extractor.pad_mode!r}, "
                f"pad_to_duration={self.pad_to_duration}, "
                + (f"null_melody={self.null_melody!r}, " if self.null_melody != "null" else "")
                + (f"batch_layout={self.batch_layout!r}, " if self.batch_layout != "items" else "")
                + f"cache={None if self.cache is None else str(self.cache.root)!r}, " + super().extra_repr())
