"""Guidance per condition group at sampling time: one pass of 3B equals the peers' formulas on three
separate passes, and the degenerate settings are plain guidance exactly."""

import pytest
import torch

from cuecraft.errors import GenerationInputError
from cuecraft.fuser import FusedInputs
from cuecraft.guidance import combine_guidance
from cuecraft.guidance_groups import branch_weights, combine_group_guidance
from cuecraft.models.objectives import get_objective
from cuecraft.sampling import Denoiser, GuidanceOptions, sample
from tests.sampling.test_guidance import B, COND, NEG, T, X, ToyModel, conditions

GROUP = conditions(3, 4, [4, 1])  # the group branch: another length again, padded in the batch


def denoiser(negative=NEG, group=GROUP, **guidance):
    return Denoiser(ToyModel(), get_objective("v"), COND, negative=negative, group=group,
                    guidance=GuidanceOptions(**guidance))


def separate():
    """(c, g, u): three separate forwards of B items each."""
    return ToyModel()(X, T, COND), ToyModel()(X, T, GROUP), ToyModel()(X, T, NEG)


def test_without_branch_in_one_3b_pass_is_musicgen_style_double_cfg():
    alpha, beta = 3.0, 5.0  # MusicGen-Style: cfg_coef, cfg_coef_beta
    d = denoiser(scale=alpha, group_scale=alpha * (beta - 1))
    guided = d.prediction(X, T)
    assert d.model.batches == [3 * B]
    c, w, u = separate()
    musicgen_style = u + alpha * (w + beta * (c - w) - u)  # AudioCraft lm.py, as written there
    torch.testing.assert_close(guided, musicgen_style, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(guided, u + alpha * (c - u) + alpha * (beta - 1) * (c - w), atol=1e-5, rtol=1e-6)


def test_only_branch_in_one_3b_pass_is_jasco_multi_source_cfg():
    all_, text = 1.75, 3.5  # JASCO: cfg_coef_all, cfg_coef_txt
    d = denoiser(scale=all_, group_scale=text, group_branch="only")
    guided = d.prediction(X, T)
    assert d.model.batches == [3 * B]
    c, t, u = separate()
    jasco = all_ * c + text * t + (1 - all_ - text) * u  # AudioCraft flow_matching.py: sum of weight * term
    torch.testing.assert_close(guided, jasco, atol=1e-5, rtol=1e-6)
    objective = get_objective("v")
    torch.testing.assert_close(d(X, T), objective.denoised(X, T, jasco), atol=1e-5, rtol=1e-6)


def test_group_scale_zero_is_plain_guidance_bit_for_bit():
    for branch in ("without", "only"):
        d = denoiser(scale=4.0, group_scale=0.0, group_branch=branch)
        plain = Denoiser(ToyModel(), get_objective("v"), COND, negative=NEG, guidance=GuidanceOptions(scale=4.0))
        assert torch.equal(d.prediction(X, T), plain.prediction(X, T))
        assert d.model.batches == [2 * B]
    d = denoiser(scale=1.0, group_scale=0.0)
    assert torch.equal(d.prediction(X, T), ToyModel()(X, T, COND)) and d.model.batches == [B]


def test_one_active_scale_is_a_2b_pass():
    c, g, u = separate()
    d = denoiser(negative=None, scale=1.0, group_scale=2.0)  # "without", s = 1: u's weight is 0, not computed
    torch.testing.assert_close(d.prediction(X, T), c + 2.0 * (c - g), atol=1e-5, rtol=1e-6)
    assert d.model.batches == [2 * B]
    d = denoiser(negative=None, scale=0.25, group_scale=0.75, group_branch="only")  # s + s_g = 1
    torch.testing.assert_close(d.prediction(X, T), 0.25 * c + 0.75 * g, atol=1e-5, rtol=1e-6)
    assert d.model.batches == [2 * B]


def test_group_equal_to_the_conditional_branch_reduces_to_plain_cfg():
    # "without" with a group whose nulling changes nothing (g = c): plain u + s (c - u)
    d = Denoiser(ToyModel(), get_objective("v"), COND, negative=NEG, group=COND,
                 guidance=GuidanceOptions(scale=3.0, group_scale=5.0))
    plain = combine_guidance(ToyModel()(X, T, COND), ToyModel()(X, T, NEG), 3.0)
    torch.testing.assert_close(d.prediction(X, T), plain, atol=1e-5, rtol=1e-6)
    # "only" with a group branch equal to the unconditional one (the group is empty in effect): plain too
    d = Denoiser(ToyModel(), get_objective("v"), COND, negative=NEG, group=NEG,
                 guidance=GuidanceOptions(scale=3.0, group_scale=5.0, group_branch="only"))
    torch.testing.assert_close(d.prediction(X, T), plain, atol=1e-5, rtol=1e-6)


def test_weights_sum_to_one_and_match_the_combination():
    c, g, u = (torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(s)) for s in range(3))
    for branch in ("without", "only"):
        for scale, group_scale in ((1.75, 3.5), (3.0, 12.0), (0.0, 1.0), (1.0, 0.0)):
            w_c, w_g, w_u = branch_weights(scale, group_scale, branch)
            assert w_c + w_g + w_u == pytest.approx(1.0)
            torch.testing.assert_close(combine_group_guidance(c, g, u, scale, group_scale, branch),
                                       w_c * c + w_g * g + w_u * u, atol=1e-5, rtol=1e-6)


def test_rescale_and_interval_act_on_the_group_result():
    c, g, u = separate()
    d = denoiser(scale=3.0, group_scale=2.0, rescale_phi=1.0)
    torch.testing.assert_close(d.prediction(X, T).std(dim=1), c.std(dim=1), atol=1e-4, rtol=1e-4)
    d = denoiser(scale=3.0, group_scale=2.0, interval=(0.0, 0.2))  # T = 0.5 is outside
    torch.testing.assert_close(d.prediction(X, T), c)
    assert d.model.batches == [B]


def test_sample_with_a_group_is_deterministic_and_differs_from_plain():
    objective = get_objective("v")
    kwargs = dict(shape=(B, 4, 9), steps=3, sampler="euler", negative=NEG,
                  generator=None, noise=torch.randn(B, 4, 9, generator=torch.Generator().manual_seed(5)))
    plain = sample(ToyModel(), objective, COND, guidance_scale=2.0, **kwargs)
    grouped = sample(ToyModel(), objective, COND, guidance_scale=2.0, group_scale=3.0, group=GROUP, **kwargs)
    again = sample(ToyModel(), objective, COND, guidance_scale=2.0, group_scale=3.0, group=GROUP, **kwargs)
    assert torch.equal(grouped, again) and not torch.allclose(grouped, plain)
    zero = sample(ToyModel(), objective, COND, guidance_scale=2.0, group_scale=0.0, group=GROUP, **kwargs)
    assert torch.equal(zero, plain)


def test_group_guidance_errors():
    with pytest.raises(GenerationInputError, match="needs the group branch"):
        denoiser(group=None, scale=2.0, group_scale=1.0)
    with pytest.raises(GenerationInputError, match="needs the unconditional branch"):
        denoiser(negative=None, scale=2.0, group_scale=1.0)
    with pytest.raises(GenerationInputError) as error:
        GuidanceOptions(group_scale=float("nan"), group_branch="both")
    assert len(error.value.problems) == 2 and "without, only" in str(error.value)
    with pytest.raises(GenerationInputError, match="group conditions must match the batch"):
        denoiser(group=_first_item(GROUP), scale=2.0, group_scale=1.0)


def _first_item(fused: FusedInputs) -> FusedInputs:
    return FusedInputs(cross_attention_src=fused.cross_attention_src[:1],
                       cross_attention_mask=fused.cross_attention_mask[:1], global_cond=fused.global_cond[:1])
