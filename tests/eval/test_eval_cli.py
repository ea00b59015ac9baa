"""``cuecraft eval`` end to end: a tiny untrained exported model (--model DIR), existing audio (--audio),
and bad input (one-line errors, nothing written)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cuecraft.cli import main
from cuecraft.data.corpus.spec import LEAD_INSTRUMENTS
from cuecraft.eval.prompts import heldout_path
from cuecraft.eval.references import piece_reference

KEYS_OPTIONS = ["C major", "Db major", "D major", "Eb major", "E major", "F major", "F# major", "G major", "Ab major",
                "A major", "Bb major", "B major", "C minor", "C# minor", "D minor", "Eb minor", "E minor", "F minor",
                "F# minor", "G minor", "G# minor", "A minor", "Bb minor", "B minor"]


def _shipped() -> list[dict]:
    return [json.loads(line) for line in heldout_path().read_text(encoding="utf-8").splitlines()]


def tiny_config() -> dict:
    """bpm, key, instrument and drums controls (no text encoder: fast), a 1-block DiT, 1-second clips."""
    return {
        "conditioning": {
            "cond_dim": 16,
            "conditioners": [
                {"id": "bpm", "type": "number", "roles": ["cross", "global"], "config": {"min_val": 40, "max_val": 240}},
                {"id": "key", "type": "list", "roles": ["cross"], "config": {"options": KEYS_OPTIONS}},
                {"id": "instrument", "type": "list", "roles": ["cross"], "config": {"options": list(LEAD_INSTRUMENTS)}},
                {"id": "drums", "type": "list", "roles": ["cross"], "config": {"options": ["on", "off"]}},
            ],
            "dropout": {"cfg": 0.1},
        },
        "representation": {"type": "mel", "sample_rate": 16000, "n_fft": 512, "hop": 256, "n_mels": 16},
        "backbone": {"type": "dit", "latent_dim": 16, "dim": 32, "depth": 1, "heads": 2, "mlp_ratio": 2.0,
                     "cross_attention_dim": 16, "global_dim": 16, "timestep_dim": 32},
        "objective": {"type": "v", "timesteps": "uniform"},
        "training": {"batch_size": 2, "lr": 1e-3, "max_steps": 1, "warmup_steps": 0, "segment_seconds": 1.0, "precision": "float32",
                     "seed": 0},
    }


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from cuecraft.config.model import build_model, parse_model_config
    from cuecraft.train.export import export_model
    from cuecraft.train.module import DiffusionModule

    config = parse_model_config(tiny_config())
    stack, representation, dit, _ = build_model(config)
    representation.fit_stats([torch.randn(1, 16000) * 0.1])
    module = DiffusionModule(stack, dit)
    weights = {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad}
    return export_model(tmp_path_factory.mktemp("model") / "model", config_data=config.data, step=0, weights=weights,
                        representation=representation)


def test_eval_generates_scores_and_writes_everything(tiny_model, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["eval", "--model", str(tiny_model), "--out", str(out), "--limit", "3", "--steps", "2",
                 "--batch-size", "4", "--no-progress"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    metrics = report["metrics"]
    for name in ("tempo_within_4pct", "tempo_within_4pct_octave", "tempo_bin", "tempo_bin_tolerant", "key_exact",
                 "key_with_relative", "key_mirex", "melody_chroma_cosine", "onset_f1", "beat_f_measure"):
        assert 0.0 <= metrics[name] <= 1.0, name
        assert name in report["ceiling"] and name in report["floor"]["dropped"] and name in report["floor"]["shuffled"]
    assert "melody_pitch_accuracy" not in metrics  # opt-in
    assert len(report["items"]) == 3
    rows = _shipped()[:3]
    for i, (item, row) in enumerate(zip(report["items"], rows)):
        assert item["asked"]["bpm"] == row["bpm"] and item["asked"]["key"] == row["key"]
        assert set(item["measured"]) >= {"tempo", "key"}
        assert item["file"] == f"audio/{i:03d}.wav"
        assert json.loads((out / "audio" / f"{i:03d}.json").read_text()) == row
    # the ceiling is the rows' own corpus pieces: tempo and key as asked
    assert report["ceiling"]["key_exact"] == 1.0 and report["ceiling"]["tempo_bin_tolerant"] == 1.0
    assert report["ceiling"]["melody_chroma_cosine"] == pytest.approx(1.0, abs=1e-6)  # a melody row's own piece
    assert report["settings"]["seconds"] == [1.0]  # rows ask 8 s; the model makes at most 1 s
    assert report["settings"]["controls_not_in_model"] == ["melody", "prompt"]
    assert sorted(report["floor"]["shuffle_permutation"]) == [0, 1, 2]
    assert all(j != i for i, j in enumerate(report["floor"]["shuffle_permutation"]))
    # the shipped classifier (cuecraft/builtin/classifier) scores the instrument by default
    assert 0.0 <= metrics["instrument_accuracy"] <= 1.0 and "instrument_accuracy" in report["ceiling"]
    assert {p.name for p in out.glob("*.png")} == {"tempo.png", "key_confusion.png", "instrument_confusion.png"}
    assert not list(out.rglob("*.tmp"))
    # sample statistics against the rows' corpus pieces through the model's representation
    assert metrics["sample_data_roughness"] > 0 and metrics["sample_roughness_ratio"] == pytest.approx(
        metrics["sample_roughness"] / metrics["sample_data_roughness"])
    assert "frechet_classifier" not in metrics  # 3 rows: the data's halves need 2 clips each
    table = capsys.readouterr().out
    assert "ceiling (corpus)" in table and "floor: dropped" in table and "tempo_bin_tolerant" in table

    # the written audio and sidecars are a valid --audio folder: re-scoring gives the same numbers
    again = tmp_path / "again"
    assert main(["eval", "--audio", str(out / "audio"), "--out", str(again), "--no-progress", "--no-ceiling"]) == 0
    rescored = json.loads((again / "report.json").read_text())
    for name in ("tempo_bin", "key_exact", "key_mirex"):
        assert rescored["metrics"][name] == metrics[name]
    assert "floor" not in rescored and "ceiling" not in rescored


def test_eval_audio_scores_corpus_pieces_against_their_sidecars(tmp_path):
    import soundfile

    folder = tmp_path / "audio"
    folder.mkdir()
    piece = _shipped()[0]  # a melody row
    reference = piece_reference(piece["melody_seed"], 4.0)
    soundfile.write(folder / "a.wav", reference.audio, 16000)
    soundfile.write(folder / "melody.wav", reference.audio, 16000)
    (folder / "a.json").write_text(json.dumps({"bpm": piece["bpm"], "key": piece["key"], "melody_path": "melody.wav",
                                               "reference_beats": list(reference.beats)}))
    # the melody recording itself is scored too (it is a WAV in the folder): give it a sidecar
    (folder / "melody.json").write_text(json.dumps({"bpm": piece["bpm"] * 2, "key": "C major"}))
    out = tmp_path / "out"
    assert main(["eval", "--audio", str(folder), "--out", str(out), "--no-progress", "--no-ceiling"]) == 0
    report = json.loads((out / "report.json").read_text())
    first, second = report["items"]
    assert first["file"] == "a.wav" and second["file"] == "melody.wav"
    assert first["scores"]["melody_chroma_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert first["scores"]["onset_f1"] == 1.0  # detected onsets of the same recording
    assert first["scores"]["beat_f_measure"] >= 0.75  # 0.8 measured: the tracker misses a first beat of 4 s
    assert first["scores"]["tempo_bin"] is True
    assert second["scores"]["tempo_within_4pct"] is False and second["scores"]["tempo_within_4pct_octave"] is True
    assert report["metrics"]["melody_chroma_cosine"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("case, message", [
    ("missing", "no such prompt file"),
    ("unknown", "unknown field 'tempo'"),
    ("type", "field 'bpm' must be a number"),
    ("limit", "--limit must be >= 1"),
    ("nomodel", "give --model builtin|DIR"),
])
def test_bad_input_is_a_one_line_error_and_writes_nothing(tiny_model, tmp_path, capsys, case, message):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text({"unknown": '{"prompt": "x", "tempo": 100}\n', "type": '{"bpm": "fast"}\n'}.get(
        case, '{"bpm": 100}\n'))
    argv = ["eval", "--out", str(tmp_path / "out"), "--no-progress", "--steps", "1"]
    argv += [] if case == "nomodel" else ["--model", str(tiny_model)]
    argv += ["--prompts", str(tmp_path / "missing.jsonl") if case == "missing" else str(prompts)]
    argv += ["--limit", "0"] if case == "limit" else []
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("cuecraft eval: error:") and message in error and "\n" not in error
    assert not (tmp_path / "out").exists()


def test_eval_help_lists_the_train_classifier_action_when_present(capsys):
    import importlib.util

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = capsys.readouterr().out
    assert "--model" in text and "--audio" in text and "--no-floor" in text
    if importlib.util.find_spec("cuecraft.cli.eval_classifier") is not None:
        assert "train-classifier" in text


def test_metrics_reports_are_json_numbers():
    from cuecraft.eval.report import _json_ready

    assert _json_ready({"a": np.float32(0.5), "b": [np.bool_(True), float("nan")]}) == {"a": 0.5, "b": [True, None]}


def test_instrument_accuracy_and_its_confusion_plot_with_a_classifier(tmp_path):
    import soundfile

    from cuecraft.eval.report import write_outputs
    from cuecraft.eval.run import Extras, evaluate_audio

    class AlwaysPiano:
        labels = ["piano", "flute"]

        def predict(self, wavs, sample_rate):
            return ["piano" for _ in wavs]

    folder = tmp_path / "audio"
    folder.mkdir()
    for name, instrument in (("a", "piano"), ("b", "flute")):
        soundfile.write(folder / f"{name}.wav", np.zeros(16000, dtype=np.float32), 16000)
        (folder / f"{name}.json").write_text(json.dumps({"instrument": instrument, "key": "C major", "bpm": 100}))
    result = evaluate_audio(folder, ceiling=False, extras=Extras(classifier=AlwaysPiano()))
    assert result.report["metrics"]["instrument_accuracy"] == 0.5
    # silence: no key, no beat - defined scores, never NaN
    assert result.report["metrics"]["key_exact"] == 0.0 and result.report["metrics"]["tempo_bin"] == 0.0
    written = {p.name for p in write_outputs(result, tmp_path / "out")}
    assert {"instrument_confusion.png", "key_confusion.png", "tempo.png", "report.json"} <= written
    (folder / "c.wav").write_bytes((folder / "a.wav").read_bytes())
    from cuecraft.errors import EvaluationInputError

    with pytest.raises(EvaluationInputError, match="no sidecar c.json"):
        evaluate_audio(folder)
