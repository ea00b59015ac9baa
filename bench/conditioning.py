"""Benchmark: metadata -> backbone inputs with cuecraft's ConditionProvider + ConditionFuser.

Run:  .venv/bin/python bench/conditioning.py [--quick] [--out PATH]

One stack, built in code: ``prompt`` (lut, 4096 bins, whitespace words), ``bpm`` (int, 40..240),
``seconds_total`` and ``seconds_start`` (number), all 64 wide, routed as
``cross=[prompt, seconds_total], prepend=[bpm], global=[seconds_total, bpm], sum=[seconds_start]``
over an input of shape [B, 1, 64]. Metadata are seeded: prompts of 6-14 words from a fixed
vocabulary, integer BPMs, float seconds.

At batch sizes 1, 16 and 256, on CPU, under ``torch.inference_mode()``, each phase is timed on
its own: tokenize (CPU preparation), forward (embedding), fuse, and total (metadata -> fused
inputs in one call). Each figure is the median of N calls after warm-up, N chosen so that a phase
runs about 0.25 s (``--quick``: about 0.03 s).

Baselines, measured in the same run, are RE-IMPLEMENTATIONS OF THE PEERS' ALGORITHMS, NOT THE
PEERS' CODE, written here from their published descriptions:
- ``sat-style``: stable-audio-tools' MultiConditioner loop (per-condition Python lists from the
  metadata dicts, ``torch.tensor`` per conditioner, clamp/normalise, embed, ``[emb, ones mask]``),
  then its DiT wrapper's concatenations (cross along T, global along channels, prepend along T).
  Its text encoder is replaced by uncached SHA-256 word hashing into a table.
- ``audiocraft-style``: per-item attributes, collated per condition into lists, a whitespace
  tokenizer with the uncached SHA-256 hash trick and ``pad_sequence``, ``nn.Embedding``, a Linear
  output projection and a mask multiply; a fuser that prepends with a loop of ``torch.cat``.
The row ``cuecraft-cold`` is cuecraft with its word-hash cache cleared before every call.

Prints a table and writes JSON (atomically) to bench/results/conditioning.json or ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

import cuecraft
from cuecraft import ConditionFuser, ConditionProvider, FusedInputs
from cuecraft.conditioners import IntConditioner, LUTConditioner, NumberConditioner
from cuecraft.conditioners.lut import hash_token

BATCH_SIZES = (1, 16, 256)
WIDTH, N_BINS, N_FREQUENCIES = 64, 4096, 128
BPM_RANGE, SECONDS_RANGE = (40, 240), (0.0, 512.0)
ROUTING = {"cross": ["prompt", "seconds_total"], "prepend": ["bpm"],
           "global": ["seconds_total", "bpm"], "sum": ["seconds_start"]}
VOCAB = ("ambient techno house drum bass guitar piano synth pad lead warm dark bright slow fast "
         "groovy melodic minimal deep funky jazz soul vocal choir strings brass dreamy lofi hip hop "
         "beat kick snare hat reverb delay chill upbeat cinematic epic soft loud acoustic electric "
         "organ flute violin cello orchestral retro modern analog distorted clean").split()
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "conditioning.json"
Metadata = dict[str, Any]


def make_batch(size: int, seed: int = 0) -> list[Metadata]:
    """``size`` seeded metadata dicts (prompt, bpm, seconds_total, seconds_start)."""
    rng = random.Random(seed)
    return [{"prompt": " ".join(rng.choice(VOCAB) for _ in range(rng.randint(6, 14))),
             "bpm": rng.randint(60, 200), "seconds_total": round(rng.uniform(5.0, 300.0), 2),
             "seconds_start": round(rng.uniform(0.0, 120.0), 2)} for _ in range(size)]


class Impl(Protocol):
    """One way to do the work: metadata -> tokens -> conditions -> fused inputs."""

    name: str

    def tokenize(self, batch: list[Metadata]) -> Any: ...
    def forward(self, tokens: Any) -> Any: ...
    def fuse(self, conditions: Any, x: torch.Tensor) -> dict[str, torch.Tensor | None]: ...


class Cuecraft:
    name = "cuecraft"

    def __init__(self) -> None:
        self.provider = ConditionProvider({
            "prompt": LUTConditioner(n_bins=N_BINS, dim=WIDTH, output_dim=WIDTH, tokenizer="whitespace"),
            "bpm": IntConditioner(output_dim=WIDTH, min_val=BPM_RANGE[0], max_val=BPM_RANGE[1]),
            "seconds_total": NumberConditioner(WIDTH, *SECONDS_RANGE),
            "seconds_start": NumberConditioner(WIDTH, *SECONDS_RANGE),
        })
        self.fuser = ConditionFuser(ROUTING)

    def tokenize(self, batch: list[Metadata]) -> Any:
        return self.provider.tokenize(batch)

    def forward(self, tokens: Any) -> Any:
        return self.provider(tokens)

    def fuse(self, conditions: Any, x: torch.Tensor) -> dict[str, torch.Tensor | None]:
        fused: FusedInputs = self.fuser(conditions, x)
        return {"input": fused.input, "cross": fused.cross_attention_src, "global": fused.global_cond}


class CuecraftCold(Cuecraft):
    """cuecraft with the word-hash cache cleared first: prompts whose words were never seen."""

    name = "cuecraft-cold"

    def tokenize(self, batch: list[Metadata]) -> Any:
        hash_token.cache_clear()
        return super().tokenize(batch)


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
        return self.linear(torch.cat((x, phases.sin(), phases.cos()), dim=-1))


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
        self.conditioners = nn.ModuleDict({"prompt": SatText(), "bpm": SatInt(*BPM_RANGE),
                                           "seconds_total": SatNumber(*SECONDS_RANGE),
                                           "seconds_start": SatNumber(*SECONDS_RANGE)})

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
        self.text = nn.ModuleDict({"prompt": AcLUT()})
        self.numbers = nn.ModuleDict({"bpm": AcNumber(*BPM_RANGE, table=True),
                                      "seconds_total": AcNumber(*SECONDS_RANGE, table=False),
                                      "seconds_start": AcNumber(*SECONDS_RANGE, table=False)})
        self.ops = defaultdict(list)
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
        return {name: c.tokenize(collated[name]) for name, c in [*self.text.items(), *self.numbers.items()]}

    def forward(self, tokens: dict[str, Any]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {name: c(tokens[name]) for name, c in [*self.text.items(), *self.numbers.items()]}

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


# --- timing -------------------------------------------------------------------------------------

@dataclass
class Row:
    impl: str
    batch: int
    tokenize_ms: float
    forward_ms: float
    fuse_ms: float
    total_ms: float
    items_per_s: float
    ratio: float | None = None  # total_ms / cuecraft's total_ms at this batch size


def median_ms(fn: Callable[[], object], budget_s: float, min_repeats: int) -> float:
    """Median wall time of ``fn`` in ms, after warm-up, over enough calls to fill ``budget_s``."""
    for _ in range(3):
        fn()
    start = time.perf_counter()
    fn()
    n = max(min_repeats, min(20_000, int(budget_s / max(time.perf_counter() - start, 1e-7))))
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def measure(impl: Impl, batch: list[Metadata], budget_s: float, min_repeats: int) -> Row:
    x = torch.randn(len(batch), 1, WIDTH)
    tokens = impl.tokenize(batch)
    conds = impl.forward(tokens)
    times = [median_ms(fn, budget_s, min_repeats) for fn in (
        lambda: impl.tokenize(batch), lambda: impl.forward(tokens), lambda: impl.fuse(conds, x),
        lambda: impl.fuse(impl.forward(impl.tokenize(batch)), x))]
    return Row(impl.name, len(batch), *times, items_per_s=len(batch) / (times[3] / 1e3))


def check_same_work(impls: Sequence[Impl], batch: list[Metadata]) -> None:
    """Every implementation must produce fused tensors of the same shapes."""
    x = torch.randn(len(batch), 1, WIDTH)
    shapes = {i.name: {k: tuple(v.shape) if v is not None else None
                       for k, v in i.fuse(i.forward(i.tokenize(batch)), x).items()} for i in impls}
    assert len({json.dumps(s, sort_keys=True) for s in shapes.values()}) == 1, shapes


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (about 0.03 s per phase)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    budget_s, min_repeats = (0.03, 5) if args.quick else (0.25, 20)
    impls: list[Impl] = [Cuecraft(), CuecraftCold(), StableAudioStyle(), AudioCraftStyle()]
    rows: list[Row] = []
    with torch.inference_mode():
        check_same_work(impls, make_batch(3))
        for size in BATCH_SIZES:
            batch = make_batch(size, seed=size)
            size_rows = [measure(impl, batch, budget_s, min_repeats) for impl in impls]
            for row in size_rows[1:]:
                row.ratio = row.total_ms / size_rows[0].total_ms
            rows += size_rows

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cuecraft {cuecraft.__version__}")
    print("sat-style and audiocraft-style are re-implementations of the peer's algorithm, not the peer's code")
    header = f"{'impl':<17}{'batch':>6}{'tokenize_ms':>13}{'forward_ms':>12}{'fuse_ms':>10}" \
             f"{'total_ms':>10}{'items_per_s':>13}{'ratio':>8}"
    print(header + "\n" + "-" * len(header))
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        print(f"{r.impl:<17}{r.batch:>6}{r.tokenize_ms:>13.3f}{r.forward_ms:>12.3f}{r.fuse_ms:>10.3f}"
              f"{r.total_ms:>10.3f}{r.items_per_s:>13.0f}{ratio:>8}")

    at_256 = {r.impl: r.total_ms for r in rows if r.batch == 256}
    baselines = ("sat-style", "audiocraft-style")
    target_met = all(at_256["cuecraft"] <= at_256[b] for b in baselines)
    print(f"\ntarget (cuecraft total at batch 256 <= each baseline's): {'MET' if target_met else 'NOT MET'} "
          f"(cuecraft {at_256['cuecraft']:.3f} ms; "
          + ", ".join(f"{b} {at_256[b]:.3f} ms" for b in baselines)
          + f"; about 2 ms asked: {'yes' if at_256['cuecraft'] <= 2.0 else 'no'})")
    write_json(args.out, {
        "benchmark": "conditioning", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cuecraft": cuecraft.__version__, "python": platform.python_version(), "quick": args.quick,
        "baselines_note": "sat-style and audiocraft-style re-implement the peers' algorithms; not their code",
        "target_met": target_met, "rows": [asdict(r) for r in rows]})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
