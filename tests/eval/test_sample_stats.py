import math

import numpy as np
import pytest
import torch

from cuecraft.errors import EvaluationInputError
from cuecraft.eval.sample_stats import LatentStats, frechet_distance, roughness, sample_quality


def test_roughness_of_white_noise_and_of_a_ramp():
    noise = torch.randn(8, 16, 4000, generator=torch.Generator().manual_seed(0))
    # |a - b| of two independent N(0, 1) is half-normal with scale sqrt(2): mean 2 / sqrt(pi)
    assert roughness(noise) == pytest.approx(2 / math.sqrt(math.pi), rel=0.01)
    ramp = torch.arange(100.0).repeat(2, 3, 1) * 0.25
    assert roughness(ramp) == pytest.approx(0.25)
    assert roughness(torch.ones(1, 1, 2)) == 0.0


def test_sample_quality_ratios_against_smooth_data():
    generator = torch.Generator().manual_seed(1)
    phase = torch.rand(32, 8, 1, generator=generator) * 6.28
    data = torch.sin(torch.arange(500.0) * 0.02 + phase) * math.sqrt(2)  # unit std, roughness ~0.018
    noise = torch.randn(32, 8, 500, generator=generator)
    quality = sample_quality(noise, data)
    expected = (2 / math.sqrt(math.pi)) / (0.02 * math.sqrt(2) * 2 / math.pi)  # E|cos| = 2/pi
    assert quality.roughness_ratio == pytest.approx(expected, rel=0.05)
    assert quality.std_ratio == pytest.approx(1.0, abs=0.03)
    assert quality.band_std_ratio == pytest.approx(1.0, abs=0.05)
    itself = sample_quality(data, LatentStats.of(data))
    assert itself.roughness_ratio == pytest.approx(1.0) and itself.band_mean_gap == pytest.approx(0.0)
    shifted = sample_quality(data + 0.5, data)
    assert shifted.band_mean_gap == pytest.approx(0.5 / LatentStats.of(data).std, rel=1e-4)
    summary = quality.summary()
    assert set(summary) >= {"roughness_ratio", "std_ratio", "band_mean_gap", "band_std_ratio"}


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) * 2.0 + np.array([1.0, 0.0, 0.0])
    # |mu|^2 = 1; trace: 3 * (1 + 4 - 2 * 2) = 3
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_bad_inputs_are_typed():
    with pytest.raises(EvaluationInputError, match="latents"):
        roughness(torch.zeros(3, 4))
    with pytest.raises(EvaluationInputError, match="NaN"):
        roughness(torch.full((1, 1, 3), float("nan")))
    with pytest.raises(EvaluationInputError, match="channels"):
        sample_quality(torch.zeros(1, 2, 3), torch.zeros(1, 3, 3))
    with pytest.raises(EvaluationInputError, match="N >= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(EvaluationInputError, match="width"):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))


def test_eval_sample_statistics_through_the_model_representation():
    from types import SimpleNamespace

    from cuecraft.eval.run import Extras, sample_statistics
    from cuecraft.models.representation.mel import MelOptions, MelRepresentation

    rate = 16000
    time = np.arange(rate) / rate
    rng = np.random.default_rng(0)
    # the data: held notes (a slowly moving mel); the samples: noise whose loudness jumps every frame
    data = [0.3 * np.sin(2 * np.pi * f * time).astype(np.float32) for f in (220, 330, 440, 550, 660, 770)]
    gains = [np.repeat(np.exp(2 * rng.normal(size=rate // 256 + 1)), 256)[:rate] for _ in range(4)]
    noisy = [(0.01 * g * rng.normal(size=rate)).astype(np.float32) for g in gains]
    pipe = SimpleNamespace(representation=MelRepresentation(MelOptions(n_mels=16)), device=torch.device("cpu"))
    classifier = SimpleNamespace(embed=lambda wavs, _: np.array([[w.std(), np.abs(np.diff(w)).mean(), w.max()]
                                                                    for w in wavs]))
    metrics = sample_statistics(pipe, noisy, rate, data, Extras(classifier=classifier))
    assert metrics["sample_roughness_ratio"] > 3
    assert metrics["frechet_classifier_ratio"] > 1
    itself = sample_statistics(pipe, data, rate, data, Extras())
    assert itself["sample_roughness_ratio"] == pytest.approx(1.0) and "frechet_classifier" not in itself
