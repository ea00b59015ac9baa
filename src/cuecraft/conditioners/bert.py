"""A BERT encoder and its tokenizer without transformers, for the sentence conditioner.

Importing transformers' ``AutoModel`` stack (torch._dynamo, torch.distributed.tensor,
scipy.optimize) takes about 3 s of every new process, more than generating 8 s of audio; the
default MiniLM is a plain 6-layer BERT. ``load_bert`` reads a transformers BERT directory
(``config.json`` with ``model_type: bert``, ``model.safetensors``, ``tokenizer.json``) with
``tokenizers`` and ``safetensors`` alone and returns a module with BertModel's parameter names and
its numbers (tests/conditioners/test_bert.py compares them), or None for any other directory (the
caller then loads it with transformers).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, eps: float):
        super().__init__()
        self.heads = heads
        self.self = nn.Module()
        self.self.query, self.self.key, self.self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.output = nn.Module()
        self.output.dense, self.output.LayerNorm = nn.Linear(dim, dim), nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """x [B, T, D], keep bool [B, 1, 1, T] -> [B, T, D]."""
        b, t, d = x.shape
        q, k, v = (layer(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)  # [B, H, T, D / H]
                   for layer in (self.self.query, self.self.key, self.self.value))
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(b, t, d)
        return self.output.LayerNorm(self.output.dense(context) + x)


class _Layer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, eps: float):
        super().__init__()
        self.attention = _Attention(dim, heads, eps)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(dim, hidden)
        self.output = nn.Module()
        self.output.dense, self.output.LayerNorm = nn.Linear(hidden, dim), nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, keep)
        return self.output.LayerNorm(self.output.dense(F.gelu(self.intermediate.dense(x))) + x)


class BertEncoder(nn.Module):
    """BertModel's forward in eval mode (absolute positions, token type 0, exact GELU; no dropout, no pooler):
    ``encoder(input_ids=[B, T], attention_mask=[B, T]).last_hidden_state`` is [B, T, D]."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        dim, eps = config["hidden_size"], config["layer_norm_eps"]
        self.config = SimpleNamespace(**config)
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(config["vocab_size"], dim)
        self.embeddings.position_embeddings = nn.Embedding(config["max_position_embeddings"], dim)
        self.embeddings.token_type_embeddings = nn.Embedding(config["type_vocab_size"], dim)
        self.embeddings.LayerNorm = nn.LayerNorm(dim, eps=eps)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(
            _Layer(dim, config["num_attention_heads"], config["intermediate_size"], eps)
            for _ in range(config["num_hidden_layers"]))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        e = self.embeddings
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = e.word_embeddings(input_ids) + e.position_embeddings(positions) + e.token_type_embeddings.weight[0]
        x = e.LayerNorm(x)
        keep = attention_mask.bool()[:, None, None, :]  # [B, 1, 1, T]: padding is never attended
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return SimpleNamespace(last_hidden_state=x)


class BertTokenizer:
    """The part of a transformers fast tokenizer's call the text conditioners use:
    ``tokenizer(texts, padding=False | "longest" | "max_length", truncation=..., max_length=...,
    return_tensors=None | "pt")`` -> {"input_ids", "attention_mask"}, from ``tokenizer.json``."""

    def __init__(self, path: Path, model_max_length: int, pad_id: int):
        import tokenizers

        self._tokenizer = tokenizers.Tokenizer.from_file(str(path))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.model_max_length = model_max_length
        self.pad_id = pad_id

    def __call__(self, texts: str | list[str], *, padding: bool | str = False, truncation: bool = False,
                 max_length: int | None = None, return_tensors: str | None = None) -> dict[str, Any]:
        single = isinstance(texts, str)
        ids = [e.ids for e in self._tokenizer.encode_batch([texts] if single else list(texts))]
        if truncation:
            limit = max_length or self.model_max_length
            ids = [row if len(row) <= limit else [*row[: limit - 1], row[-1]] for row in ids]  # keeps [SEP]
        width = max_length if padding == "max_length" else max(map(len, ids)) if padding in (True, "longest") \
            else None
        masks = [[1] * len(row) + [0] * ((width or len(row)) - len(row)) for row in ids]
        ids = [row + [self.pad_id] * ((width or len(row)) - len(row)) for row in ids]
        if return_tensors == "pt":
            return {"input_ids": torch.tensor(ids, dtype=torch.long), "attention_mask": torch.tensor(masks)}
        return {"input_ids": ids[0] if single else ids, "attention_mask": masks[0] if single else masks}


def load_bert(folder: Path) -> tuple[BertEncoder, BertTokenizer] | None:
    """(encoder, tokenizer) of a transformers BERT directory, or None where it is not one this
    module reads exactly (another architecture, no tokenizer.json or model.safetensors, no
    tokenizers package)."""
    try:
        import tokenizers  # noqa: F401
        from safetensors.torch import load_file
    except ImportError:
        return None
    files = [folder / name for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors")]
    if not all(f.is_file() for f in files):
        return None
    config = json.loads(files[0].read_text())
    tokenizer_config = json.loads(files[2].read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu" \
            or config.get("position_embedding_type", "absolute") != "absolute" \
            or tokenizer_config.get("tokenizer_class") not in ("BertTokenizer", "BertTokenizerFast"):
        return None
    encoder = BertEncoder(config)
    state = {k: v for k, v in load_file(str(files[3])).items()
             if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    state = {k.removeprefix("bert."): v for k, v in state.items()}
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:  # not a plain BertModel checkpoint: transformers decides
        return None
    length = tokenizer_config.get("model_max_length", 512)
    tokenizer = BertTokenizer(files[1], int(length) if isinstance(length, int) and length < 10**9 else 512,
                              int(config.get("pad_token_id", 0)))
    return encoder.eval(), tokenizer

