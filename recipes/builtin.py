"""The recipe of cuecraft's built-in model: corpus, training, classifier, evaluation, model card, from a seed.

    python3 recipes/builtin.py --work runs/builtin                 # everything, resumable
    python3 recipes/builtin.py --work runs/builtin --install       # ... and ship it in src/cuecraft/builtin/

Stages, each the `cuecraft` command a user would run, each skipped when its output is complete, so
a stopped recipe (a session's background jobs end with it) continues where it was:

1. corpus:     cuecraft corpus make --out WORK/corpus --items 5000 --seconds 8 --seed SEED --workers 2
2. train:      cuecraft train --config configs/builtin.json --data WORK/corpus/train.jsonl --out WORK/run
               (--resume when WORK/run has a checkpoint; bit-exact continuation)
3. classifier: cuecraft eval train-classifier --data WORK/corpus --out WORK/classifier --roundtrip
4. eval:       cuecraft eval --model WORK/run/model --classifier WORK/classifier --out WORK/eval
5. bench:      bench/generate.py --model WORK/run/model (seconds per stage, 8 s, 25 steps, CFG)
6. card:       WORK/MODEL_CARD.md from what the stages wrote (data, steps, wall time, figures), and
               WORK/notes.md when there is one (what the run's files do not say, written by hand)

``--install`` copies the exported model (EMA weights, config, mel statistics), the classifier and the
card into src/cuecraft/builtin/, which the package ships. Stage wall times go to WORK/recipe.json.
Training threads: ``--threads`` (default: torch's); the shipped run used 1 (see its card).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "builtin.json"
PACKAGE = ROOT / "src" / "cuecraft" / "builtin"
BIN = Path(sys.executable).parent


def _cuecraft(*args: str, threads: int | None = None) -> None:
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = [str(BIN / "cuecraft"), *args]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, env=env)


class Recipe:
    def __init__(self, work: Path, seed: int, items: int, threads: int | None):
        self.work, self.seed, self.items, self.threads = work, seed, items, threads
        self.log_path = work / "recipe.json"
        self.log = json.loads(self.log_path.read_text()) if self.log_path.exists() else {"stages": {}}

    def stage(self, name: str, done: bool, run) -> None:
        if done:
            print(f"recipe: {name}: done already", flush=True)
            return
        start = time.perf_counter()
        run()
        entry = self.log["stages"].setdefault(name, {"wall_seconds": 0.0, "runs": 0})
        entry["wall_seconds"] += time.perf_counter() - start
        entry["runs"] += 1
        self.work.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text(json.dumps(self.log, indent=1))

    def run(self) -> None:
        w = self.work
        corpus, run, classifier, evaluation = w / "corpus", w / "run", w / "classifier", w / "eval"
        self.stage("corpus", (corpus / "train.jsonl").exists() and _corpus_items(corpus) == self.items,
                   lambda: _cuecraft("corpus", "make", "--out", str(corpus), "--items", str(self.items),
                                     "--seconds", "8", "--seed", str(self.seed), "--workers", "2"))
        resume = ["--resume"] if (run / "checkpoints" / "latest").exists() else []
        self.stage("train", _trained(run, CONFIG),
                   lambda: _cuecraft("train", "--config", str(CONFIG), "--data", str(corpus / "train.jsonl"),
                                     "--out", str(run), "--seed", str(self.seed), "--no-progress", *resume,
                                     threads=self.threads))
        self.stage("classifier", (classifier / "report.json").exists(),
                   lambda: _cuecraft("eval", "train-classifier", "--data", str(corpus), "--out", str(classifier),
                                     "--seed", str(self.seed), "--roundtrip", "--quiet"))
        self.stage("eval", (evaluation / "report.json").exists(),
                   lambda: _cuecraft("eval", "--model", str(run / "model"), "--classifier", str(classifier),
                                     "--out", str(evaluation), "--seed", str(self.seed), "--no-progress"))
        bench = w / "bench_generate.json"
        self.stage("bench", bench.exists(),
                   lambda: subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "--model",
                                           str(run / "model"), "--out", str(bench)], check=True))
        write_card(w, self.log)

    def install(self) -> None:
        model = self.work / "run" / "model"
        target = PACKAGE / "model"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(model, target)
        if (self.work / "classifier").exists():
            shutil.rmtree(PACKAGE / "classifier", ignore_errors=True)
            shutil.copytree(self.work / "classifier", PACKAGE / "classifier",
                            ignore=shutil.ignore_patterns("feature-cache"))
        shutil.copy(self.work / "MODEL_CARD.md", PACKAGE / "MODEL_CARD.md")
        size = sum(p.stat().st_size for p in PACKAGE.rglob("*") if p.is_file())
        print(f"recipe: installed into {PACKAGE} ({size / 1e6:.1f} MB)")


def _corpus_items(corpus: Path) -> int:
    try:
        return json.loads((corpus / "corpus.json").read_text())["items"]
    except (OSError, ValueError, KeyError):
        return -1


def _trained(run: Path, config: Path) -> bool:
    try:
        info = json.loads((run / "model" / "model.json").read_text())
    except (OSError, ValueError):
        return False
    return info["step"] >= json.loads(config.read_text())["training"]["max_steps"]


def _train_seconds(metrics: list[dict], batch_size: int, log_every: int) -> float:
    """Training wall time from the metrics lines: each covers ``log_every`` steps at its items/s."""
    return sum(log_every * batch_size / m["items_per_s"] for m in metrics if m.get("items_per_s"))


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def write_card(work: Path, log: dict) -> Path:
    """WORK/MODEL_CARD.md from the corpus, the run, the evaluation and the benchmark."""
    config = json.loads(CONFIG.read_text())
    training = config["training"]
    corpus = json.loads((work / "corpus" / "corpus.json").read_text())
    train_items = sum(1 for _ in open(work / "corpus" / "train.jsonl"))
    heldout_items = sum(1 for _ in open(work / "corpus" / "heldout.jsonl"))
    metrics = [json.loads(line) for line in open(work / "run" / "metrics.jsonl")]
    model = json.loads((work / "run" / "model" / "model.json").read_text())
    weights = (work / "run" / "model" / "model.safetensors").stat().st_size
    report = json.loads((work / "eval" / "report.json").read_text())
    bench = json.loads((work / "bench_generate.json").read_text())
    classifier = json.loads((work / "classifier" / "report.json").read_text())
    train_seconds = _train_seconds(metrics, training["batch_size"], training["log_every"])
    m, ceiling, floor = report["metrics"], report.get("ceiling", {}), report.get("floor", {})
    targets = {"tempo_within_4pct": 0.8, "key_exact": 0.7, "instrument_accuracy": 0.8, "melody_chroma_cosine": 0.6}
    names = ["tempo_within_4pct", "tempo_within_4pct_octave", "tempo_bin", "tempo_bin_tolerant", "key_exact",
             "key_with_relative", "key_mirex", "melody_chroma_cosine", "instrument_accuracy", "onset_f1",
             "beat_f_measure"]
    rows = []
    for name in names:
        if name not in m:
            continue
        target = targets.get(name)
        verdict = "" if target is None else ("met" if m[name] >= target else f"missed by {100 * (target - m[name]):.1f} pts")
        rows.append(f"| {name} | {m[name]:.3f} | {'' if target is None else f'>= {target}'} | {verdict} | "
                    f"{ceiling.get(name, float('nan')):.3f} | {floor.get('dropped', {}).get(name, float('nan')):.3f} | "
                    f"{floor.get('shuffled', {}).get(name, float('nan')):.3f} |")
    stages = bench["stages"]
    lines = [
        "# cuecraft built-in model",
        "",
        "A conditioned DiT over a 128-band log-mel, trained by cuecraft itself on its own labelled corpus, that "
        "follows a text prompt, a tempo, a key, a lead instrument, drums on/off and a melody recording. "
        "Every control is optional. Made by `python3 recipes/builtin.py` (one command, from a seed).",
        "",
        "## Data",
        f"- cuecraft's labelled corpus, seed {corpus['settings']['seed']}: {corpus['items']} pieces of "
        f"{corpus['settings']['seconds']:g} s at {corpus['settings']['sample_rate']} Hz, rendered by "
        f"{corpus['settings']['renderer']} (cuecraft's own synthesis: no third-party samples).",
        f"- Training part: {train_items} pieces; held out: {heldout_items} pieces, whose (lead instrument, key, "
        "drums) combinations (10 % of all, `cuecraft.data.corpus.split`) training never sees.",
        "- 9 lead instruments (piano, electric piano, marimba, bell, organ, guitar, harp, flute, lead synth), the "
        "24 keys, 60-180 bpm, drums on/off, 4/4, 3/4, 6/8.",
        "",
        "## Model",
        f"- Conditioning: prompt through the offline MiniLM sentence encoder (token features + mask, cross-attention); "
        "bpm (number), key (24-way list), instrument (9-way list), drums (on/off list), each cross + global; the "
        "melody as MusicGen's argmax chroma of a recording, input_concat. Dropout: CFG 0.1; prompt 0.3, "
        "key/instrument/drums/bpm 0.2, melody 0.5 each.",
        f"- Representation: log-mel, 128 bands, 16 kHz, hop 256 (62.5 frames/s), per-band statistics; decoded "
        "by Griffin-Lim (no trained vocoder ships).",
        f"- Backbone: DiT, width {config['backbone']['dim']}, depth {config['backbone']['depth']}, "
        f"{config['backbone']['heads']} heads, patch {config['backbone']['patch_size']} frames; v objective, "
        f"logit-normal timesteps. Weights (EMA {training['ema_decay']}): {weights / 1e6:.1f} MB safetensors.",
        "",
        "## Training",
        f"- {model['step']} steps of {training['batch_size']} clips of {training['segment_seconds']:g} s, AdamW lr "
        f"{training['lr']}, warm-up {training['warmup_steps']}, cosine; seed {training['seed']}.",
        f"- Training compute time: {train_seconds / 60:.1f} min on this 2-core CPU "
        f"(bfloat16 autocast; items/s as logged); recipe stage wall times: "
        + ", ".join(f"{k} {v['wall_seconds'] / 60:.1f} min" for k, v in log.get("stages", {}).items()) + ".",
        f"- Final training loss (last logged): {metrics[-1]['loss']:.3f}.",
        "",
        "## Adherence (held-out prompts, `cuecraft eval`)",
        f"{len(report['items'])} prompts of the shipped held-out set (combinations of instrument, key and drums "
        f"the training part never has; {sum(1 for i in report['items'] if i['asked'].get('melody_seed') is not None)} "
        f"with a reference melody), {report['settings'].get('steps', 25)} steps, guidance "
        f"{report['settings'].get('guidance') or config['conditioning'].get('guidance', {}).get('scale', 1.0)}.",
        "",
        "| metric | model | target | | ceiling (corpus) | floor: dropped | floor: shuffled |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Instrument classifier (`cuecraft eval train-classifier`): held-out accuracy "
        f"{_pct(classifier.get('heldout_accuracy'))} on corpus audio, "
        f"{_pct(classifier.get('roundtrip_accuracy'))} after a Griffin-Lim round trip.",
        "",
        "## Speed (bench/generate.py: 8 s, 25 steps, CFG)",
        "| stage | seconds | RTF |",
        "|---|---|---|",
        *[f"| {k} | {v['seconds']:.3f} | {v['rtf']:.3f} |" for k, v in stages.items()],
        f"Threads: {bench['threads']}; model loading {bench['load_seconds']:.1f} s once per process.",
        "",
    ]
    notes = work / "notes.md"  # what happened in this run that the files do not say (written by hand)
    if notes.exists():
        lines += ["", notes.read_text().strip(), ""]
    card = work / "MODEL_CARD.md"
    card.write_text("\n".join(lines))
    return card


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "builtin", help="working folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--items", type=int, default=5000, help="corpus pieces (default 5000)")
    parser.add_argument("--threads", type=int, help="torch threads for training (default: torch's)")
    parser.add_argument("--install", action="store_true", help="copy the result into src/cuecraft/builtin/")
    parser.add_argument("--card-only", action="store_true", help="only rewrite the model card")
    args = parser.parse_args()
    recipe = Recipe(args.work, args.seed, args.items, args.threads)
    if args.card_only:
        write_card(args.work, recipe.log)
    else:
        recipe.run()
    if args.install:
        recipe.install()
    return 0


if __name__ == "__main__":
    sys.exit(main())
