"""Samplers against denoisers whose answers are known: an oracle and a Gaussian's posterior mean."""

import pytest
import torch

from cuecraft.errors import GenerationInputError
from cuecraft.fuser import FusedInputs
from cuecraft.models.objectives import OBJECTIVE_NAMES, get_objective
from cuecraft.sampling import SAMPLERS, Denoiser, get_sampler, sample, timesteps

MU, S = 0.7, 0.4  # the Gaussian data distribution x0 ~ N(MU, S^2), per element

PAIRS = [(o, s) for o in OBJECTIVE_NAMES for s in get_objective(o).samplers]


def gaussian_denoiser(objective):
    """E[x0 | x_t] for x0 ~ N(MU, S^2): the exact denoiser, whose ODE maps eps to MU + S * eps."""
    def denoise(x, t):
        alpha, sigma = objective.alpha_sigma(t.double().view(-1, 1, 1))
        return (MU + alpha * S ** 2 / (alpha ** 2 * S ** 2 + sigma ** 2) * (x - alpha * MU)).to(x.dtype)
    return denoise


class OracleModel:
    """A model that knows x0: it outputs the objective's prediction that denoises to x0 exactly."""

    def __init__(self, objective, x0):
        self.objective, self.x0, self.calls = objective, x0, 0

    def __call__(self, x, t, fused, *, x_mask=None):
        self.calls += 1
        return self.objective.prediction(x, t, self.x0)


def noise(shape, seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def gaussian_error(objective_name, sampler, steps, eps):
    objective = get_objective(objective_name)
    out = SAMPLERS[sampler](gaussian_denoiser(objective), eps.clone(), timesteps(steps), objective=objective)
    return out, (out - (MU + S * eps)).abs().max().item()


@pytest.mark.parametrize("objective_name, sampler", PAIRS)
def test_oracle_model_gives_x0_and_exact_solvers_stay_on_the_path(objective_name, sampler):
    objective = get_objective(objective_name)
    x0 = noise((2, 3, 11), seed=1, dtype=torch.float32) * 0.5 + 0.3
    model = OracleModel(objective, x0)
    states = []
    result = sample(model, objective, FusedInputs(), shape=(2, 3, 11), steps=4, sampler=sampler,
                    generator=torch.Generator().manual_seed(5), callback=lambda step: states.append(step))
    torch.testing.assert_close(result, x0, atol=1e-4, rtol=0)
    assert [s.i for s in states] == [0, 1, 2, 3] and states[0].t == 1.0 and states[-1].t_next == 0.0
    eps0 = torch.randn((2, 3, 11), generator=torch.Generator().manual_seed(5))  # the starting noise
    torch.testing.assert_close(states[0].x, eps0)
    # DDIM and DPM++ are exact for a constant x0 estimate, and so is Euler on rectified flow's
    # straight path: every intermediate state is alpha x0 + sigma eps0.
    if sampler in ("ddim", "dpmpp_2m") or objective_name == "rectified_flow":
        for step in states:
            expected = objective.noise(x0, eps0, torch.full((2,), step.t))
            torch.testing.assert_close(step.x, expected, atol=1e-4, rtol=0)
            torch.testing.assert_close(step.denoised, x0, atol=1e-4, rtol=0)
    assert model.calls == (7 if sampler == "heun" else 4)  # Heun: 2 a step, 1 for the last


@pytest.mark.parametrize("objective_name, sampler", PAIRS)
def test_gaussian_samples_approach_the_data_distribution_with_more_steps(objective_name, sampler):
    eps = noise((32, 4, 128))
    errors, moments = [], []
    for steps in (5, 10, 25, 50):
        out, error = gaussian_error(objective_name, sampler, steps, eps)
        exact = MU + S * eps
        errors.append(error)
        moments.append(max(abs(out.mean() - exact.mean()).item(), abs(out.std() - exact.std()).item()))
    assert errors[-1] < errors[1] < errors[0] and errors[-1] < 0.07, errors
    assert moments[-1] < moments[0] and moments[-1] < 0.03, moments
    # Monte-Carlo check of the target itself, so the closeness above means "N(MU, S^2)".
    assert abs(out.mean().item() - MU) < 0.01 and abs(out.std().item() - S) < 0.03


def test_higher_order_samplers_are_closer_than_euler_at_the_same_steps():
    # Measured (max abs error vs the exact ODE map, 25 steps, t even): v: dpmpp_2m 5e-3,
    # heun 1.2e-2, euler 4.1e-2, ddim 8.3e-2; rectified flow: heun 4.9e-3, dpmpp_2m 1.3e-2,
    # euler 7.6e-2.
    eps = torch.linspace(-3, 3, 61, dtype=torch.float64).view(1, 1, -1)
    for objective_name in OBJECTIVE_NAMES:
        error = {s: gaussian_error(objective_name, s, 25, eps)[1] for s in get_objective(objective_name).samplers}
        assert error["heun"] < error["euler"] / 3 and error["dpmpp_2m"] < error["euler"] / 3, error
        if objective_name == "v":
            assert error["dpmpp_2m"] < error["heun"] < error["euler"] < error["ddim"], error
        # Heun is second order: doubling the steps divides its error by about 4.
        assert gaussian_error(objective_name, "heun", 50, eps)[1] < error["heun"] / 3


def test_ddim_with_eta_draws_its_noise_from_the_generator_and_keeps_the_distribution():
    objective = get_objective("v")
    eps = noise((64, 4, 128))
    run = lambda seed: SAMPLERS["ddim"](gaussian_denoiser(objective), eps.clone(), timesteps(100), objective=objective,
                                        generator=torch.Generator().manual_seed(seed), eta=1.0)
    first = run(0)
    torch.manual_seed(99)
    assert torch.equal(first, run(0)) and not torch.equal(first, run(1))
    assert not torch.allclose(first, MU + S * eps, atol=0.05)  # a different (stochastic) map ...
    assert abs(first.mean().item() - MU) < 0.01 and abs(first.std().item() - S) < 0.02  # ... same law


@pytest.mark.parametrize("sampler", ["dpmpp_2m", "ddim"])
def test_sample_is_deterministic_from_the_generator_and_keeps_the_length(sampler):
    objective = get_objective("v")
    model = lambda x, t, fused, x_mask=None: 0.3 * x + t.view(-1, 1, 1)
    kwargs = dict(shape=(2, 5, 37), steps=6, sampler=sampler, eta=0.5 if sampler == "ddim" else 0.0)
    a = sample(model, objective, FusedInputs(), generator=torch.Generator().manual_seed(3), **kwargs)
    torch.manual_seed(1234)
    b = sample(model, objective, FusedInputs(), generator=torch.Generator().manual_seed(3), **kwargs)
    c = sample(model, objective, FusedInputs(), generator=torch.Generator().manual_seed(4), **kwargs)
    assert a.shape == (2, 5, 37) and torch.equal(a, b) and not torch.equal(a, c)


def test_x_mask_reaches_the_model_and_zeroes_padded_frames():
    seen = []

    def model(x, t, fused, *, x_mask=None):
        seen.append(x_mask)
        return torch.zeros_like(x)

    mask = torch.tensor([[True] * 9 + [False], [True] * 10])
    out = sample(model, "rectified_flow", FusedInputs(), shape=(2, 3, 10), steps=3, sampler="euler",
                 generator=torch.Generator().manual_seed(0), x_mask=mask)
    assert all(m is mask for m in seen) and out[0, :, 9].abs().max() == 0 and out[1, :, 9].abs().min() > 0


def test_timesteps_grid():
    grid = timesteps(4)
    assert grid.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    shifted = timesteps(4, shift=3.0, t_max=1.0)
    assert shifted[0] == 1.0 and shifted[-1] == 0.0 and shifted[2].item() == pytest.approx(0.75)
    assert timesteps(3, t_max=0.9)[0].item() == pytest.approx(0.9)
    for bad in (dict(steps=0), dict(steps=2.0), dict(steps=True), dict(steps=3, t_max=0.0), dict(steps=3, shift=-1)):
        with pytest.raises(GenerationInputError):
            timesteps(**bad)


def test_bad_names_grids_and_combinations_are_typed_errors():
    objective = get_objective("rectified_flow")
    with pytest.raises(GenerationInputError, match="valid samplers: euler, heun, dpmpp_2m, ddim"):
        sample(lambda *a, **k: a[0], objective, FusedInputs(), shape=(1, 2, 3), steps=2, sampler="lms")
    with pytest.raises(GenerationInputError, match="'ddim' does not fit the 'rectified_flow' objective.*use 'euler'"):
        sample(lambda *a, **k: a[0], objective, FusedInputs(), shape=(1, 2, 3), steps=2, sampler="ddim")
    with pytest.raises(GenerationInputError, match="'ddim' does not fit"):
        SAMPLERS["ddim"](lambda x, t: x, torch.zeros(1, 2, 3), timesteps(2), objective=objective)
    with pytest.raises(GenerationInputError, match="valid objectives: v, rectified_flow"):
        sample(lambda *a, **k: a[0], "edm", FusedInputs(), shape=(1, 2, 3), steps=2)
    with pytest.raises(GenerationInputError, match="steps: expected an integer >= 1; got 0"):
        sample(lambda *a, **k: a[0], "v", FusedInputs(), shape=(1, 2, 3), steps=0)
    with pytest.raises(GenerationInputError, match="shape: expected"):
        sample(lambda *a, **k: a[0], "v", FusedInputs(), shape=(1, 2), steps=2)
    with pytest.raises(GenerationInputError, match="only DDIM"):
        sample(lambda *a, **k: a[0], "v", FusedInputs(), shape=(1, 2, 3), steps=2, sampler="euler", eta=0.5)
    with pytest.raises(GenerationInputError, match="last value must be exactly 0"):
        SAMPLERS["euler"](lambda x, t: x, torch.zeros(1, 2, 3), torch.tensor([1.0, 0.1]), objective=objective)
    with pytest.raises(GenerationInputError, match="strictly decreasing"):
        SAMPLERS["euler"](lambda x, t: x, torch.zeros(1, 2, 3), torch.tensor([0.5, 1.0, 0.0]), objective=objective)
    with pytest.raises(GenerationInputError, match="eta: expected a number in"):
        SAMPLERS["ddim"](lambda x, t: x, torch.zeros(1, 2, 3), timesteps(2), objective=get_objective("v"), eta=2)
    with pytest.raises(GenerationInputError, match="valid samplers"):
        get_sampler("plms")
    with pytest.raises(GenerationInputError, match="fused: expected FusedInputs"):
        sample(lambda *a, **k: a[0], "v", {"global_cond": torch.zeros(1, 2)}, shape=(1, 2, 3), steps=2)
    with pytest.raises(GenerationInputError, match="objective: expected an Objective"):
        Denoiser(lambda *a, **k: a[0], "v", FusedInputs())


@pytest.mark.parametrize("objective_name", OBJECTIVE_NAMES)
def test_dpmpp_2m_matches_the_variance_exploding_formulation_on_an_uneven_grid(objective_name):
    """k-diffusion writes DPM++(2M) for x = x0 + s eps (VE, s = sigma / alpha); scaled by alpha,
    that is this VP sampler. The two agree step by step on a shifted (uneven) grid."""
    objective = get_objective(objective_name)
    denoise = gaussian_denoiser(objective)
    grid = timesteps(7, t_max=0.95, shift=3.0)
    eps = noise((2, 3, 5))
    ours = SAMPLERS["dpmpp_2m"](denoise, objective.alpha_sigma(grid[0])[1] * eps, grid, objective=objective)

    alpha_sigma = [tuple(float(v) for v in objective.alpha_sigma(t)) for t in grid[:-1]]
    s = [sg / a for a, sg in alpha_sigma] + [0.0]
    y = eps * alpha_sigma[0][1] / alpha_sigma[0][0]  # the VE state x / alpha
    old = None
    for i in range(len(s) - 1):
        a = alpha_sigma[i][0]
        d = denoise(a * y, torch.full((2,), float(grid[i]), dtype=torch.float64))
        if s[i + 1] == 0:
            y = d
            break
        h = torch.log(torch.tensor(s[i] / s[i + 1], dtype=torch.float64))
        if old is not None:
            r = torch.log(torch.tensor(s[i - 1] / s[i], dtype=torch.float64)) / h
            d_mix = (1 + 1 / (2 * r)) * d - (1 / (2 * r)) * old
        else:
            d_mix = d
        y = (s[i + 1] / s[i]) * y - torch.expm1(-h) * d_mix
        old = d
    torch.testing.assert_close(ours, y, atol=1e-10, rtol=0)
