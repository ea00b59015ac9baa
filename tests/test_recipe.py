"""recipes/builtin.py: the stages it runs, skipping done ones, and the model card it writes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _recipe():
    spec = importlib.util.spec_from_file_location("builtin_recipe", ROOT / "recipes" / "builtin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_work(work: Path, step: int) -> None:
    (work / "corpus").mkdir(parents=True)
    (work / "corpus" / "corpus.json").write_text(json.dumps(
        {"settings": {"seed": 0, "seconds": 8.0, "sample_rate": 16000, "renderer": "cuecraft-synth"}, "items": 3}))
    (work / "corpus" / "train.jsonl").write_text("{}\n{}\n")
    (work / "corpus" / "heldout.jsonl").write_text("{}\n")
    (work / "run" / "model").mkdir(parents=True)
    (work / "run" / "metrics.jsonl").write_text(
        "\n".join(json.dumps({"step": s, "loss": 0.5, "items_per_s": 16.0}) for s in (25, 50)) + "\n")
    (work / "run" / "model" / "model.json").write_text(json.dumps({"step": step}))
    (work / "run" / "model" / "model.safetensors").write_bytes(b"x" * 2_000_000)
    (work / "eval").mkdir()
    (work / "eval" / "report.json").write_text(json.dumps({
        "metrics": {"tempo_within_4pct": 0.85, "key_exact": 0.5},
        "ceiling": {"tempo_within_4pct": 0.95, "key_exact": 1.0},
        "floor": {"dropped": {"tempo_within_4pct": 0.05, "key_exact": 0.04},
                  "shuffled": {"tempo_within_4pct": 0.06, "key_exact": 0.05}},
        "items": [{"asked": {"melody_seed": 3}}, {"asked": {}}], "settings": {"steps": 25, "guidance": 3.0}}))
    (work / "classifier").mkdir()
    (work / "classifier" / "report.json").write_text(json.dumps({"heldout_accuracy": 0.9, "roundtrip_accuracy": 0.8}))
    (work / "bench_generate.json").write_text(json.dumps(
        {"stages": {"total": {"seconds": 1.5, "rtf": 0.19}}, "threads": 2, "load_seconds": 3.0}))


def test_card_states_data_steps_time_and_each_target_with_its_gap(tmp_path):
    recipe = _recipe()
    _fake_work(tmp_path, step=6000)
    card = recipe.write_card(tmp_path, {"stages": {"train": {"wall_seconds": 600.0, "runs": 2}}}).read_text()
    assert "3 pieces of 8 s at 16000 Hz" in card and "Training part: 2 pieces; held out: 1 pieces" in card
    assert "6000 steps" in card and "2.0 MB safetensors" in card
    assert "| tempo_within_4pct | 0.850 | >= 0.8 | met | 0.950 | 0.050 | 0.060 |" in card
    assert "| key_exact | 0.500 | >= 0.7 | missed by 20.0 pts | 1.000 | 0.040 | 0.050 |" in card
    assert "Training compute time: 0.8 min" in card and "train 10.0 min" in card  # 2 lines x 25 steps x 16 / 16
    assert "90.0 % on corpus audio, 80.0 % after a Griffin-Lim round trip" in card
    assert "| total | 1.500 | 0.190 |" in card and "1 with a reference melody" in card


def test_done_stages_are_skipped(tmp_path, monkeypatch):
    recipe = _recipe()
    _fake_work(tmp_path, step=10**9)
    calls = []
    monkeypatch.setattr(recipe, "_cuecraft", lambda *args, **kw: calls.append(args))
    monkeypatch.setattr(recipe.subprocess, "run", lambda *args, **kw: calls.append(args))
    recipe.Recipe(tmp_path, seed=0, items=3, threads=1).run()
    assert calls == []  # corpus, train, classifier, eval and bench are all there already
    assert (tmp_path / "MODEL_CARD.md").exists()
    (tmp_path / "eval" / "report.json").rename(tmp_path / "eval" / "old.json")
    monkeypatch.setattr(recipe, "write_card", lambda work, log: None)
    recipe.Recipe(tmp_path, seed=0, items=3, threads=1).run()
    assert [c[:2] for c in calls] == [("eval", "--model")]
