"""``ConditionProvider``: a batch of metadata -> ``{name: Condition}`` from a set of conditioners.

Notation: B batch, T condition length, D width.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from cuecraft.attributes import ConditioningAttributes, Route, to_attributes
from cuecraft.condition import Condition
from cuecraft.conditioners.base import BaseConditioner, Tokens
from cuecraft.errors import ConditioningInputError, ConfigError

Batch = Sequence[Any]  # metadata dicts, ConditioningAttributes or SegmentWithAttributes items


class ConditionProvider(nn.Module):
    """Runs named conditioners over a batch.

    Args:
        conditioners: ``{name: conditioner}``. A conditioner reads the attribute of its own kind
            and name; from a plain metadata dict it reads the key ``name``.
        default_keys: ``{name: key}``: the metadata key to read when ``name`` itself is absent
            (stable-audio-tools' ``default_keys``, e.g. ``{"prompt_t5": "prompt"}``).
        pre_encoded_keys: names whose values arrive already embedded: a float tensor [T, D] (or
            [D]) per item, with D the conditioner's ``output_dim``; the conditioner is skipped.

    Use ``tokenize(batch)`` (CPU work, e.g. in a data loader) then ``forward(tokens)`` (on the
    provider's device), or ``condition(batch)`` for both. None values and dropped-out attributes
    become null conditions.
    """

    def __init__(self, conditioners: Mapping[str, BaseConditioner], default_keys: Mapping[str, str] | None = None,
                 pre_encoded_keys: Sequence[str] = ()):
        super().__init__()
        default_keys = dict(default_keys or {})
        problems = []
        for name in pre_encoded_keys:
            if name not in conditioners:
                problems.append(f"pre_encoded_keys: no conditioner is named {name!r}; names: {sorted(conditioners)}")
        for name, conditioner in conditioners.items():
            if not isinstance(conditioner, BaseConditioner):
                problems.append(f"conditioners.{name}: expected a BaseConditioner; got {type(conditioner).__name__}")
        for name, key in default_keys.items():
            if name not in conditioners:
                problems.append(f"default_keys.{name}: no conditioner is named {name!r}; names: {sorted(conditioners)}")
            elif not isinstance(key, str):
                problems.append(f"default_keys.{name}: expected a str key; got {key!r}")
        if not conditioners:
            problems.append("conditioners: at least one conditioner is needed")
        if problems:
            raise ConfigError(problems)
        self.conditioners = nn.ModuleDict(dict(conditioners))
        self.default_keys = default_keys
        self.pre_encoded_keys = frozenset(pre_encoded_keys)
        self._takes_generator = {name for name, c in self.conditioners.items()
                                 if "generator" in inspect.signature(c.tokenize).parameters}
        self.routes = [
            Route(name, "embedding" if name in self.pre_encoded_keys else c.kind,
                  (name, default_keys[name]) if name in default_keys else (name,))
            for name, c in self.conditioners.items()
        ]

    def to_attributes(self, batch: Batch) -> list[ConditioningAttributes]:
        """Check and convert every item into ConditioningAttributes holding what the conditioners read."""
        if isinstance(batch, (Mapping, ConditioningAttributes, str)) or not isinstance(batch, Sequence):
            raise ConditioningInputError(
                f"expected a batch: a list of metadata dicts or ConditioningAttributes; got {type(batch).__name__}"
            )
        if len(batch) == 0:
            raise ConditioningInputError("the batch is empty; give at least one item")
        return [to_attributes(item, self.routes, i) for i, item in enumerate(batch)]

    def tokenize(self, batch: Batch, *, generator: torch.Generator | None = None) -> dict[str, Tokens]:
        """CPU-side preparation for every conditioner; no device work.

        ``generator`` draws the randomness of tokenizers that have some (text word dropout in
        training); conditioners whose ``tokenize`` takes no ``generator`` are called without it.
        """
        attributes = self.to_attributes(batch)
        tokens = {}
        for route in self.routes:
            values = [item.get(route.kind, route.name) for item in attributes]
            try:
                if route.kind == "embedding":
                    tokens[route.name] = self._stack_embeddings(route.name, values)
                    continue
                conditioner = self.conditioners[route.name]
                if generator is not None and route.name in self._takes_generator:
                    tokens[route.name] = conditioner.tokenize(values, generator=generator)
                else:
                    tokens[route.name] = conditioner.tokenize(values)
            except ConditioningInputError as error:
                raise ConditioningInputError(f"condition '{route.name}', {error}") from None
        return tokens

    def forward(self, tokens: Mapping[str, Tokens]) -> dict[str, Condition]:
        """Embed tokens on the provider's device: ``{name: Condition([B, T, D], [B, T])}``."""
        missing = [name for name in self.conditioners if name not in tokens]
        if missing:
            raise ConditioningInputError(f"tokens missing for conditions {missing}; got {sorted(tokens)}")
        return {
            name: self._pre_encoded(name, tokens[name]) if name in self.pre_encoded_keys else conditioner(tokens[name])
            for name, conditioner in self.conditioners.items()
        }

    def _stack_embeddings(self, name: str, values: Sequence[torch.Tensor | None]) -> Tokens:
        """Pre-encoded values [T_i, D] -> Tokens(values [B, T, D] zero-padded, mask [B, T]); an
        all-None batch has the conditioner's ``null_length``."""
        conditioner = self.conditioners[name]
        width = conditioner.output_dim
        for i, value in enumerate(values):
            if value is not None and value.shape[-1] != width:
                raise ConditioningInputError(f"item {i}: a pre-encoded embedding of width {width} is expected "
                                             f"(the conditioner's output_dim); got shape {tuple(value.shape)}")
        length = max([conditioner.null_length] + [v.shape[0] for v in values if v is not None])
        embedding = torch.zeros(len(values), length, width)
        mask = torch.zeros(len(values), length, dtype=torch.bool)
        for i, value in enumerate(values):
            if value is not None:
                embedding[i, : value.shape[0]] = value
                mask[i, : value.shape[0]] = True
        return Tokens(embedding, mask)

    def _pre_encoded(self, name: str, tokens: Tokens) -> Condition:
        """Pre-encoded tokens on the conditioner's device, in its dtype."""
        conditioner = self.conditioners[name]
        tokens = tokens.to(conditioner.device)
        return Condition(tokens.values.to(conditioner.dtype), tokens.mask)

    def condition(self, batch: Batch, *, generator: torch.Generator | None = None) -> dict[str, Condition]:
        """``forward(tokenize(batch))``."""
        return self(self.tokenize(batch, generator=generator))
