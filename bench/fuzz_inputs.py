"""Fuzz the second half's readers: model configs, sidecars, manifests, model folders, generate arguments.

Run:  .venv/bin/python bench/fuzz_inputs.py [--quick] [--cases N] [--train K] [--out PATH]

Each input kind gets ``--cases`` (2,000; ``--quick`` 100) hostile cases built with bench/fuzz.py's
pool of hostile values (sizes of 10^10, ints of 4,000 digits, NaN and infinities, 1 MB strings,
nesting 3,000 deep) and 1-3 edits anywhere in a valid base, and for one in five a hostile file
instead (nested 100,000 deep, not UTF-8, past the size bound, a FIFO, a link to /dev/zero):

- ``model config``: configs/tiny.json mutated, through ``validate_model_config`` (what
  ``cuecraft config validate`` runs); ``--train K`` then trains the first K that validate for 2 steps
  on a 4-piece corpus and checks the exported weights are finite.
- ``data sidecar``: a corpus piece's sidecar mutated, beside its WAV, through ``scan`` (the dataset
  index, as ``data check`` reads a folder).
- ``manifest``: a .jsonl manifest line mutated, through ``scan``.
- ``eval sidecar``: an AudioCraft-style sidecar mutated, through ``read_audio_folder``
  (``cuecraft eval --audio``'s reader).
- ``model folder``: an exported model's model.json mutated, through ``read_export`` and
  ``parse_model_config`` (what ``cuecraft generate --model DIR`` reads first).
- ``generate arguments``: steps, candidates, keep, seed, guidance, seconds, bpm, key drawn from the
  pool, through ``GenerationPipeline.generate`` of a tiny model (``measured=False``).

Outcomes as bench/fuzz.py counts them (valid / typed / untyped / over-time / memory, under an
address-space limit of the process's size + 2 GiB); over-time is more than 1 s (10 s for generate
and train), interrupted at 10 s (60 s for generate, 600 s for train); a trained config whose export
holds a non-finite weight is counted apart (``non-finite export``). Prints a table, writes JSON to
bench/results/fuzz_inputs.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests' helpers

import fuzz  # noqa: E402  (bench/ is on sys.path: the hostile pool, mutate, the outcome counter)
from _common import RESULTS, print_table, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("model config", "data sidecar", "manifest", "eval sidecar", "model folder", "generate arguments")


def hostile_file(path: Path, rng: random.Random, data: bytes) -> None:
    """Write ``data`` at ``path``, or in one case of five a hostile file in its place."""
    choice = rng.randrange(25)
    if choice == 0:
        os.mkfifo(path)
    elif choice == 1:
        os.symlink("/dev/zero", path)
    elif choice == 2:
        path.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    elif choice == 3:
        path.write_bytes(data[: len(data) // 2] + b"\xff\xfe" + data[len(data) // 2:])
    elif choice == 4:
        path.write_bytes(data + b" " * (3 * 2**20))
    else:
        path.write_bytes(data)


def dump(document: Any) -> bytes:
    return fuzz.dump(document, as_yaml=False)


def refused(result: Any) -> Any:
    """A scan that lists its file as unusable counts as a typed refusal (the reason is the message)."""
    from cuecraft.errors import DatasetError

    if result.problems:
        raise DatasetError(f"{result.problems[0][0]}: {result.problems[0][1]}")
    return result


def outcome(fn: Any, kill_s: float) -> tuple[str, float, Any]:
    previous = fuzz.KILL_S
    fuzz.KILL_S = kill_s
    try:
        return fuzz._interrupted(fn)
    finally:
        fuzz.KILL_S = previous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 cases per kind")
    parser.add_argument("--cases", type=int, default=None, help="cases per kind (2,000)")
    parser.add_argument("--train", type=int, default=0, help="train this many valid model configs for 2 steps")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds to run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "fuzz_inputs.json")
    args = parser.parse_args()
    cases = args.cases or (100 if args.quick else 2_000)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, fuzz._alarm)
    fuzz.log(f"fuzz inputs: {cases} cases per kind: {', '.join(kinds)}")

    from cuecraft.config.model import parse_model_config
    from cuecraft.config.reading import parse_document
    from cuecraft.config.report import validate_model_config
    from cuecraft.data.corpus import make_corpus
    from cuecraft.data.sources import scan
    from cuecraft.eval.run import read_audio_folder
    from cuecraft.pipelines.generate import GenerationPipeline, GenerationRequest
    from cuecraft.train.export import read_export
    from tests.pipelines.generation_model import export_tiny_model

    tiny = json.loads((ROOT / "configs" / "tiny.json").read_text())
    work = Path(tempfile.mkdtemp(prefix="cuecraft-fuzz-"))
    corpus = work / "corpus"
    make_corpus(corpus, items=4, seconds=1.0, seed=0)
    sidecar_base = json.loads((corpus / "piece_000000.json").read_text())
    model_dir = export_tiny_model(work / "model", melody=False)
    model_info = json.loads((model_dir / "model.json").read_text())
    pipe = GenerationPipeline.from_dir(model_dir)
    audiocraft = {"key": "", "artist": "x", "sample_rate": 16000, "file_extension": "wav", "description": "a tune",
                  "keywords": "a, b", "duration": 1.0, "bpm": "96", "genre": "", "title": "", "name": "a",
                  "instrument": "piano", "moods": ["calm"]}
    limit = fuzz.limit_memory()
    fuzz.log(f"address space limited to {limit / 2**30:.1f} GiB")

    def case_dir(kind: str, i: int) -> Path:
        folder = work / kind.replace(" ", "_") / str(i)
        folder.mkdir(parents=True)
        return folder

    def model_config(i: int, rng: random.Random) -> Any:
        data = dump(fuzz.mutate(tiny, rng))
        if rng.random() < 0.2:
            data = fuzz.hostile_text(data, False, rng)
        return lambda: validate_model_config(parse_document(data, "model.json", yaml=False))

    def data_sidecar(i: int, rng: random.Random) -> Any:
        folder = case_dir("data sidecar", i)
        os.link(corpus / "piece_000000.wav", folder / "a.wav")
        hostile_file(folder / "a.json", rng, dump(fuzz.mutate(sidecar_base, rng)))
        return lambda: refused(scan(folder, cache_dir=work / "index"))

    def manifest(i: int, rng: random.Random) -> Any:
        folder = case_dir("manifest", i)
        line = fuzz.mutate({"path": os.fspath(corpus / "piece_000001.wav"), "bpm": 120.0, "key": "A minor",
                            "duration": 1.0, "description": "x"}, rng)
        hostile_file(folder / "m.jsonl", rng, dump(line) + b"\n")
        return lambda: refused(scan(folder / "m.jsonl", cache_dir=work / "index"))

    def eval_sidecar(i: int, rng: random.Random) -> Any:
        folder = case_dir("eval sidecar", i)
        os.link(corpus / "piece_000002.wav", folder / "a.wav")
        hostile_file(folder / "a.json", rng, dump(fuzz.mutate(audiocraft, rng)))
        return lambda: read_audio_folder(folder)

    def model_folder(i: int, rng: random.Random) -> Any:
        folder = case_dir("model folder", i)
        os.link(model_dir / "model.safetensors", folder / "model.safetensors")
        hostile_file(folder / "model.json", rng, dump(fuzz.mutate(model_info, rng)))
        return lambda: parse_model_config(read_export(folder)[0]["config"])

    def generate_arguments(i: int, rng: random.Random) -> Any:
        settings = {"steps": 1, "candidates": 1, "seed": 0, "guidance": None}
        request = {"seconds": 0.5}
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(["steps", "candidates", "keep", "seed", "guidance", "seconds", "bpm", "key"])
            value = fuzz.hostile_value(rng)
            (request if name in ("seconds", "bpm", "key") else settings)[name] = value
        return lambda: pipe.generate([GenerationRequest(**request)], measured=False, **settings)

    builders = {"model config": model_config, "data sidecar": data_sidecar, "manifest": manifest,
                "eval sidecar": eval_sidecar, "model folder": model_folder, "generate arguments": generate_arguments}
    rows, results, valid_configs = [], {}, []
    for kind in kinds:
        counts: collections.Counter = collections.Counter()
        slowest, start = 0.0, time.perf_counter()
        slow = 10.0 if kind == "generate arguments" else fuzz.SLOW_S
        for i in range(cases):
            rng = random.Random(f"{args.seed}:{kind}:{i}")
            result: Any = None
            kind_of, seconds, result = outcome(builders[kind](i, rng), 60.0 if kind == "generate arguments" else 10.0)
            if kind_of == "over-time" and seconds <= slow:
                kind_of = "ok"
            fuzz._example(f"{kind} #{i}", kind_of, result)
            counts["valid" if kind_of == "ok" else kind_of] += 1
            slowest = max(slowest, seconds)
            if kind == "model config" and kind_of == "ok" and len(valid_configs) < args.train:
                valid_configs.append(i)
            if (i + 1) % max(1, cases // 10) == 0:
                fuzz.log(f"{kind}: {i + 1}/{cases} {dict(counts)}")
        results[kind] = {"cases": cases, **{k: counts[k] for k in ("valid", "typed", "untyped", "over-time",
                                                                   "memory")},
                         "slowest_s": slowest, "seconds": time.perf_counter() - start}
        rows.append([kind, cases, counts["valid"], counts["typed"], counts["untyped"], counts["over-time"],
                     counts["memory"], slowest])
    if valid_configs:
        rows.append(train_valid(valid_configs, tiny, corpus, work, results, args.seed))

    print()
    print_table(["input", "n", "valid", "typed errors", "untyped", "over-time", "memory", "slowest s"], rows)
    write_json(args.out, {"bench": "fuzz_inputs", "quick": args.quick, "seed": args.seed, "results": results,
                          "examples": fuzz.EXAMPLES})
    for example in fuzz.EXAMPLES[:10]:
        print(f"  {example['input']}: {example['outcome']} {example['error']}: {example['message'][:120]}")
    fuzz.log(f"wrote {args.out}")


def train_valid(indices: list[int], tiny: dict, corpus: Path, work: Path, results: dict, seed: int) -> list:
    """Train each valid mutated config (by its case index) for 2 steps; count the non-finite exports."""
    from safetensors.torch import load_file

    from cuecraft.train.loop import train

    counts: collections.Counter = collections.Counter()
    slowest = 0.0
    for i in indices:
        rng = random.Random(f"{seed}:model config:{i}")
        config = json.loads(dump(fuzz.mutate(tiny, rng)))
        training = config.get("training")
        if isinstance(training, dict) and isinstance(training.get("warmup_steps"), int) \
                and training["warmup_steps"] > 2:  # tiny.json warms up for 10 steps: more than the 2 run here
            training["warmup_steps"] = 0
        run = work / "runs" / str(i)
        two_steps = lambda: train(config, corpus, run, max_steps=2, log=lambda m: None)  # noqa: B023, E731
        kind, seconds, result = outcome(two_steps, 600.0)
        if kind == "over-time" and seconds <= 10.0:  # two training steps take a second or so: over-time is > 10 s
            kind = "ok"
        fuzz._example(f"train #{i}", kind, result)
        if kind == "ok":
            weights = load_file(str(run / "model" / "model.safetensors"))
            finite = all(bool(torch.isfinite(t).all()) for t in weights.values())
            kind = "ok" if finite else "non-finite export"
        counts["valid" if kind == "ok" else kind] += 1
        slowest = max(slowest, seconds)
    results["train --max-steps 2"] = {"cases": len(indices), **dict(counts), "slowest_s": slowest}
    fuzz.log(f"train --max-steps 2: {counts['non-finite export']} of {len(indices)} exported a non-finite weight")
    return ["train --max-steps 2", len(indices), counts["valid"], counts["typed"], counts["untyped"],
            counts["over-time"], counts["memory"], slowest]


if __name__ == "__main__":
    main()
