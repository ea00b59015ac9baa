"""Classifier-free guidance at sampling time, and FusedInputs batching."""

import pytest
import torch

from cuecraft.errors import FusionError, GenerationInputError
from cuecraft.fuser import FusedInputs
from cuecraft.guidance import combine_guidance
from cuecraft.models.objectives import get_objective
from cuecraft.sampling import Denoiser, GuidanceOptions, concat_fused, fused_batch_size, sample

B, D, L = 2, 4, 9


class ToyModel:
    """A conditioned 'model': the masked mean of the cross tokens (as a ramp over frames), the
    global condition and 0.5 x. Padding counted as a token would change the mean: it must not be."""

    def __init__(self):
        self.batches, self.ts = [], []

    def __call__(self, x, t, fused, *, x_mask=None):
        self.batches.append(x.shape[0])
        self.ts.append(t.clone())
        weight = fused.cross_attention_mask.unsqueeze(-1).to(x.dtype)  # [B, S, 1]
        pooled = (fused.cross_attention_src * weight).sum(1) / weight.sum(1).clamp(min=1)  # [B, D]
        ramp = torch.linspace(-1, 1, x.shape[-1], dtype=x.dtype)
        return 0.5 * x + pooled[:, :, None] * ramp + fused.global_cond[:, :, None] * (1 + t.view(-1, 1, 1))


def conditions(seed, length, valid):
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(length)[None, :] < torch.tensor(valid)[:, None]
    src = torch.randn(B, length, D, generator=g) * mask.unsqueeze(-1)
    return FusedInputs(cross_attention_src=src, cross_attention_mask=mask, global_cond=torch.randn(B, D, generator=g))


COND = conditions(0, 3, [3, 2])
NEG = conditions(1, 6, [6, 4])  # a longer negative prompt: padded when batched with COND
X = torch.randn(B, D, L, generator=torch.Generator().manual_seed(2))
T = torch.full((B,), 0.5)


def denoiser(**guidance):
    return Denoiser(ToyModel(), get_objective("v"), COND, negative=NEG, guidance=GuidanceOptions(**guidance))


def test_scale_one_is_the_conditional_prediction_in_one_pass():
    d = denoiser(scale=1.0)
    torch.testing.assert_close(d.prediction(X, T), ToyModel()(X, T, COND))
    assert d.model.batches == [B]


def test_scale_zero_is_the_negative_prediction_and_the_pass_is_batched():
    d = denoiser(scale=0.0)
    torch.testing.assert_close(d.prediction(X, T), ToyModel()(X, T, NEG), atol=1e-6, rtol=0)
    assert d.model.batches == [2 * B]


def test_guided_prediction_equals_separate_passes_despite_padding():
    d = denoiser(scale=4.0)
    separate = combine_guidance(ToyModel()(X, T, COND), ToyModel()(X, T, NEG), 4.0)
    torch.testing.assert_close(d.prediction(X, T), separate, atol=1e-5, rtol=0)
    objective = get_objective("v")
    torch.testing.assert_close(d(X, T), objective.denoised(X, T, separate), atol=1e-5, rtol=0)


def test_rescale_phi_one_matches_the_conditional_std():
    conditional = ToyModel()(X, T, COND)
    plain = denoiser(scale=6.0).prediction(X, T)
    rescaled = denoiser(scale=6.0, rescale_phi=1.0).prediction(X, T)
    torch.testing.assert_close(rescaled.std(dim=1), conditional.std(dim=1), atol=1e-5, rtol=0)
    assert (plain.std(dim=1) - conditional.std(dim=1)).abs().max() > 0.5  # guidance had inflated it
    half = denoiser(scale=6.0, rescale_phi=0.5).prediction(X, T)
    torch.testing.assert_close(half, 0.5 * (plain + rescaled), atol=1e-5, rtol=0)


def test_interval_skips_the_unconditional_pass_outside_it():
    model = ToyModel()
    sample(model, "v", COND, shape=(B, D, L), steps=10, sampler="euler", guidance_scale=3.0, negative=NEG,
           interval=(0.25, 0.75), generator=torch.Generator().manual_seed(0))
    nodes = [round(float(t[0]), 3) for t in model.ts]
    assert nodes == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    assert model.batches == [B] * 3 + [2 * B] * 5 + [B] * 2  # 10 calls, 5 of them doubled


def test_interval_acts_per_item():
    d = denoiser(scale=3.0, interval=(0.2, 0.6))
    t = torch.tensor([0.5, 0.9])
    out = d.prediction(X, t)
    conditional = ToyModel()(X, t, COND)
    guided = combine_guidance(conditional, ToyModel()(X, t, NEG), 3.0)
    torch.testing.assert_close(out[0], guided[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], conditional[1], atol=1e-6, rtol=0)


def test_guided_sampling_is_deterministic_and_differs_from_unguided():
    run = lambda scale: sample(ToyModel(), "rectified_flow", COND, shape=(B, D, L), steps=5, sampler="heun",
                               guidance_scale=scale, negative=NEG, rescale_phi=0.3,
                               generator=torch.Generator().manual_seed(8))
    a, b, plain = run(2.5), run(2.5), run(1.0)
    assert torch.equal(a, b) and (a - plain).abs().max() > 0.1


def test_guidance_errors():
    with pytest.raises(GenerationInputError, match="needs the unconditional branch"):
        Denoiser(ToyModel(), get_objective("v"), COND, guidance=GuidanceOptions(scale=2.0))
    with pytest.raises(GenerationInputError, match="negative conditions must match the batch: 1 items for 2"):
        one = FusedInputs(cross_attention_src=NEG.cross_attention_src[:1], cross_attention_mask=NEG.cross_attention_mask[:1],
                          global_cond=NEG.global_cond[:1])
        Denoiser(ToyModel(), get_objective("v"), COND, negative=one, guidance=GuidanceOptions(scale=2.0))
    with pytest.raises(GenerationInputError, match="rescale_phi: expected a number in"):
        GuidanceOptions(rescale_phi=1.5)
    with pytest.raises(GenerationInputError, match="guidance interval"):
        GuidanceOptions(interval=(0.8, 0.2))
    with pytest.raises(GenerationInputError, match="batch 3 but the conditions have batch 2"):
        sample(ToyModel(), "v", COND, shape=(3, D, L), steps=2)
    with pytest.raises(GenerationInputError, match="x has batch 3"):
        denoiser(scale=2.0)(torch.zeros(3, D, L), torch.zeros(3))


def test_concat_fused_pads_cross_and_prepend_with_masked_zeros():
    a = FusedInputs(cross_attention_src=torch.ones(2, 3, 4), cross_attention_mask=torch.tensor([[1, 1, 0], [1, 1, 1]]).bool(),
                    prepend_cond=torch.full((2, 1, 4), 2.0), prepend_mask=None, global_cond=torch.ones(2, 5))
    b = FusedInputs(cross_attention_src=torch.full((1, 5, 4), 3.0), cross_attention_mask=torch.ones(1, 5, dtype=torch.bool),
                    prepend_cond=torch.full((1, 2, 4), 4.0), prepend_mask=torch.tensor([[True, False]]),
                    global_cond=torch.zeros(1, 5))
    before = a.cross_attention_src.clone()
    both = concat_fused(a, b)
    assert both.cross_attention_src.shape == (3, 5, 4) and fused_batch_size(both) == 3
    assert both.cross_attention_mask.tolist() == [[True, True, False, False, False], [True] * 3 + [False] * 2, [True] * 5]
    assert both.cross_attention_src[:2, 3:].abs().max() == 0 and torch.equal(both.cross_attention_src[:2, :3], before)
    assert both.prepend_mask.tolist() == [[True, False], [True, False], [True, False]]  # None = all valid, then padded
    assert torch.equal(both.prepend_cond[:2, 1], torch.zeros(2, 4)) and torch.equal(both.prepend_cond[2], b.prepend_cond[0])
    assert torch.equal(both.global_cond, torch.cat((a.global_cond, b.global_cond)))
    assert both.input is None and both.input_concat is None
    assert torch.equal(a.cross_attention_src, before)  # inputs untouched


def test_concat_fused_refuses_parts_that_cannot_be_batched():
    a = FusedInputs(global_cond=torch.zeros(2, 5))
    with pytest.raises(FusionError, match="global_cond: present in some parts"):
        concat_fused(a, FusedInputs())
    with pytest.raises(FusionError, match="global_cond: the parts differ in shape"):
        concat_fused(a, FusedInputs(global_cond=torch.zeros(2, 6)))
    with pytest.raises(FusionError, match="cross_attention_src: the parts differ in width"):
        concat_fused(FusedInputs(cross_attention_src=torch.zeros(1, 2, 3)), FusedInputs(cross_attention_src=torch.zeros(1, 2, 4)))
    with pytest.raises(FusionError, match="disagree on the batch size"):
        concat_fused(FusedInputs(global_cond=torch.zeros(2, 5), input_concat=torch.zeros(3, 4, 1)))
    with pytest.raises(FusionError, match="takes FusedInputs"):
        concat_fused(a, {"global_cond": torch.zeros(2, 5)})


def test_guided_sampling_drives_the_dit_with_padded_negative_conditions():
    """The batched (padded) guidance pass through cuecraft's DiT equals separate passes."""
    from cuecraft.models import DiT, DiTConfig

    torch.manual_seed(0)
    dit = DiT(DiTConfig(latent_dim=D, patch_size=2, dim=32, depth=2, heads=2, cross_attention_dim=D,
                        global_dim=D)).eval()
    with torch.no_grad():  # adaLN-zero starts as the identity map: give every weight a value
        for p in dit.parameters():
            if p.abs().max() == 0:
                p.normal_(0.0, 0.1)
    with torch.no_grad():
        d = Denoiser(dit, get_objective("v"), COND, negative=NEG, guidance=GuidanceOptions(scale=3.0))
        separate = combine_guidance(dit(X, T, COND), dit(X, T, NEG), 3.0)
        torch.testing.assert_close(d.prediction(X, T), separate, atol=1e-5, rtol=0)
        out = sample(dit, "v", COND, shape=(B, D, L), steps=4, sampler="dpmpp_2m", guidance_scale=3.0,
                     negative=NEG, generator=torch.Generator().manual_seed(0))
    assert out.shape == (B, D, L) and bool(torch.isfinite(out).all())
