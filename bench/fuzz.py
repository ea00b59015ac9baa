"""Fuzz: malformed config documents and metadata batches; counts what comes out of each.

Run:  .venv/bin/python bench/fuzz.py [--quick] [--documents N] [--batches N] [--out PATH]

Config documents: ``--documents`` (10,000; ``--quick`` 300) per format (cuecraft JSON,
stable-audio-tools JSON, AudioCraft YAML), each a valid base document (the bases of
tests/config/test_fuzz.py) with 1-3 random edits anywhere in it (replace, delete, add) from a pool
of hostile values (sizes of 10^10, ints of 400 digits, NaN, references that name nothing, 1 MB
strings, 5,000-character model names), and for one in five a hostile text besides (nesting
thousands deep, bytes that are not UTF-8, a YAML alias bomb or a recursive alias). Each goes
through ``parse_document``, ``validate_config`` and ``build_stack`` as a user's file does.

Metadata: ``--batches`` (5,000; ``--quick`` 200) batches from tests/test_metadata_fuzz.py's
``malformed_batch`` through ``ConditioningStack.condition`` (lut, list, number, int, T5, CLAP and
chroma_stem conditioners; tiny random T5 and CLAP models).

Outcomes: ``valid``; ``typed`` (a ConfigError / ConditioningInputError); ``untyped`` (any other
exception); ``over-time`` (more than 1 s; interrupted at 10 s); ``memory`` (an allocation failed
under an address-space limit of the process's size + 2 GiB). ``disagree``: documents that
``validate_config`` and ``build_stack`` judge differently. Prints a table, writes JSON to
bench/results/fuzz.json.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import platform
import random
import resource
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' bases and generators

import cuecraft  # noqa: E402
from cuecraft.config import build_stack  # noqa: E402
from cuecraft.config.reading import parse_document  # noqa: E402
from cuecraft.config.report import validate_config  # noqa: E402
from cuecraft.errors import ConditioningInputError, ConfigError, CuecraftError  # noqa: E402
from tests.config.test_fuzz import AUDIOCRAFT, CUECRAFT, STABLE_AUDIO  # noqa: E402
from tests.test_metadata_fuzz import malformed_batch, stack_config  # noqa: E402
from tests.tiny_models import tiny_clap, tiny_t5  # noqa: E402

from _common import RESULTS, print_table, write_json  # isort: skip  (bench/ is on sys.path)

FORMATS = {"cuecraft JSON": (CUECRAFT, False), "stable-audio-tools JSON": (STABLE_AUDIO, False),
           "AudioCraft YAML": (AUDIOCRAFT, True)}
SLOW_S = 1.0  # a reader or builder taking longer than this counts as over-time
KILL_S = 10.0  # and is interrupted here
MEMORY_HEADROOM = 2 * 2**30
START = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} +{time.perf_counter() - START:6.1f}s] {message}", flush=True)


class OverTime(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise OverTime


def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(22)
    if choice < 4:
        return rng.choice([None, True, 0, -1, 1, 3, 8, 600, 0.5, "", "cross", "global", "prompt", "lut", "t5"])
    if choice == 4:
        return rng.choice([10**10, 10**12, 2**31, 2**63, 2**70, -(10**10)])
    if choice == 5:
        return int("9" * rng.choice([40, 400, 4000]))
    if choice == 6:
        return rng.choice([float("nan"), float("inf"), -float("inf"), 1e308, 5e-324])
    if choice == 7:
        return rng.choice(["${sample_rate}", "${nowhere}", "${transformer_lm.dim}", "???", "${a.${b}}"])
    if choice == 8:
        return "x" * rng.choice([5_000, 1_000_000 if rng.random() < 0.05 else 100])
    if choice == 9:
        return rng.choice(["\x00", "é🎸", "\u202e", "\ud800" if depth < 0 else "\uffff"])
    if choice == 10 and depth < 3:
        return [hostile_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if choice == 11 and depth < 3:
        return {rng.choice(["id", "type", "config", "dim", "n_bins", "k" * 300, ""]): hostile_value(rng, depth + 1)
                for _ in range(rng.randrange(3))}
    if choice == 12:
        return rng.choice(["sentence", "t5", "clap", "chroma_stem", "number", "int", "list", "lut", "nope"])
    if choice == 13:
        return rng.choice([{"t5_model_name": "t" * 5000}, {"n_bins": 10**10, "dim": 10**10}, {"dim": 0}])
    if choice == 14:
        return rng.choice([-0.0, 1e-320, 2.5, 47.6, 1e9])
    value: Any = rng.choice([1, "a", None])
    for _ in range(rng.choice([5, 70, 3000])):
        value = [value] if rng.random() < 0.5 else {"k": value}
    return value


def places(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += places(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += places(item, prefix + (i,))
    return found


def mutate(base: dict, rng: random.Random) -> Any:
    """1-3 edits (replace, delete, add) anywhere in a copy of ``base``."""
    document = copy.deepcopy(base)
    for _ in range(rng.randint(1, 3)):
        where = rng.choice([p for p in places(document) if p] or [()])
        if not where:
            break
        parent = document
        for part in where[:-1]:
            parent = parent[part]
        action = rng.choice(["replace", "replace", "delete", "add"])
        if action == "replace":
            parent[where[-1]] = hostile_value(rng)
        elif action == "delete":
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[rng.choice(["extra", "bins", "ignore", "k" * 200, "dim"])] = hostile_value(rng)
        else:
            parent.append(hostile_value(rng))
    return document


def dump(document: Any, as_yaml: bool) -> bytes:
    sys.setrecursionlimit(20_000)  # the dumpers recurse: a document 3,000 deep is still written
    if as_yaml:
        return yaml.safe_dump(document, allow_unicode=True).encode("utf-8", "surrogatepass")
    return json.dumps(document, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


def hostile_text(data: bytes, as_yaml: bool, rng: random.Random) -> bytes:
    """A hostile text built from (or in place of) ``data``."""
    choice = rng.randrange(5)
    if choice == 0:  # nested far deeper than any config
        depth = rng.choice([100, 1_000, 50_000])
        return b"[" * depth + data + b"]" * depth
    if choice == 1:  # not UTF-8
        cut = rng.randrange(len(data) + 1)
        return data[:cut] + rng.choice([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80"]) + data[cut:]
    if choice == 2 and as_yaml:  # an alias bomb: 9 levels of 9 references
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
        return (data.decode("utf-8", "replace") + "\n" + "\n".join(lines) + "\n").encode()
    if choice == 3 and as_yaml:  # a recursive alias
        return data + b"\nloop: &loop [*loop]\n"
    return data + b" " * rng.choice([0, 3 * 2**20])  # past the size bound


def _interrupted(fn: Any) -> tuple[str, float, Any]:
    """('ok' | 'typed' | 'untyped' | 'over-time' | 'memory', seconds, result or exception)."""
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, KILL_S)
    try:
        result = fn()
        kind = "ok"
    except OverTime as error:
        kind, result = "over-time", error
    except MemoryError as error:
        kind, result = "memory", error
    except (ConfigError, ConditioningInputError) as error:
        kind, result = "typed", error
    except CuecraftError as error:  # another typed error (a pretrained model the document names is absent)
        kind, result = "typed", error
    except Exception as error:  # noqa: BLE001 - what the fuzz counts
        kind = "memory" if "allocat" in str(error)[:300] else "untyped"
        result = error
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start
    if seconds > SLOW_S and kind != "over-time":
        kind = "over-time"
    return kind, seconds, result


EXAMPLES: list[dict[str, Any]] = []  # the first few untyped / over-time / memory outcomes


def _example(where: str, kind: str, result: Any) -> None:
    if kind in ("untyped", "memory", "over-time") and len(EXAMPLES) < 30:
        EXAMPLES.append({"input": where, "outcome": kind, "error": type(result).__name__,
                         "message": str(result)[:300]})


def document_outcome(data: bytes, as_yaml: bool, where: str = "") -> tuple[str, bool, float]:
    """(outcome, validate and build disagree, seconds)."""
    parsed: list[Any] = []
    kind, read_s, result = _interrupted(lambda: parsed.append(parse_document(data, "doc", yaml=as_yaml)))
    _example(where, kind, result)
    if kind != "ok":
        return kind, False, read_s
    kinds = []
    seconds = read_s
    for step in (validate_config, lambda d: build_stack(d, seed=0)):
        kind, step_s, result = _interrupted(lambda: step(copy.deepcopy(parsed[0])))  # noqa: B023
        seconds += step_s
        kinds.append(kind)
        _example(where, kind, result)
    for bad in ("memory", "over-time", "untyped"):
        if bad in kinds:
            return bad, False, seconds
    if kinds[0] != kinds[1] and len(EXAMPLES) < 30:  # kept, so a disagreement can be replayed
        EXAMPLES.append({"input": where, "outcome": "disagree", "validate": kinds[0], "build": kinds[1],
                         "document": data[:2000].decode("utf-8", "replace")})
    return ("valid" if kinds[0] == "ok" else "typed"), kinds[0] != kinds[1], seconds


def limit_memory() -> int:
    with open("/proc/self/statm") as handle:
        size = int(handle.read().split()[0]) * resource.getpagesize()
    limit = size + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    return limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 documents per format, 200 batches")
    parser.add_argument("--documents", type=int, default=None, help="documents per format (10,000)")
    parser.add_argument("--batches", type=int, default=None, help="metadata batches (5,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "fuzz.json")
    args = parser.parse_args()
    n_documents = args.documents or (300 if args.quick else 10_000)
    n_batches = args.batches or (200 if args.quick else 5_000)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # the peers' readers warn about what they translate; not counted
    signal.signal(signal.SIGALRM, _alarm)
    log(f"fuzz: {n_documents} documents per format, {n_batches} metadata batches")

    with tempfile.TemporaryDirectory() as models:
        log("building tiny T5 and CLAP models for the metadata stack")
        stack = build_stack(stack_config(str(tiny_t5(Path(models) / "t5")), str(tiny_clap(Path(models) / "clap"))),
                            seed=0)
        limit = limit_memory()
        log(f"address space limited to {limit / 2**30:.1f} GiB")
        rows, results = [], {}
        for name, (base, as_yaml) in FORMATS.items():
            counts: collections.Counter = collections.Counter()
            disagree, slowest, start = 0, 0.0, time.perf_counter()
            for i in range(n_documents):
                rng = random.Random(f"{args.seed}:{name}:{i}")
                data = dump(mutate(base, rng), as_yaml)
                if rng.random() < 0.2:
                    data = hostile_text(data, as_yaml, rng)
                kind, differ, seconds = document_outcome(data, as_yaml, f"{name} #{i}")
                counts[kind] += 1
                disagree += differ
                slowest = max(slowest, seconds)
                if (i + 1) % max(1, n_documents // 10) == 0:
                    log(f"{name}: {i + 1}/{n_documents} {dict(counts)}")
            results[name] = {"documents": n_documents, **{k: counts[k] for k in ("valid", "typed", "untyped",
                             "over-time", "memory")}, "disagree": disagree, "slowest_s": slowest,
                             "seconds": time.perf_counter() - start}
            rows.append([name, n_documents, counts["valid"], counts["typed"], counts["untyped"], counts["over-time"],
                         counts["memory"], disagree, slowest])

        counts = collections.Counter()
        slowest, start = 0.0, time.perf_counter()

        def condition(batch: Any) -> Any:
            with torch.no_grad():
                return stack.condition(batch)

        for i in range(n_batches):
            kind, seconds, result = _interrupted(lambda: condition(malformed_batch(random.Random(args.seed * 10**6 + i))))  # noqa: B023
            _example(f"metadata #{i}", kind, result)
            counts["valid" if kind == "ok" else kind] += 1
            slowest = max(slowest, seconds)
            if (i + 1) % max(1, n_batches // 10) == 0:
                log(f"metadata: {i + 1}/{n_batches} {dict(counts)}")
        results["metadata batches"] = {"batches": n_batches, **{k: counts[k] for k in ("valid", "typed", "untyped",
                                       "over-time", "memory")}, "slowest_s": slowest,
                                       "seconds": time.perf_counter() - start}
        rows.append(["metadata batches", n_batches, counts["valid"], counts["typed"], counts["untyped"],
                     counts["over-time"], counts["memory"], "-", slowest])

    print()
    print_table(["input", "n", "valid", "typed errors", "untyped", "over-time", "memory", "disagree", "slowest s"],
                rows)
    write_json(args.out, {"bench": "fuzz", "cuecraft": cuecraft.__version__, "torch": torch.__version__,
                          "python": platform.python_version(), "quick": args.quick, "seed": args.seed,
                          "slow_s": SLOW_S, "kill_s": KILL_S, "memory_headroom_bytes": MEMORY_HEADROOM,
                          "results": results, "examples": EXAMPLES})
    for example in EXAMPLES[:10]:
        print(f"  {example['input']}: {example['outcome']} {example['error']}: {example['message'][:120]}")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
