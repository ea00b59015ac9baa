"""Lookup-table conditioners over strings: hashed words (``lut``) and fixed labels (``list``).

Notation: B batch, T tokens, D width.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from cuecraft.condition import Condition
from cuecraft.attributes import AttributeValue
from cuecraft.conditioners.base import BaseConditioner, ValueTokens, check_int, index_tokens
from cuecraft.conditioners.registry import register_conditioner
from cuecraft._optional import require
from cuecraft._text import short_repr
from cuecraft.errors import ConditioningInputError, ConfigError, MissingDependencyError

# Words are runs of letters, digits and underscores (any script), after lower-casing, so
# punctuation never becomes a token and "Techno," and "techno" hash alike.
_WORD = re.compile(r"\w+")
LUT_TOKENIZERS = ("whitespace", "noop")
EMPTY_TEXT = ("null", "embed")  # "": the null condition (cuecraft), or a real token (AudioCraft's noop)


@lru_cache(maxsize=1 << 16)
def hash_token(token: str, n_bins: int) -> int:
    """SHA-256 of the UTF-8 token, as an integer, modulo ``n_bins``: stable across processes
    (unlike Python's ``hash``) and the bucket AudioCraft's hash trick gives the same token. (Its
    ``whitespace`` tokenizer makes other tokens than ours: spaCy lemmas, no lower-casing.)"""
    return int.from_bytes(hashlib.sha256(token.encode("utf-8")).digest(), "big") % n_bins


def split_words(text: str) -> list[str]:
    """The ``whitespace`` tokenizer's words: lower-cased runs of word characters."""
    return _WORD.findall(text.lower())


# AudioCraft drops a token whose text is in this string (a substring test, as it does).
SPACY_PUNCTUATION = "?:!.,;"


@lru_cache(maxsize=4)
def _spacy_pipeline(model: str) -> Any:
    spacy = require("spacy", extra="text", purpose="lemmas for the lut conditioner (lemmas=true)")
    try:
        return spacy.load(model)
    except OSError as error:  # the model is not installed: spaCy never downloads here
        raise MissingDependencyError(
            f"lemmas: the spaCy pipeline {model!r} is not installed ({error}); install it with "
            f"`python -m spacy download {model}` on a machine with network, or set lemmas: false") from None


def _spell_numbers(text: str) -> str:
    """Digits as words (num2words, as AudioCraft does) when num2words is installed."""
    try:
        from num2words import num2words  # type: ignore[import-not-found]
    except ImportError:
        return text
    return re.sub(r"\d+", lambda match: num2words(int(match.group(0))), text)


def lemma_words(text: str, model: str = "en_core_web_sm") -> list[str]:
    """AudioCraft's WhiteSpaceTokenizer words: numbers spelt out (with num2words), the spaCy
    pipeline's tokens without stop words and ``?:!.,;``, each as its lemma."""
    doc = _spacy_pipeline(model)(_spell_numbers(text))
    return [token.lemma_ for token in doc if not token.is_stop and token.text not in SPACY_PUNCTUATION]


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
        empty_text: ``null`` (default: "" is the null condition) or ``embed`` (AudioCraft's
            noop tokenizer: "" is hashed like any label, one real token). A whitespace text
            without words has no tokens either way.
        lemmas: with ``whitespace``, tokenize as AudioCraft's WhiteSpaceTokenizer does with
            spaCy: stop words and the punctuation ``?:!.,;`` dropped, each word's lemma hashed
            (not lower-cased), digits spelt out when ``num2words`` is installed. Needs spaCy and
            ``spacy_model``; off by default.
        spacy_model: the spaCy pipeline for ``lemmas`` (AudioCraft's: en_core_web_sm).

    Output: [B, T, output_dim] with T the longest token count in the batch (at least 1).
    Padding, empty strings (unless ``empty_text="embed"``) and None are masked (and zero).
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
        empty_text: str = "null",
        lemmas: bool = False,
        spacy_model: str = "en_core_web_sm",
    ):
        problems = check_int("n_bins", n_bins, minimum=1)
        if tokenizer not in LUT_TOKENIZERS:
            problems.append(f"tokenizer: expected one of {', '.join(LUT_TOKENIZERS)}; got {tokenizer!r}")
        if empty_text not in EMPTY_TEXT:
            problems.append(f"empty_text: expected one of {', '.join(EMPTY_TEXT)}; got {empty_text!r}")
        if not isinstance(lemmas, bool):
            problems.append(f"lemmas: expected true or false; got {lemmas!r}")
        elif lemmas and tokenizer != "whitespace":
            problems.append(f"lemmas: only the whitespace tokenizer uses lemmas; tokenizer is {tokenizer!r}")
        if not isinstance(spacy_model, str) or not spacy_model:
            problems.append(f"spacy_model: expected the name or path of a spaCy pipeline; got {spacy_model!r}")
        if problems:
            raise ConfigError(problems)
        super().__init__(dim, output_dim, project_out)
        self.n_bins = n_bins
        self.tokenizer = tokenizer
        self.empty_text = empty_text
        self.lemmas = lemmas
        self.spacy_model = spacy_model
        self.embed = nn.Embedding(n_bins, dim)

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> ValueTokens:
        rows: list[list[int]] = []
        embed_empty = self.empty_text == "embed"
        for text in values:
            if text is None or (text == "" and not embed_empty):
                rows.append([])
            elif self.tokenizer == "whitespace":
                words = lemma_words(text, self.spacy_model) if self.lemmas else split_words(text)  # type: ignore[arg-type]
                rows.append([hash_token(word, self.n_bins) for word in words])
            else:
                rows.append([hash_token(text, self.n_bins)])  # type: ignore[arg-type]
        return pad_ids(rows, self.null_length)

    def encode(self, tokens: ValueTokens) -> Condition:
        return Condition(self.embed(tokens.values), tokens.mask)

    def extra_repr(self) -> str:
        return (f"n_bins={self.n_bins}, tokenizer={self.tokenizer!r}, empty_text={self.empty_text!r}, "
                f"lemmas={self.lemmas}, " + super().extra_repr())


UNKNOWN_LABEL_POLICIES = ("error", "null", "row0")
MISSING_LABEL_POLICIES = ("null", "row0")


@register_conditioner("list")
class ListConditioner(BaseConditioner):
    """A class label from a fixed list of options, embedded by a table.

    Args:
        output_dim: condition width.
        options: the allowed labels (unique strings).
        unknown: ``error`` (default): a label not in ``options`` is an error listing them;
            ``null``: such a label gives the null condition; ``row0``: it gets row 0, unmasked
            (stable-audio-tools', a defect: a typo silently becomes the "no label" row).
        missing: what None gives: ``null`` (default: the null condition, zeros and a False mask)
            or ``row0`` (stable-audio-tools': the learned row 0, unmasked, which is what its
            models saw for items without a label).
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
        missing: str = "null",
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
        if missing not in MISSING_LABEL_POLICIES:
            problems.append(f"missing: expected one of {', '.join(MISSING_LABEL_POLICIES)}; got {missing!r}")
        if problems:
            raise ConfigError(problems)
        super().__init__(output_dim, output_dim, project_out)
        self.options = list(options)
        self.unknown = unknown
        self.missing = missing
        self._row = {label: i + 1 for i, label in enumerate(self.options)}
        self.embedder = nn.Embedding(len(self.options) + 1, output_dim)

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> ValueTokens:
        rows = []
        for i, label in enumerate(values):
            if label is None:
                row = 0 if self.missing == "row0" else None
            else:
                row = self._row.get(label)  # type: ignore[arg-type]
                if row is None and self.unknown == "error":
                    raise ConditioningInputError(
                        f"item {i}: unknown label {short_repr(label)}; expected one of "
                        f"{short_repr(list(self.options), 400)} or None"
                    )
                if row is None and self.unknown == "row0":
                    row = 0
            rows.append(row)
        return index_tokens(rows)

    def encode(self, tokens: ValueTokens) -> Condition:
        return Condition(self.embedder(tokens.values), tokens.mask)

    def extra_repr(self) -> str:
        return f"options={self.options}, unknown={self.unknown!r}, missing={self.missing!r}, " + super().extra_repr()
