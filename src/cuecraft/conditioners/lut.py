"""Lookup-table conditioners over strings: hashed words (``lut``) and fixed labels (``list``).

Notation: B batch, T tokens, D width.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import nn

from cuecraft.condition import Condition
from cuecraft.attributes import AttributeValue
from cuecraft.conditioners.base import BaseConditioner, ValueTokens, check_int, index_tokens
from cuecraft.conditioners.registry import register_conditioner
from cuecraft.errors import ConditioningInputError, ConfigError

# Words are runs of letters, digits and underscores (any script), after lower-casing, so
# punctuation never becomes a token and "Techno," and "techno" hash alike.
_WORD = re.compile(r"\w+")
LUT_TOKENIZERS = ("whitespace", "noop")


@lru_cache(maxsize=1 << 16)
def hash_token(token: str, n_bins: int) -> int:
    """SHA-256 of the UTF-8 token, as an integer, modulo ``n_bins``: stable across processes
    (unlike Python's ``hash``) and the bucket AudioCraft's hash trick gives the same token. (Its
    ``whitespace`` tokenizer makes other tokens than ours: spaCy lemmas, no lower-casing.)"""
    return int.from_bytes(hashlib.sha256(token.encode("utf-8")).digest(), "big") % n_bins


def split_words(text: str) -> list[str]:
    """The ``whitespace`` tokenizer's words: lower-cased runs of word characters."""
    return _WORD.findall(text.lower())


def pad_ids(rows: Sequence[Sequence[int]], min_length: int) -> ValueTokens:
    """Right-pad id lists with 0 into [B, T] (T = longest row, at least ``min_length``) + mask."""
    lengths = [len(row) for row in rows]
    length = max(min_length, max(lengths))
    ids = torch.tensor([[*row, *([0] * (length - len(row)))] for row in rows], dtype=torch.long)
    mask = torch.arange(length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # [B, T]
    return ValueTokens(ids, mask)


@register_conditioner("lut")
class LUTConditioner(BaseConditioner):
    """An embedding table over hashed text tokens.

    Args:
        n_bins: table size; tokens are hashed into [0, n_bins).
        dim: table width.
        output_dim: condition width (a projection is added when it differs from ``dim``).
        tokenizer: ``whitespace`` (one token per lower-cased word; needs no language model) or
            ``noop`` (the whole string is one token, for labels such as a genre).
        project_out: see BaseConditioner.

    Output: [B, T, output_dim] with T the longest token count in the batch (at least 1).
    Padding, empty strings and None are masked (and zero).
    """

    kind = "text"
    output_length = None

    def __init__(
        self,
        n_bins: int,
        dim: int,
        output_dim: int,
        tokenizer: str = "whitespace",
        project_out: bool = False,
    ):
        problems = check_int("n_bins", n_bins, minimum=1)
        if tokenizer not in LUT_TOKENIZERS:
            problems.append(f"tokenizer: expected one of {', '.join(LUT_TOKENIZERS)}; got {tokenizer!r}")
        if problems:
            raise ConfigError(problems)
        super().__init__(dim, output_dim, project_out)
        self.n_bins = n_bins
        self.tokenizer = tokenizer
        self.embed = nn.Embedding(n_bins, dim)

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> ValueTokens:
        rows: list[list[int]] = []
        for text in values:
            if not text:  # None or ""
                rows.append([])
            elif self.tokenizer == "whitespace":
                rows.append([hash_token(word, self.n_bins) for word in split_words(text)])  # type: ignore[arg-type]
            else:
                rows.append([hash_token(text, self.n_bins)])  # type: ignore[arg-type]
        return pad_ids(rows, self.null_length)

    def encode(self, tokens: ValueTokens) -> Condition:
        return Condition(self.embed(tokens.values), tokens.mask)

    def extra_repr(self) -> str:
        return f"n_bins={self.n_bins}, tokenizer={self.tokenizer!r}, " + super().extra_repr()


UNKNOWN_LABEL_POLICIES = ("error", "null")


@register_conditioner("list")
class ListConditioner(BaseConditioner):
    """A class label from a fixed list of options, embedded by a table.

    Args:
        output_dim: condition width.
        options: the allowed labels (unique strings).
        unknown: ``error`` (default): a label not in ``options`` is an error listing them;
            ``null``: such a label gives the null condition.
        project_out: see BaseConditioner.

    Output: [B, 1, output_dim]. The table has ``len(options) + 1`` rows and option i uses row
    i + 1 (row 0 is kept so stable-audio-tools' trained tables load as they are).
    """

    kind = "text"

    def __init__(
        self,
        output_dim: int,
        options: Sequence[str],
        unknown: str = "error",
        project_out: bool = False,
    ):
        problems = []
        if isinstance(options, str) or not isinstance(options, Sequence) or not options:
            problems.append(f"options: expected a non-empty list of labels; got {options!r}")
        elif not all(isinstance(o, str) for o in options):
            problems.append(f"options: every label must be a str; got {list(options)!r}")
        elif len(set(options)) != len(options):
            duplicates = sorted({o for o in options if list(options).count(o) > 1})
            problems.append(f"options: labels must be unique; repeated: {duplicates}")
        if unknown not in UNKNOWN_LABEL_POLICIES:
            problems.append(f"unknown: expected one of {', '.join(UNKNOWN_LABEL_POLICIES)}; got {unknown!r}")
        if problems:
            raise ConfigError(problems)
        super().__init__(output_dim, output_dim, project_out)
        self.options = list(options)
        self.unknown = unknown
        self._row = {label: i + 1 for i, label in enumerate(self.options)}
        self.embedder = nn.Embedding(len(self.options) + 1, output_dim)

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> ValueTokens:
        rows = []
        for i, label in enumerate(values):
            row = None if label is None else self._row.get(label)
            if row is None and label is not None and self.unknown == "error":
                raise ConditioningInputError(
                    f"item {i}: unknown label {label!r}; expected one of {self.options} or None"
                )
            rows.append(row)
        return index_tokens(rows)

    def encode(self, tokens: ValueTokens) -> Condition:
        return Condition(self.embedder(tokens.values), tokens.mask)

    def extra_repr(self) -> str:
        return f"options={self.options}, unknown={self.unknown!r}, " + super().extra_repr()
