import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")

from cuecraft.errors import EvaluationInputError, PretrainedModelNotFoundError  # noqa: E402
from cuecraft.eval.clap import clap_score  # noqa: E402


def _load(directory):
    from transformers import ClapModel, ClapProcessor

    return ClapModel.from_pretrained(directory).eval(), ClapProcessor.from_pretrained(directory)


def _features(output):
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def test_clap_score_equals_the_cosine_of_get_audio_features_and_get_text_features(tiny_models):
    directory = tiny_models["clap"]
    model, processor = _load(directory)
    rate = processor.feature_extractor.sampling_rate  # 8 kHz, 1 s windows
    rng = np.random.default_rng(0)
    short = (0.1 * rng.standard_normal(rate // 2)).astype(np.float32)  # half a window: one padded window
    texts = ["warm piano ballad", "fast techno with drums"]
    scores = clap_score(directory, [short, short], rate, texts)
    with torch.no_grad():
        audio = F.normalize(_features(model.get_audio_features(
            **processor.feature_extractor([short], sampling_rate=rate, return_tensors="pt"))), dim=-1)
        tokens = processor.tokenizer(texts, padding=True, return_tensors="pt")
        text = F.normalize(_features(model.get_text_features(**tokens)), dim=-1)
    expected = (audio * text).sum(dim=-1)
    assert np.allclose(scores, expected.numpy(), atol=1e-5)
    assert scores[0] != pytest.approx(scores[1])  # the text matters


def test_long_audio_is_the_mean_of_its_windows_and_is_resampled(tiny_models):
    import librosa

    directory = tiny_models["clap"]
    model, processor = _load(directory)
    extractor = processor.feature_extractor
    rate = extractor.sampling_rate
    wav = (0.1 * np.random.default_rng(1).standard_normal(int(2.5 * rate))).astype(np.float32)
    [score] = clap_score(directory, [wav], rate, ["deep house"])
    with torch.no_grad():
        pieces = [wav[:rate], wav[rate: 2 * rate], wav[2 * rate:]]
        windows = F.normalize(_features(model.get_audio_features(
            **extractor(pieces, sampling_rate=rate, return_tensors="pt"))), dim=-1)
        audio = F.normalize(windows.mean(dim=0), dim=-1)
        text = F.normalize(_features(model.get_text_features(
            **processor.tokenizer(["deep house"], return_tensors="pt"))), dim=-1)[0]
    assert score == pytest.approx(float(audio @ text), abs=1e-5)
    assert clap_score(directory, [wav], rate, ["deep house"]) == [score]  # no random crop
    at_16k = librosa.resample(wav, orig_sr=rate, target_sr=16000)
    [resampled] = clap_score(directory, [at_16k], 16000, ["deep house"])
    assert resampled == pytest.approx(score, abs=0.05)


def test_clap_score_input_errors(tiny_models, tmp_path):
    directory = tiny_models["clap"]
    with pytest.raises(EvaluationInputError, match="one text per waveform"):
        clap_score(directory, [np.zeros(100)], 8000, ["a", "b"])
    with pytest.raises(EvaluationInputError, match=r"texts\[0\]"):
        clap_score(directory, [np.zeros(100)], 8000, [""])
    with pytest.raises(EvaluationInputError, match=r"wavs\[0\]"):
        clap_score(directory, [np.zeros((2, 100))], 8000, ["a"])
    with pytest.raises(PretrainedModelNotFoundError):
        clap_score(tmp_path / "missing", [np.zeros(100)], 8000, ["a"])
    assert clap_score(directory, [], 8000, []) == []
