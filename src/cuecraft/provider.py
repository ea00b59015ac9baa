"""``ConditionProvider``: a batch of metadata -> ``{name: Condition}`` from a set of conditioners.

Notation: B batch, T condition length, D width.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from cuecraft._text import short_keys, short_repr
from cuecraft.attributes import (EXPECTED, ConditioningAttributes, Route, check_column, routes_checked, symbolic_value,
                                 to_attributes)
from cuecraft.condition import Condition
from cuecraft.conditioners.base import BaseConditioner, Tokens, ValueTokens
from cuecraft.errors import ConditioningInputError, ConfigError

Batch = Sequence[Any]  # metadata dicts, ConditioningAttributes or SegmentWithAttributes items


class ConditionProvider(nn.Module):
    """Runs named conditioners over a batch.

    Args:
        conditioners: ``{name: conditioner}``. A conditioner reads the attribute of its own kind
            and name; from a plain metadata dict it reads the key ``name`` (a ``symbolic``
            conditioner reads the keys of its ``metadata_keys``, whatever its name).
        default_keys: ``{name: key}``: the metadata key to read when ``name`` itself is absent
            (stable-audio-tools' ``default_keys``, e.g. ``{"prompt_t5": "prompt"}``).
        pre_encoded_keys: names whose values arrive already embedded: a float tensor [T, D] (or
            [D]) per item, with D the conditioner's ``output_dim``; the conditioner is skipped.

    Use ``tokenize(batch, train=..., generator=...)`` (CPU work, stateless, e.g. in data-loader
    workers) then ``forward(tokens)`` (on the provider's device), or ``condition(batch)`` for
    both. None values and dropped-out attributes become null conditions. Items already made by
    ``to_attributes`` are not checked again.
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
            if not isinstance(name, str) or not name or "." in name:  # torch module names
                problems.append(f"conditioners: a name must be a non-empty str without '.'; got {short_repr(name)}")
            if not isinstance(conditioner, BaseConditioner):
                problems.append(f"conditioners.{name}: expected a BaseConditioner; got {type(conditioner).__name__}")
        for name, key in default_keys.items():
            if name not in conditioners:
                problems.append(f"default_keys.{name}: no conditioner is named {name!r}; names: {sorted(conditioners)}")
            elif getattr(conditioners[name], "kind", None) == "symbolic":
                problems.append(f"default_keys.{name}: a symbolic condition reads its own metadata fields "
                                f"({', '.join(conditioners[name].metadata_keys)}); it takes no default key")
            elif not isinstance(key, str):
                problems.append(f"default_keys.{name}: expected a str key; got {key!r}")
        if not conditioners:
            problems.append("conditioners: at least one conditioner is needed")
        if problems:
            raise ConfigError(problems)
        self.conditioners = nn.ModuleDict(dict(conditioners))
        self.default_keys = default_keys
        self.pre_encoded_keys = frozenset(pre_encoded_keys)
        self.routes = [
            Route(name, "embedding" if name in self.pre_encoded_keys else c.kind,
                  tuple(c.metadata_keys) if c.kind == "symbolic" and name not in self.pre_encoded_keys
                  else (name, default_keys[name]) if name in default_keys else (name,))
            for name, c in self.conditioners.items()
        ]
        self._checked = routes_checked(self.routes)
        # (route, conditioner or None for pre-encoded) in order, looked up once, not per call.
        self._plan = [(route, None if route.kind == "embedding" else self.conditioners[route.name])
                      for route in self.routes]

    def to_attributes(self, batch: Batch) -> list[ConditioningAttributes]:
        """Check and convert every item into ConditioningAttributes holding what the conditioners
        read. Items this provider (or one reading the same conditions) converted already come
        back as they are."""
        if isinstance(batch, (Mapping, ConditioningAttributes, str)) or not isinstance(batch, Sequence):
            raise ConditioningInputError(
                f"expected a batch: a list of metadata dicts or ConditioningAttributes; got {type(batch).__name__}"
            )
        if len(batch) == 0:
            raise ConditioningInputError("the batch is empty; give at least one item")
        routes, checked = self.routes, self._checked
        return [to_attributes(item, routes, i, checked) for i, item in enumerate(batch)]

    def tokenize(self, batch: Batch, *, train: bool = False,
                 generator: torch.Generator | None = None) -> dict[str, Tokens]:
        """CPU-side preparation for every conditioner; no device work, no module state read.

        ``batch``: metadata dicts, ConditioningAttributes or SegmentWithAttributes items; those
        made by ``to_attributes`` (or dropout of them) are not checked again, and every other
        value is checked once. ``train`` selects the conditioners' training behaviour (word
        dropout, CLAP's training source, melody lengths as given); ``generator`` draws their
        randomness (torch's global one when None). Returns ``{name: Tokens}`` (picklable: it may
        come from a data-loader worker). A value no conditioner can use is a
        ConditioningInputError listing the problems of every condition.
        """
        tokens: dict[str, Tokens] = {}
        problems: list[str] = []
        for (route, conditioner), values in zip(self._plan, self._columns(batch)):
            name = route.name
            try:
                if conditioner is None:
                    tokens[name] = self._stack_embeddings(name, values)  # type: ignore[arg-type]
                else:
                    tokens[name] = conditioner.tokenize_checked(values, train=train, generator=generator)
            except ConditioningInputError as error:
                problems += [f"condition '{name}', {problem}" for problem in error.problems]
        if problems:
            raise ConditioningInputError(problems)
        return tokens

    def _columns(self, batch: Batch) -> list[list[Any]]:
        """Each route's checked values for the batch, in route order.

        A batch of plain dicts is read a condition at a time (each value checked once, in bulk
        where its type allows); attributes that ``to_attributes`` made are read as they are;
        anything else goes through ``to_attributes`` first.
        """
        attributes = batch
        if not isinstance(batch, list) or set(map(type, batch)) != {dict}:
            attributes = self.to_attributes(batch)
            return [[getattr(item, route.kind).get(route.name) for item in attributes] for route in self.routes]
        columns = []
        for route in self.routes:
            if route.kind == "symbolic":
                columns.append([symbolic_value(item, route, i) for i, item in enumerate(batch)])
                continue
            key = route.keys[0]
            try:
                raw = [item[key] for item in batch]
            except KeyError:
                raw = [self._lookup(item, route, i) for i, item in enumerate(batch)]
            columns.append(check_column(route.kind, raw, self._where(batch, route)))
        return columns

    @staticmethod
    def _lookup(item: Mapping[str, Any], route: Route, index: int) -> Any:
        for key in route.keys:
            if key in item:
                return item[key]
        tried = " or ".join(repr(k) for k in route.keys)
        raise ConditioningInputError(
            f"item {index}: missing key {tried} for condition '{route.name}' "
            f"(expected {EXPECTED[route.kind]}); keys given: {short_keys(item)}"
        )

    @staticmethod
    def _where(batch: Sequence[Mapping[str, Any]], route: Route) -> Callable[[int], str]:
        def where(index: int) -> str:
            key = next(k for k in route.keys if k in batch[index])
            return f"item {index}, key '{key}'"
        return where

    def forward(self, tokens: Mapping[str, Tokens]) -> dict[str, Condition]:
        """Embed tokens on the provider's device: ``{name: Condition([B, T, D], [B, T])}``."""
        conditions = {}
        for route, conditioner in self._plan:
            name = route.name
            found = tokens.get(name)
            if found is None:
                missing = [r.name for r in self.routes if r.name not in tokens]
                raise ConditioningInputError(f"tokens missing for conditions {missing}; got {sorted(tokens)}")
            conditions[name] = self._pre_encoded(name, found) if conditioner is None else conditioner(found)  # type: ignore[arg-type]
        return conditions

    def _stack_embeddings(self, name: str, values: Sequence[torch.Tensor | None]) -> ValueTokens:
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
        return ValueTokens(embedding, mask)

    def _pre_encoded(self, name: str, tokens: ValueTokens) -> Condition:
        """Pre-encoded tokens on the conditioner's device, in its dtype."""
        conditioner = self.conditioners[name]
        tokens = tokens.to(conditioner.device)
        return Condition(tokens.values.to(conditioner.dtype), tokens.mask)

    def condition(self, batch: Batch, *, train: bool = False,
                  generator: torch.Generator | None = None) -> dict[str, Condition]:
        """``forward(tokenize(batch, train=train, generator=generator))``."""
        return self(self.tokenize(batch, train=train, generator=generator))
