"""CLAP conditioners over transformers' ``ClapModel``: ``clap_text`` and the joint ``clap``.

Notation: B batch, T tokens, D width, N audio windows.

``clap_text`` embeds text only: the pooled, projected, L2-normalised text embedding [B, 1, D], or
with ``use_text_features`` the hidden states of one text-encoder layer [B, T, D] with a mask.

``clap`` (a joint embedding, for ``JointEmbedCondition`` values) embeds audio or text into CLAP's
shared space, [B, 1, D]. Audio is down-mixed, resampled to CLAP's rate, cut into windows of
CLAP's length (the last one padded as CLAP's feature extractor pads), and the window embeddings
are averaged and re-normalised. By default training uses the audio and inference the text of each
item (``train_source`` / ``eval_source``), falling back to the other when one is missing. Null
items (None, dropout, the unconditional branch) give the null condition like any other.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cuecraft._optional import require
from cuecraft.attributes import AttributeValue, JointEmbedCondition, WavCondition
from cuecraft.audio.resample import prepare_waveform
from cuecraft.condition import Condition
from cuecraft.conditioners.base import BaseConditioner, check_int
from cuecraft.conditioners.pretrained import (
    autocast,
    check_autocast_dtype,
    freeze,
    load_pretrained,
)
from cuecraft.conditioners.registry import register_conditioner
from cuecraft.conditioners.text import TransformerTextConditioner, check_text_options
from cuecraft.errors import ConfigError


def load_clap(name_or_path: str, allow_download: bool, purpose: str) -> tuple[Any, Any]:
    """(ClapModel, ClapProcessor) from a hub name in the cache or a local directory."""
    transformers = require("transformers", extra="text", purpose=purpose)
    what = f"{purpose} (clap_model_name)"
    model = load_pretrained(transformers.ClapModel.from_pretrained, name_or_path, what=what,
                            allow_download=allow_download)
    processor = load_pretrained(transformers.ClapProcessor.from_pretrained, name_or_path, what=what,
                                allow_download=allow_download)
    return model, processor


class _ClapText(nn.Module):
    """The text half of a ClapModel: encoder + projection."""

    def __init__(self, clap: nn.Module):
        super().__init__()
        self.text_model = clap.text_model
        self.text_projection = clap.text_projection

    def embed(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, T] -> L2-normalised [B, D] (ClapModel.get_text_features' numbers)."""
        pooled = self.text_model(input_ids=ids, attention_mask=attention_mask).pooler_output
        return F.normalize(self.text_projection(pooled), dim=-1)


@register_conditioner("clap_text")
class ClapTextConditioner(TransformerTextConditioner):
    """CLAP text embedding [B, 1, D] (or layer features [B, T, D] with ``use_text_features``).

    Args:
        output_dim: condition width; default: CLAP's projection width (or hidden size for features).
        clap_model_name: hub name (in the Hugging Face cache) or local ClapModel directory.
        use_text_features: return the hidden states of layer ``feature_layer_ix`` instead.
        feature_layer_ix: -1 the last layer, -2 the penultimate, ...
        max_length: default: the tokenizer's maximum (at most 512).
        Others: as T5Conditioner.
    """

    def __init__(self, output_dim: int | None = None, clap_model_name: str = "laion/larger_clap_music",
                 use_text_features: bool = False, feature_layer_ix: int = -1, max_length: int | None = None,
                 enable_grad: bool = False, project_out: bool = False, autocast_dtype: str = "float32",
                 padding: str = "longest", normalize_text: bool = False, word_dropout: float = 0.0,
                 cache_size: int = 1024, allow_download: bool = False):
        options = dict(output_dim=output_dim, use_text_features=use_text_features,
                       feature_layer_ix=feature_layer_ix, max_length=max_length, enable_grad=enable_grad,
                       project_out=project_out, autocast_dtype=autocast_dtype, padding=padding,
                       normalize_text=normalize_text, word_dropout=word_dropout, cache_size=cache_size)
        self._check(**options)
        clap, processor = load_clap(clap_model_name, allow_download, "the clap_text conditioner")
        self._setup(clap, processor.tokenizer, **options)

    @classmethod
    def from_model(cls, clap: nn.Module, tokenizer: Any, **options: Any) -> ClapTextConditioner:
        """Wrap an already loaded ``ClapModel`` and its tokenizer (e.g. a pipeline's components);
        ``options`` are the constructor's, less ``clap_model_name`` and ``allow_download``."""
        conditioner = cls.__new__(cls)
        defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
                    if name not in ("self", "clap_model_name", "allow_download")}
        unknown = set(options) - set(defaults)
        if unknown:
            raise ConfigError(f"{sorted(unknown)}: unknown settings; valid settings: {', '.join(defaults)}")
        options = {**defaults, **options}
        conditioner._check(**options)
        conditioner._setup(clap, tokenizer, **options)
        return conditioner

    @staticmethod
    def _check(*, use_text_features: Any, feature_layer_ix: Any, output_dim: Any, project_out: Any,
               **text_options: Any) -> None:
        problems = check_text_options(**text_options)
        if not isinstance(use_text_features, bool):
            problems.append(f"use_text_features: expected true or false; got {use_text_features!r}")
        problems += check_int("feature_layer_ix", feature_layer_ix)
        if problems:
            raise ConfigError(problems)

    def _setup(self, clap: nn.Module, tokenizer: Any, *, output_dim: int | None, use_text_features: bool,
               feature_layer_ix: int, max_length: int | None, **options: Any) -> None:
        layers = clap.config.text_config.num_hidden_layers
        if not -(layers + 1) <= feature_layer_ix <= layers:
            raise ConfigError(f"feature_layer_ix: the model has {layers} layers (hidden states "
                              f"{-(layers + 1)}..{layers}); got {feature_layer_ix}")
        max_length = max_length or min(getattr(tokenizer, "model_max_length", 512), 512)
        dim = clap.config.text_config.hidden_size if use_text_features else clap.config.projection_dim
        TransformerTextConditioner.__init__(self, _ClapText(clap), tokenizer, dim, output_dim,
                                            max_length=max_length, pooled=not use_text_features, **options)
        self.use_text_features = use_text_features
        self.feature_layer_ix = feature_layer_ix

    def run_encoder(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.use_text_features:
            out = self.encoder.text_model(input_ids=ids, attention_mask=attention_mask, output_hidden_states=True)
            return out.hidden_states[self.feature_layer_ix]
        return self.encoder.embed(ids, attention_mask).unsqueeze(1)


class JointTokens(NamedTuple):
    """CPU preparation of a joint batch.

    text_ids, text_attention: [N_text, T] for the items embedded from text (``text_rows``).
    audio_features: the feature extractor's tensors for N audio windows; window_owner [N] says
    which item each window belongs to. mask: [B, 1], False for null items.
    """

    text_ids: torch.Tensor
    text_attention: torch.Tensor
    text_rows: torch.Tensor
    audio_features: dict[str, torch.Tensor]
    window_owner: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device | str) -> JointTokens:
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return JointTokens(move(self.text_ids), move(self.text_attention), move(self.text_rows),
                           {k: move(v) for k, v in self.audio_features.items()}, move(self.window_owner),
                           move(self.mask))


SOURCES = ("audio", "text")


@register_conditioner("clap")
class ClapConditioner(BaseConditioner):
    """Joint CLAP embedding of audio or text: [B, 1, output_dim] (see the module docstring).

    Args:
        output_dim: condition width; default: CLAP's projection width.
        clap_model_name: hub name (in the Hugging Face cache) or local ClapModel directory.
        train_source, eval_source: which of an item's audio or text to embed when tokenized with
            ``train=True`` and otherwise (the other is used when that one is missing).
        enable_grad, autocast_dtype, project_out, allow_download: as ClapTextConditioner.
    """

    kind = "joint_embed"

    def __init__(self, output_dim: int | None = None, clap_model_name: str = "laion/larger_clap_music",
                 train_source: str = "audio", eval_source: str = "text", enable_grad: bool = False,
                 project_out: bool = False, autocast_dtype: str = "float32", allow_download: bool = False):
        problems = check_autocast_dtype(autocast_dtype)
        for name, value in (("train_source", train_source), ("eval_source", eval_source)):
            if value not in SOURCES:
                problems.append(f"{name}: expected one of {', '.join(SOURCES)}; got {value!r}")
        if not isinstance(enable_grad, bool):
            problems.append(f"enable_grad: expected true or false; got {enable_grad!r}")
        if problems:
            raise ConfigError(problems)
        clap, processor = load_clap(clap_model_name, allow_download, "the clap conditioner")
        dim = clap.config.projection_dim
        super().__init__(dim, dim if output_dim is None else output_dim, project_out)
        self.text = _ClapText(clap)
        self.audio_model = clap.audio_model
        self.audio_projection = clap.audio_projection
        self.tokenizer = processor.tokenizer
        self.feature_extractor = processor.feature_extractor
        self.train_source, self.eval_source = train_source, eval_source
        self.enable_grad = enable_grad
        self.autocast_dtype = autocast_dtype
        self.max_length = min(getattr(self.tokenizer, "model_max_length", 512), 512)
        if not enable_grad:
            freeze(self, "text", "audio_model", "audio_projection")
        self.train(self.training)

    @property
    def sample_rate(self) -> int:
        """CLAP's audio rate (Hz)."""
        return int(self.feature_extractor.sampling_rate)

    @property
    def window_samples(self) -> int:
        """Samples per CLAP window at ``sample_rate``."""
        return int(self.feature_extractor.nb_max_samples)

    def train(self, mode: bool = True) -> ClapConditioner:
        super().train(mode)
        for name in ("text", "audio_model", "audio_projection"):
            getattr(self, name).train(mode and self.enable_grad)
        return self

    def audio_windows(self, item: JointEmbedCondition) -> list[np.ndarray]:
        """One item's audio, mono at CLAP's rate, cut in windows of ``window_samples``."""
        assert item.wav is not None and item.sample_rate is not None and item.length is not None
        wav = prepare_waveform(item.wav, item.sample_rate, self.sample_rate, item.length).numpy()
        if wav.size == 0:
            return []
        return [wav[start: start + self.window_samples] for start in range(0, wav.size, self.window_samples)]

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> JointTokens:
        return self._tokenize_joint(values, train)  # type: ignore[arg-type]

    def _tokenize_joint(self, values: Sequence[JointEmbedCondition | None], train: bool) -> JointTokens:
        preferred = self.train_source if train else self.eval_source
        texts: list[str] = []
        text_rows: list[int] = []
        windows: list[np.ndarray] = []
        owners: list[int] = []
        present: list[bool] = []
        for i, item in enumerate(values):
            has_audio = item is not None and item.wav is not None and item.length
            has_text = item is not None and bool(item.text and item.text.strip())
            source = preferred if (has_audio if preferred == "audio" else has_text) else (
                "text" if preferred == "audio" and has_text else "audio" if has_audio else None)
            if source == "audio":
                item_windows = self.audio_windows(item)
                windows += item_windows
                owners += [i] * len(item_windows)
            elif source == "text":
                texts.append(item.text)
                text_rows.append(i)
            present.append(source is not None)
        if texts:
            encoded = self.tokenizer(texts, padding="longest", truncation=True, max_length=self.max_length,
                                     return_tensors="pt")
            text_ids, text_attention = encoded["input_ids"], encoded["attention_mask"]
        else:
            text_ids = text_attention = torch.zeros(0, 1, dtype=torch.long)
        features = {}
        if windows:
            extracted = self.feature_extractor(windows, sampling_rate=self.sample_rate, return_tensors="pt")
            features = {k: v for k, v in extracted.items() if k in ("input_features", "is_longer")}
        return JointTokens(text_ids, text_attention, torch.tensor(text_rows, dtype=torch.long), features,
                           torch.tensor(owners, dtype=torch.long), torch.tensor(present).unsqueeze(1))

    def embed_audio(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Feature-extractor tensors for N windows -> L2-normalised [N, D]."""
        pooled = self.audio_model(**features).pooler_output
        return F.normalize(self.audio_projection(pooled), dim=-1)

    def encode(self, tokens: JointTokens) -> Condition:
        batch = tokens.mask.shape[0]
        dtype = next(self.audio_projection.parameters()).dtype
        out = torch.zeros(batch, self.dim, device=tokens.mask.device, dtype=dtype)
        with torch.set_grad_enabled(self.enable_grad and torch.is_grad_enabled()), \
                autocast(tokens.mask.device, self.autocast_dtype):
            if tokens.text_rows.numel():
                out = out.index_copy(0, tokens.text_rows, self.text.embed(tokens.text_ids, tokens.text_attention).to(dtype))
            if tokens.window_owner.numel():
                features = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in tokens.audio_features.items()}
                windows = self.embed_audio(features).to(dtype)  # [N, D]
                summed = torch.zeros_like(out).index_add(0, tokens.window_owner, windows)
                has_audio = torch.zeros(batch, dtype=torch.bool, device=out.device)
                has_audio[tokens.window_owner] = True
                out = torch.where(has_audio[:, None], F.normalize(summed, dim=-1), out)
        return Condition(out.unsqueeze(1), tokens.mask)

    def extra_repr(self) -> str:
        return (f"train_source={self.train_source!r}, eval_source={self.eval_source!r}, "
                f"frozen={not self.enable_grad}, " + super().extra_repr())


@register_conditioner("clap_audio")
class ClapAudioConditioner(ClapConditioner):
    """CLAP audio embedding [B, 1, D] of a waveform (``WavCondition``), as ``clap`` embeds audio.

    Args: as ClapConditioner, less the sources (always the audio).
    """

    kind = "wav"

    def __init__(self, output_dim: int | None = None, clap_model_name: str = "laion/larger_clap_music",
                 enable_grad: bool = False, project_out: bool = False, autocast_dtype: str = "float32",
                 allow_download: bool = False):
        super().__init__(output_dim, clap_model_name, train_source="audio", eval_source="audio",
                         enable_grad=enable_grad, project_out=project_out, autocast_dtype=autocast_dtype,
                         allow_download=allow_download)

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> JointTokens:
        waves: Sequence[WavCondition | None] = values  # type: ignore[assignment]
        joint = [None if w is None else JointEmbedCondition(wav=w.wav, sample_rate=w.sample_rate, length=w.length)
                 for w in waves]
        return self._tokenize_joint(joint, train)
