"""Re-implementations of the peers' conditioning algorithms, for bench/conditioning.py.

These are RE-IMPLEMENTATIONS OF THE PEERS' ALGORITHMS, NOT THE PEERS' CODE: written for this
benchmark from the published descriptions of stable-audio-tools and AudioCraft, doing the same
work as the cuecraft stack in bench/conditioning.py (the constants below) the way each peer does it.
Each implementation has ``tokenize(batch)`` (CPU prep), ``forward(tokens)`` (embedding) and
``fuse(conditions, x)``, which returns ``{"input": [B, 1 + T, D], "cross": [B, S, D],
"global": [B, 2D]}``.

Notation: B batch, T tokens, D width.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

# The benchmarked stack; every implementation, cuecraft's included, builds this one.
WIDTH, N_BINS, N_FREQUENCIES = 64, 4096, 128
BPM_RANGE, SECONDS_RANGE = (40, 240), (0.0, 512.0)
ROUTING = {"cross": ["prompt", "seconds_total"], "prepend": ["bpm"],
           "global": ["seconds_total", "bpm"], "sum": ["seconds_start"]}
Metadata = dict[str, Any]


def hash_word(word: str, n_bins: int) -> int:
    """The hash trick both peers describe: SHA-256 of the word as an integer, mod n_bins; no cache."""
    return int(hashlib.sha256(word.encode("utf-8")).hexdigest(), 16) % n_bins


class FourierNumberEmbedder(nn.Module):
    """x [N] in [0, 1] -> [N, WIDTH]: [x, sin(2πxw), cos(2πxw)] (w: 128 learned) then Linear(257, 64)."""

    def __init__(self) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.randn(N_FREQUENCIES))
        self.linear = nn.Linear(2 * N_FREQUENCIES + 1, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(-1)
        phases = x * self.weights.unsqueeze(0) * 2 * math.pi
        features: torch.Tensor = self.linear(torch.cat((x, phases.sin(), phases.cos()), dim=-1))
        return features


# --- stable-audio-tools style (re-implementation of its algorithm, not its code) ---------------

class SatText(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedder, self.proj_out = nn.Embedding(N_BINS, WIDTH), nn.Identity()

    def prepare(self, texts: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [torch.tensor([hash_word(w, N_BINS) for w in t.lower().split()]) for t in texts]
        ids = pad_sequence(rows, batch_first=True)
        mask = torch.arange(ids.shape[1])[None] < torch.tensor([len(r) for r in rows])[:, None]
        return ids.to(device), mask.to(device)

    def embed(self, prepared: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
        ids, mask = prepared
        return [self.proj_out(self.embedder(ids)) * mask.unsqueeze(-1).float(), mask]


class SatNumber(nn.Module):
    def __init__(self, min_val: float, max_val: float) -> None:
        super().__init__()
        self.min_val, self.max_val, self.embedder = min_val, max_val, FourierNumberEmbedder()

    def prepare(self, values: list[Any], device: torch.device) -> torch.Tensor:
        floats = torch.tensor([float(v) for v in values]).to(device).clamp(self.min_val, self.max_val)
        return (floats - self.min_val) / (self.max_val - self.min_val)

    def embed(self, normalised: torch.Tensor) -> list[torch.Tensor]:
        dtype = next(self.embedder.parameters()).dtype
        emb = self.embedder(normalised.to(dtype)).unsqueeze(1)  # [B, 1, D]
        return [emb, torch.ones(emb.shape[0], 1).to(emb.device)]


class SatInt(nn.Module):
    def __init__(self, min_val: int, max_val: int) -> None:
        super().__init__()
        self.min_val, self.max_val = min_val, max_val
        self.int_embedder = nn.Embedding(max_val - min_val + 1, WIDTH)

    def prepare(self, values: list[Any], device: torch.device) -> torch.Tensor:
        # Offset by min_val so every clamped value has a row (the peer indexes the raw value).
        return torch.tensor(values).to(device).clamp(self.min_val, self.max_val) - self.min_val

    def embed(self, ids: torch.Tensor) -> list[torch.Tensor]:
        emb = self.int_embedder(ids).unsqueeze(1)
        return [emb, torch.ones(emb.shape[0], 1).to(emb.device)]


class StableAudioStyle:
    name = "sat-style"

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.conditioners: dict[str, SatText | SatInt | SatNumber] = {
            "prompt": SatText(), "bpm": SatInt(*BPM_RANGE),
            "seconds_total": SatNumber(*SECONDS_RANGE), "seconds_start": SatNumber(*SECONDS_RANGE)}

    def tokenize(self, batch: list[Metadata]) -> dict[str, Any]:
        prepared = {}
        for key, conditioner in self.conditioners.items():
            inputs = []
            for item in batch:
                value = item[key]
                if isinstance(value, (list, tuple)) and len(value) == 1:
                    value = value[0]
                inputs.append(value)
            prepared[key] = conditioner.prepare(inputs, self.device)
        return prepared

    def forward(self, prepared: dict[str, Any]) -> dict[str, list[torch.Tensor]]:
        return {key: c.embed(prepared[key]) for key, c in self.conditioners.items()}

    def fuse(self, conds: dict[str, list[torch.Tensor]], x: torch.Tensor) -> dict[str, torch.Tensor | None]:
        cross = torch.cat([conds[k][0] for k in ROUTING["cross"]], dim=1)
        _cross_mask = torch.cat([conds[k][1] for k in ROUTING["cross"]], dim=1)
        global_cond = torch.cat([conds[k][0] for k in ROUTING["global"]], dim=-1).squeeze(1)
        prepend = torch.cat([conds[k][0] for k in ROUTING["prepend"]], dim=1)
        prepend_mask = torch.cat([conds[k][1] for k in ROUTING["prepend"]], dim=1)
        for key in ROUTING["sum"]:  # the peer has no `sum` role; the same add, for equal work
            x = x + conds[key][0]
        x = torch.cat((prepend, x), dim=1)  # as its DiT does with prepend inputs and masks
        _input_mask = torch.cat((prepend_mask, torch.ones(x.shape[0], x.shape[1] - prepend.shape[1])), dim=1)
        return {"input": x, "cross": cross, "global": global_cond}


# --- AudioCraft style (re-implementation of its algorithm, not its code) -----------------------

@dataclass
class AcAttributes:
    text: dict[str, str | None] = field(default_factory=dict)
    number: dict[str, float | None] = field(default_factory=dict)


class AcConditioner(nn.Module):
    """Tokens (values, mask) -> embedder -> Linear output projection -> mask multiply."""

    def __init__(self, embedder: nn.Module) -> None:
        super().__init__()
        self.embedder, self.output_proj = embedder, nn.Linear(WIDTH, WIDTH)

    def forward(self, tokens: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        values, mask = tokens
        return self.output_proj(self.embedder(values)) * mask.unsqueeze(-1), mask


class AcLUT(AcConditioner):
    def __init__(self) -> None:
        super().__init__(nn.Embedding(N_BINS + 1, WIDTH))  # last row: padding

    def tokenize(self, texts: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        output, lengths = [], []
        for text in texts:
            if text is None:
                output.append(torch.tensor([N_BINS]))
                lengths.append(0)
                continue
            tokens = [hash_word(w, N_BINS) for w in text.lower().split()]  # the peer uses spaCy here
            output.append(torch.tensor(tokens))
            lengths.append(len(tokens))
        ids = pad_sequence(output, padding_value=N_BINS).t()  # [T, B] -> [B, T]
        mask = torch.arange(ids.shape[1])[None] < torch.tensor(lengths)[:, None]
        return ids, mask


class AcNumber(AcConditioner):
    """Numbers the AudioCraft way (per-condition tokenize/forward); AudioCraft itself has none."""

    def __init__(self, lo: float, hi: float, table: bool) -> None:
        super().__init__(nn.Embedding(int(hi - lo) + 1, WIDTH) if table else FourierNumberEmbedder())
        self.lo, self.hi, self.table = lo, hi, table

    def tokenize(self, values: list[float | None]) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.tensor([[v is not None] for v in values])
        raw = torch.tensor([[0.0 if v is None else float(v)] for v in values]).clamp(self.lo, self.hi)
        if self.table:
            return (raw - self.lo).long(), mask
        return (raw - self.lo) / (self.hi - self.lo), mask

    def forward(self, tokens: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        values, mask = tokens
        if self.table:
            return super().forward((values, mask))  # [B, 1] ids -> [B, 1, D]
        return super().forward((values.squeeze(1), mask.squeeze(1)))[0].unsqueeze(1), mask


class AudioCraftStyle:
    name = "audiocraft-style"

    def __init__(self) -> None:
        self.text = {"prompt": AcLUT()}
        self.numbers = {"bpm": AcNumber(*BPM_RANGE, table=True),
                        "seconds_total": AcNumber(*SECONDS_RANGE, table=False),
                        "seconds_start": AcNumber(*SECONDS_RANGE, table=False)}
        self.conditioners: dict[str, AcLUT | AcNumber] = {**self.text, **self.numbers}
        self.ops: dict[str, list[str]] = defaultdict(list)
        for role, names in ROUTING.items():
            for name in names:
                self.ops[name].append(role)

    def tokenize(self, batch: list[Metadata]) -> dict[str, Any]:
        attributes = [AcAttributes({k: m[k] for k in self.text}, {k: m[k] for k in self.numbers})
                      for m in batch]
        collated: dict[str, list[Any]] = defaultdict(list)
        for attr in attributes:
            for name in self.text:
                collated[name].append(attr.text[name])
            for name in self.numbers:
                collated[name].append(attr.number[name])
        return {name: c.tokenize(collated[name]) for name, c in self.conditioners.items()}

    def forward(self, tokens: dict[str, Any]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {name: c(tokens[name]) for name, c in self.conditioners.items()}

    def fuse(self, conds: dict[str, tuple[torch.Tensor, torch.Tensor]],
             x: torch.Tensor) -> dict[str, torch.Tensor | None]:
        cross: torch.Tensor | None = None
        globals_: list[torch.Tensor] = []
        for name, (cond, _mask) in conds.items():  # the peer's fuser drops the masks
            for op in self.ops[name]:
                if op == "sum":
                    x = x + cond  # the peer adds in place; out of place keeps the bench input intact
                elif op == "prepend":
                    x = torch.cat([cond, x], dim=1)
                elif op == "cross":
                    cross = cond if cross is None else torch.cat([cross, cond], dim=1)
                elif op == "global":  # no such role in the peer; the same concat, for equal work
                    globals_.append(cond[:, 0])
        return {"input": x, "cross": cross, "global": torch.cat(globals_, dim=-1)}
