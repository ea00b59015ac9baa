import json
import math

import numpy as np
import pytest
import soundfile

from cuecraft.errors import ConfigError, DatasetError, EvaluationInputError, WeightsError
from cuecraft.eval.instrument import InstrumentClassifier, builtin_classifier, train_classifier
from cuecraft.eval.instrument_features import FeatureCache, FeatureOptions, LogMelFeatures, cached_features

RATE = 16000


def tone(kind: str, rng: np.random.Generator, seconds: float = 1.0) -> np.ndarray:
    """A melody of random pitches in a pure-sine timbre or a bright square-wave one."""
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    for start in np.arange(0, seconds, 0.25):
        f = 220 * 2 ** (rng.integers(0, 12) / 12)
        on = (t >= start) & (t < start + 0.25)
        phase = 2 * np.pi * f * t[on]
        out[on] = np.sin(phase) if kind == "flute" else np.sign(np.sin(phase)) * 0.5
    return (0.3 * out + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def two_timbre_corpus(root, per_class=24, heldout_per_class=8, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for kind in ("flute", "lead synth"):
        for k in range(per_class + heldout_per_class):
            name = f"{kind.replace(' ', '_')}_{k:02d}.wav"
            soundfile.write(root / name, tone(kind, rng), RATE)
            rows.append({"path": name, "instrument": kind, "split": "train" if k < per_class else "heldout"})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def test_two_timbres_are_told_apart_and_the_saved_classifier_predicts_the_same(tmp_path):
    manifest = two_timbre_corpus(tmp_path)
    report = train_classifier(manifest, tmp_path / "clf", epochs=8, seed=0, evaluate_roundtrip=False)
    assert report.labels == ["flute", "lead synth"]  # LEAD_INSTRUMENTS order
    assert (report.train_items, report.heldout_items) == (48, 16)
    assert report.heldout_accuracy > 0.9
    assert sum(map(sum, report.confusion)) == 16 and report.roundtrip_accuracy is None
    assert report.weights_bytes < 2_000_000
    saved = json.loads((tmp_path / "clf" / "report.json").read_text())
    assert saved["heldout_accuracy"] == report.heldout_accuracy and saved["confusion"] == report.confusion

    classifier = InstrumentClassifier.load(tmp_path / "clf")
    rng = np.random.default_rng(99)
    wavs = [tone("flute", rng), tone("lead synth", rng), tone("flute", rng, 3.0)]
    assert classifier.predict(wavs, RATE) == ["flute", "lead synth", "flute"]
    probabilities = classifier.probabilities(wavs, RATE)
    assert probabilities.shape == (3, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    embedding = classifier.embed(wavs, RATE)
    assert embedding.shape == (3, 64) and (embedding >= 0).all()
    # a gain change and another sample rate do not change the answer
    louder = classifier.probabilities([wavs[0] * 3.0], RATE)
    assert np.allclose(louder, probabilities[:1], atol=1e-4)
    import librosa

    at_22k = librosa.resample(wavs[1], orig_sr=RATE, target_sr=22050)
    assert classifier.predict([at_22k], 22050) == ["lead synth"]


def test_training_is_seeded_and_leaves_the_global_random_state(tmp_path):
    import torch

    manifest = two_timbre_corpus(tmp_path, per_class=6, heldout_per_class=2)
    state = torch.random.get_rng_state()
    first = train_classifier(manifest, tmp_path / "a", epochs=2, seed=3, evaluate_roundtrip=False)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = train_classifier(manifest, tmp_path / "b", epochs=2, seed=3, evaluate_roundtrip=False,
                              cache_dir=tmp_path / "a" / "feature-cache")
    assert first.confusion == second.confusion
    a = (tmp_path / "a" / "classifier.safetensors").read_bytes()
    assert a == (tmp_path / "b" / "classifier.safetensors").read_bytes()


def test_a_tiny_corpus_with_roundtrip_training_reports_both_accuracies(tmp_path):
    from cuecraft.data.corpus import make_corpus

    make_corpus(tmp_path / "corpus", items=40, seconds=1.0, seed=1)
    report = train_classifier(tmp_path / "corpus", tmp_path / "clf", epochs=1, seed=0, roundtrip=True,
                              roundtrip_seconds=0.5, head="stats")
    heldout = len((tmp_path / "corpus" / "heldout.jsonl").read_text().splitlines())
    assert report.heldout_items == heldout and report.train_items == 40 - heldout
    assert report.roundtrip and report.roundtrip_accuracy is not None
    for matrix in (report.confusion, report.roundtrip_confusion):
        assert len(matrix) == len(report.labels) and sum(map(sum, matrix)) == heldout
    accuracy = sum(report.confusion[k][k] for k in range(len(report.labels))) / heldout
    assert math.isclose(report.heldout_accuracy, accuracy)
    assert set(report.per_class_accuracy) == set(report.labels)
    assert "held-out accuracy (Griffin-Lim round trip)" in report.summary()
    assert InstrumentClassifier.load(tmp_path / "clf").head.kind == "stats"


def test_feature_cache_hits_and_roundtrip_keeps_the_length(tmp_path):
    rng = np.random.default_rng(0)
    wav = tone("flute", rng)
    soundfile.write(tmp_path / "a.wav", wav, RATE)
    features = LogMelFeatures(FeatureOptions())
    cache = FeatureCache(tmp_path / "cache")
    first = cached_features([str(tmp_path / "a.wav")], features, cache, variant="clean")[0]
    assert first.shape == (128, math.ceil(RATE / 256)) and first.dtype == np.float16
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    (next((tmp_path / "cache").glob("*.npy"))).write_bytes(b"torn")  # a corrupt entry is recomputed
    again = cached_features([str(tmp_path / "a.wav")], features, cache, variant="clean")[0]
    assert np.array_equal(first, again)
    decoded = features.roundtrip(wav)
    assert decoded.shape == wav.shape and np.isfinite(decoded).all()


def test_bad_arguments_and_data_are_typed_errors(tmp_path):
    with pytest.raises(ConfigError) as error:
        train_classifier(tmp_path, tmp_path / "o", epochs=0, seed=-1, head="rnn", dilations=(0,))
    assert len(error.value.problems) == 4
    with pytest.raises(DatasetError, match="train.jsonl and heldout.jsonl"):
        train_classifier(tmp_path, tmp_path / "o", epochs=1)
    bad = tmp_path / "m.jsonl"
    bad.write_text(json.dumps({"path": "x.wav"}) + "\n")
    with pytest.raises(DatasetError, match="'instrument'"):
        train_classifier(bad, tmp_path / "o", epochs=1)
    with pytest.raises(WeightsError, match="no such file"):
        InstrumentClassifier.load(tmp_path / "nothing")


def test_prediction_input_errors_and_a_torn_weights_file(tmp_path):
    manifest = two_timbre_corpus(tmp_path, per_class=4, heldout_per_class=1)
    train_classifier(manifest, tmp_path / "clf", epochs=1, seed=0, evaluate_roundtrip=False, dilations=(1, 3))
    classifier = InstrumentClassifier.load(tmp_path / "clf")
    assert classifier.head.dilations == (1, 3) and len(classifier.net.trunk) == 4
    assert classifier.predict([], RATE) == []
    with pytest.raises(EvaluationInputError, match=r"wavs\[0\]"):
        classifier.predict([np.zeros((2, 100))], RATE)
    with pytest.raises(EvaluationInputError, match="NaN"):
        classifier.embed([np.full(100, np.nan)], RATE)
    with pytest.raises(EvaluationInputError, match="sample_rate"):
        classifier.predict([np.zeros(100)], 0)
    assert classifier.predict([np.zeros(10)], RATE)[0] in classifier.labels  # silence, shorter than a frame
    (tmp_path / "clf" / "classifier.safetensors").write_bytes(b"torn")
    with pytest.raises(WeightsError, match="safetensors"):
        InstrumentClassifier.load(tmp_path / "clf")


def test_builtin_classifier_is_none_or_loads():
    classifier = builtin_classifier()
    assert classifier is None or len(classifier.labels) == 9


def test_cli_train_classifier_prints_the_accuracy_and_writes_the_report(tmp_path, capsys):
    import argparse

    from cuecraft.cli import eval_classifier

    manifest = two_timbre_corpus(tmp_path, per_class=6, heldout_per_class=2)
    parser = argparse.ArgumentParser()
    eval_classifier.add_arguments(parser)
    args = parser.parse_args(["--data", str(manifest), "--out", str(tmp_path / "clf"), "--epochs", "2",
                              "--no-roundtrip-eval", "--quiet"])
    assert eval_classifier.run(args) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "clf" / "report.json").read_text())
    assert f"held-out accuracy (clean): {report['heldout_accuracy']:.3f}" in out
    assert "confusion (clean; rows: true, columns: predicted)" in out and report["epochs"] == 2
    assert InstrumentClassifier.load(tmp_path / "clf").labels == ["flute", "lead synth"]
