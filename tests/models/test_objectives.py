import math

import pytest
import torch

from cuecraft.errors import ConfigError
from cuecraft.models.objectives import (
    OBJECTIVE_NAMES,
    LogitNormalTimesteps,
    Objective,
    RectifiedFlowObjective,
    UniformTimesteps,
    VObjective,
    get_objective,
    get_timestep_sampler,
    masked_mse,
)


def draws(seed=0, shape=(6, 3, 17)):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(shape, generator=g, dtype=torch.float64) * 0.5 + 0.2
    eps = torch.randn(shape, generator=g, dtype=torch.float64)
    t = torch.rand(shape[0], generator=g, dtype=torch.float64).clamp(min=1e-3)
    return x0, eps, t


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_registry_gives_typed_objectives(name):
    objective = get_objective(name)
    assert isinstance(objective, Objective) and objective.name == name
    with pytest.raises(ConfigError, match="valid objectives: v, rectified_flow"):
        get_objective("eps")


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_denoised_and_eps_invert_noise_and_target(name):
    objective = get_objective(name)
    x0, eps, t = draws()
    x_t = objective.noise(x0, eps, t)
    target = objective.target(x0, eps, t)
    torch.testing.assert_close(objective.denoised(x_t, t, target), x0, atol=1e-10, rtol=0)
    torch.testing.assert_close(objective.eps(x_t, t, target), eps, atol=1e-10, rtol=0)
    torch.testing.assert_close(objective.prediction(x_t, t, x0), target, atol=1e-9, rtol=0)


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_endpoints_are_data_and_noise(name):
    objective = get_objective(name)
    x0, eps, _ = draws()
    b = x0.shape[0]
    torch.testing.assert_close(objective.noise(x0, eps, torch.zeros(b, dtype=torch.float64)), x0, atol=1e-12, rtol=0)
    torch.testing.assert_close(objective.noise(x0, eps, torch.ones(b, dtype=torch.float64)), eps, atol=1e-12, rtol=0)
    # At t = 1 the prediction still gives the data estimate (nothing divides by alpha = 0).
    ones = torch.ones(b, dtype=torch.float64)
    torch.testing.assert_close(objective.denoised(eps, ones, objective.target(x0, eps, ones)), x0, atol=1e-12, rtol=0)


def test_v_matches_stable_audio_formulas_at_known_points():
    objective = VObjective()
    x0, eps = torch.full((1, 1, 1), 2.0, dtype=torch.float64), torch.full((1, 1, 1), -1.0, dtype=torch.float64)
    t = torch.tensor([1 / 3], dtype=torch.float64)
    alpha, sigma = math.cos(math.pi / 6), math.sin(math.pi / 6)  # cos/sin(pi t / 2)
    assert objective.noise(x0, eps, t).item() == pytest.approx(2 * alpha - sigma)
    assert objective.target(x0, eps, t).item() == pytest.approx(-alpha - 2 * sigma)


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_derivatives_match_finite_differences(name):
    objective = get_objective(name)
    t = torch.tensor([0.1, 0.37, 0.8], dtype=torch.float64)
    h = 1e-6
    (a_hi, s_hi), (a_lo, s_lo) = objective.alpha_sigma(t + h), objective.alpha_sigma(t - h)
    d_alpha, d_sigma = objective.alpha_sigma_derivative(t)
    torch.testing.assert_close(d_alpha, (a_hi - a_lo) / (2 * h), atol=1e-8, rtol=0)
    torch.testing.assert_close(d_sigma, (s_hi - s_lo) / (2 * h), atol=1e-8, rtol=0)


def test_rectified_flow_target_is_the_path_velocity_and_v_its_scaled_angle_rate():
    x0, eps, t = draws(1)
    h = 1e-6
    for objective, scale in ((RectifiedFlowObjective(), 1.0), (VObjective(), math.pi / 2)):
        velocity = (objective.noise(x0, eps, t + h) - objective.noise(x0, eps, t - h)) / (2 * h)
        torch.testing.assert_close(velocity, scale * objective.target(x0, eps, t), atol=1e-7, rtol=0)


def test_t_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\[B\] with B = 6"):
        VObjective().noise(*draws()[:2], torch.rand(5))


def test_masked_mse_ignores_padding_exactly():
    g = torch.Generator().manual_seed(3)
    prediction, target = torch.randn(3, 4, 10, generator=g), torch.randn(3, 4, 10, generator=g)
    lengths = [10, 6, 1]
    mask = torch.arange(10)[None, :] < torch.tensor(lengths)[:, None]
    expected = torch.cat([(prediction[i, :, :n] - target[i, :, :n]).square().flatten() for i, n in enumerate(lengths)]).mean()
    loss = masked_mse(prediction, target, mask)
    torch.testing.assert_close(loss, expected, atol=1e-7, rtol=0)
    poisoned = prediction.clone()
    poisoned[~mask.unsqueeze(1).expand_as(poisoned)] = float("nan")
    poisoned[1, :, 8] = float("inf")
    assert masked_mse(poisoned, target, mask).item() == loss.item()
    assert masked_mse(prediction, target, None).item() == pytest.approx((prediction - target).square().mean().item())
    assert masked_mse(prediction, target, torch.zeros(3, 10, dtype=torch.bool)).item() == 0.0
    assert VObjective().loss(prediction, target, mask).item() == loss.item()


def test_masked_mse_rejects_bad_masks():
    x = torch.zeros(2, 3, 5)
    with pytest.raises(ValueError, match=r"\[B, L\] = \[2, 5\]"):
        masked_mse(x, x, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        masked_mse(x, x, torch.ones(2, 5))
    with pytest.raises(ValueError, match="differ in shape"):
        masked_mse(x, torch.zeros(2, 3, 4))


def test_uniform_timesteps_statistics_and_determinism():
    sampler = get_timestep_sampler("uniform")
    assert isinstance(sampler, UniformTimesteps)
    t = sampler(200_000, generator=torch.Generator().manual_seed(0))
    assert t.shape == (200_000,) and 0.0 <= t.min() and t.max() < 1.0
    assert t.mean().item() == pytest.approx(0.5, abs=3e-3)
    assert t.var().item() == pytest.approx(1 / 12, abs=1e-3)
    torch.manual_seed(123)  # the global state does not matter
    assert torch.equal(sampler(50, generator=torch.Generator().manual_seed(7)),
                       sampler(50, generator=torch.Generator().manual_seed(7)))
    assert not torch.equal(sampler(50, generator=torch.Generator().manual_seed(7)),
                           sampler(50, generator=torch.Generator().manual_seed(8)))


def test_logit_normal_timesteps_statistics_and_determinism():
    sampler = get_timestep_sampler("logit_normal", mean=0.5, std=0.8)
    assert sampler == LogitNormalTimesteps(0.5, 0.8)
    t = sampler(200_000, generator=torch.Generator().manual_seed(0))
    assert 0.0 < t.min() and t.max() < 1.0
    logit = torch.log(t / (1 - t))
    assert logit.mean().item() == pytest.approx(0.5, abs=1e-2)
    assert logit.std().item() == pytest.approx(0.8, abs=1e-2)
    assert t.median().item() == pytest.approx(1 / (1 + math.exp(-0.5)), abs=3e-3)
    assert torch.equal(sampler(64, generator=torch.Generator().manual_seed(1)),
                       sampler(64, generator=torch.Generator().manual_seed(1)))


def test_timestep_sampler_errors():
    with pytest.raises(ConfigError, match="valid: uniform, logit_normal"):
        get_timestep_sampler("cosine")
    with pytest.raises(ConfigError, match="valid: mean, std"):
        get_timestep_sampler("logit_normal", mu=1.0)
    with pytest.raises(ConfigError, match="takes no options"):
        get_timestep_sampler("uniform", mean=0.0)
    with pytest.raises(ConfigError, match="timesteps.std: expected a positive number; got 0"):
        LogitNormalTimesteps(std=0)


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_x0_output_denoises_to_itself_and_weights_the_loss_as_the_objective(name):
    native, x0_output = get_objective(name), get_objective(name, "x0")
    x0, eps, t = draws()
    t = t.clamp(min=0.2)  # sigma above SIGMA_FLOOR on both paths
    x_t = x0_output.noise(x0, eps, t)
    assert torch.equal(x0_output.target(x0, eps, t), x0)
    guess = x0 + 0.1 * torch.randn_like(x0)
    assert torch.equal(x0_output.denoised(x_t, t, guess), guess)
    assert torch.equal(x0_output.prediction(x_t, t, guess), guess)
    # eps from the x0 output is the native objective's eps of the same data estimate
    same = native.prediction(x_t, t, guess)
    torch.testing.assert_close(x0_output.eps(x_t, t, guess), native.eps(x_t, t, same))
    # the loss equals the native loss of the native quantity that denoises to the same estimate
    native_loss = native.loss(same, native.target(x0, eps, t))
    torch.testing.assert_close(x0_output.loss(guess, x0, t=t), native_loss.float())


def test_x0_output_loss_is_bounded_near_t0_and_needs_t():
    objective = get_objective("v", "x0")
    x0 = torch.ones(2, 1, 4)
    prediction = x0 + 1.0  # squared error 1 everywhere
    loss = objective.loss(prediction, x0, t=torch.zeros(2))
    assert loss.item() == pytest.approx(1 / 0.05 ** 2)  # sigma clamped at SIGMA_FLOOR
    with pytest.raises(ValueError, match="needs t"):
        objective.loss(prediction, x0)
    with pytest.raises(ConfigError, match="valid: target, x0"):
        get_objective("v", "eps")
