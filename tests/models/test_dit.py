"""The DiT honours every mask and role, starts at zero, learns, and rejects what does not fit."""

import dataclasses

import pytest
import torch

from cuecraft.condition import Condition
from cuecraft.errors import ConfigError, FusionError
from cuecraft.fuser import ConditionFuser, FusedInputs, _resample
from cuecraft.models import DiT, DiTConfig

B, D, L = 2, 4, 7  # L odd: not a multiple of the patch size
CROSS, GLOBAL, PREPEND, CONCAT = 8, 6, 5, 3


def config(**changes):
    settings = dict(latent_dim=D, patch_size=2, dim=32, depth=2, heads=2, mlp_ratio=2.0, cross_attention_dim=CROSS,
                    global_dim=GLOBAL, prepend_dim=PREPEND, input_concat_dim=CONCAT, timestep_dim=16)
    return DiTConfig(**{**settings, **changes})


def perturbed(model, scale=0.2):
    """The model with every weight moved off its (partly zero) initialisation."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)
    return model.eval()


def fused_inputs(concat_length=3):
    return FusedInputs(
        prepend_cond=torch.randn(B, 2, PREPEND), prepend_mask=torch.tensor([[True, False], [True, True]]),
        cross_attention_src=torch.randn(B, 4, CROSS),
        cross_attention_mask=torch.tensor([[True, True, False, False], [True, True, True, False]]),
        global_cond=torch.randn(B, GLOBAL), input_concat=torch.randn(B, concat_length, CONCAT))


@pytest.fixture(params=[("rotary", 0), ("sinusoidal", 0), ("rotary", 3)], ids=["rotary", "sinusoidal", "conv3"])
def model(request):
    positions, output_conv = request.param
    return perturbed(DiT(config(positions=positions, output_conv=output_conv)))


def test_untrained_model_outputs_exactly_zero_for_odd_length():
    for patch_size, length, output_conv in ((2, 7, 0), (3, 10, 0), (1, 5, 0), (2, 7, 5)):
        out = DiT(config(patch_size=patch_size, output_conv=output_conv))(torch.randn(B, D, length), torch.rand(B),
                                                                          fused_inputs())
        assert out.shape == (B, D, length)
        assert torch.equal(out, torch.zeros_like(out))  # adaLN-zero + zero final layer


def test_padded_cross_attention_positions_change_nothing(model):
    x, t, fused = torch.randn(B, D, L), torch.rand(B), fused_inputs()
    reference = model(x, t, fused)
    assert reference.abs().mean() > 1e-2  # the perturbed model computes something
    mask = fused.cross_attention_mask.unsqueeze(-1)
    garbage = torch.where(mask, fused.cross_attention_src, torch.randn_like(fused.cross_attention_src) * 100)
    torch.testing.assert_close(model(x, t, dataclasses.replace(fused, cross_attention_src=garbage)), reference,
                               atol=1e-6, rtol=0)
    # An unmasked position does count.
    changed = fused.cross_attention_src.clone()
    changed[:, 0] += 1.0
    assert not torch.allclose(model(x, t, dataclasses.replace(fused, cross_attention_src=changed)), reference,
                              atol=1e-4)


def test_masked_prepend_token_changes_nothing(model):
    x, t, fused = torch.randn(B, D, L), torch.rand(B), fused_inputs()
    reference = model(x, t, fused)
    changed = fused.prepend_cond.clone()
    changed[0, 1] = 100.0  # masked in item 0
    out = model(x, t, dataclasses.replace(fused, prepend_cond=changed))
    torch.testing.assert_close(out, reference, atol=1e-6, rtol=0)
    changed[0, 0] += 1.0  # valid in item 0
    out = model(x, t, dataclasses.replace(fused, prepend_cond=changed))
    assert not torch.allclose(out[0], reference[0], atol=1e-4)
    torch.testing.assert_close(out[1], reference[1], atol=1e-6, rtol=0)  # items are independent


def test_fully_null_conditions_give_finite_output(model):
    fused = dataclasses.replace(fused_inputs(), prepend_mask=torch.zeros(B, 2, dtype=torch.bool),
                                cross_attention_mask=torch.zeros(B, 4, dtype=torch.bool))
    out = model(torch.randn(B, D, L), torch.rand(B), fused)
    assert torch.isfinite(out).all() and out.abs().mean() > 1e-2
    # Nothing valid at all (every frame padded, every condition masked): zeros, not NaN.
    empty = model(torch.randn(B, D, L), torch.rand(B), fused, x_mask=torch.zeros(B, L, dtype=torch.bool))
    assert torch.equal(empty, torch.zeros_like(empty))


def test_padded_frames_do_not_change_valid_frames(model):
    x, t, fused = torch.randn(B, D, L), torch.rand(B), fused_inputs()
    x_mask = torch.ones(B, L, dtype=torch.bool)
    x_mask[0, 4:] = False  # tokens (4, 5) and (6, pad) wholly padded
    x_mask[1, 5:] = False  # padded frame 5 shares token (4, 5) with valid frame 4
    reference = model(x, t, fused, x_mask=x_mask)
    garbage = torch.where(x_mask.unsqueeze(1), x, torch.randn_like(x) * 100)
    out = model(garbage, t, fused, x_mask=x_mask)
    torch.testing.assert_close(out, reference, atol=1e-6, rtol=0)
    assert torch.equal(out[0, :, 4:], torch.zeros(D, 3)) and torch.equal(out[1, :, 5:], torch.zeros(D, 2))
    # A shorter item gives the same valid frames as the padded one.
    alone = model(x[:1, :, :4], t[:1], dataclasses.replace(
        fused, **{f: getattr(fused, f)[:1] for f in ("prepend_cond", "prepend_mask", "cross_attention_src",
                                                      "cross_attention_mask", "global_cond")},
        input_concat=_resample(fused.input_concat, L)[:1, :4]))
    torch.testing.assert_close(alone[0], reference[0, :, :4], atol=1e-5, rtol=0)


def test_global_cond_and_t_change_the_output(model):
    x, t, fused = torch.randn(B, D, L), torch.rand(B), fused_inputs()
    reference = model(x, t, fused)
    other_global = model(x, t, dataclasses.replace(fused, global_cond=fused.global_cond + 1.0))
    other_t = model(x, t * 0.5, fused)
    for out in (other_global, other_t):
        assert (out - reference).abs().mean() > 1e-3
    torch.testing.assert_close(model(x, float(t[0]), fused)[0], reference[0])  # a scalar t broadcasts


def test_input_concat_of_another_length_is_resampled(model):
    x, t, fused = torch.randn(B, D, L), torch.rand(B), fused_inputs(concat_length=3)
    out = model(x, t, fused)
    stretched = _resample(fused.input_concat, L)  # nearest, as the fuser does with an input
    assert stretched.shape == (B, L, CONCAT)
    torch.testing.assert_close(model(x, t, dataclasses.replace(fused, input_concat=stretched)), out,
                               atol=1e-6, rtol=0)
    other = dataclasses.replace(fused, input_concat=fused.input_concat + 1.0)
    assert (model(x, t, other) - out).abs().mean() > 1e-3


def test_positions_tell_frames_apart(model):
    x = torch.randn(B, D, 1).expand(B, D, 8).contiguous()  # every frame the same
    fused = fused_inputs()
    out = model(x, torch.rand(B), fused)
    assert (out[..., 0:2] - out[..., 4:6]).abs().mean() > 1e-3  # only positions differ


def test_works_from_a_fuser_without_input():
    def condition(shape, mask=None):
        embedding = torch.randn(*shape)
        return Condition(embedding, torch.ones(shape[:2], dtype=torch.bool) if mask is None else mask)

    fuser = ConditionFuser({"cross": ["prompt"], "prepend": ["bpm"], "global": ["seconds"], "input_concat": ["melody"]})
    conditions = {"prompt": condition((B, 5, CROSS), torch.tensor([[True] * 3 + [False] * 2, [True] * 5])),
                  "bpm": condition((B, 1, PREPEND), torch.tensor([[False], [True]])),
                  "seconds": condition((B, 1, GLOBAL)), "melody": condition((B, 12, CONCAT))}
    fused = fuser(conditions)
    model = perturbed(DiT(config()))
    out = model(torch.randn(B, D, L), torch.rand(B), fused)
    assert out.shape == (B, D, L) and torch.isfinite(out).all()
    config().check_routing(fuser.routing)  # the routing fits the config
    with pytest.raises(FusionError, match="sum"):
        model(torch.randn(B, D, L), torch.rand(B), dataclasses.replace(fused, input=torch.randn(B, L, D)))


def test_gradients_reach_every_parameter():
    model = perturbed(DiT(config(qk_norm=True))).train()
    x_mask = torch.ones(B, L, dtype=torch.bool)
    x_mask[0, 5:] = False
    out = model(torch.randn(B, D, L), torch.rand(B), fused_inputs(), x_mask=x_mask)
    out.square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    assert model.parameter_count() == sum(p.numel() for p in model.parameters()) > 0


def test_a_few_steps_on_a_toy_regression_reduce_the_loss():
    model = DiT(config(depth=1, positions="rotary"))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, D, 8, generator=generator)
    fused = FusedInputs(
        prepend_cond=torch.randn(4, 1, PREPEND, generator=generator),
        prepend_mask=torch.ones(4, 1, dtype=torch.bool),
        cross_attention_src=torch.randn(4, 3, CROSS, generator=generator),
        cross_attention_mask=torch.ones(4, 3, dtype=torch.bool),
        global_cond=torch.randn(4, GLOBAL, generator=generator),
        input_concat=torch.randn(4, 8, CONCAT, generator=generator))
    t = torch.rand(4, generator=generator)
    # The target depends on the input, the global condition and the input-concat channels.
    target = -x + fused.global_cond[:, :D, None] + fused.input_concat[:, :, :1].transpose(1, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = (model(x, t, fused) - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], losses  # measured: 0.044


def test_bfloat16_autocast_is_close_to_float32(model):
    x, t, fused = torch.randn(B, D, L), torch.rand(B), fused_inputs()
    reference = model(x, t, fused)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(x, t, fused)
    assert torch.isfinite(low).all()
    relative = (low.float() - reference).norm() / reference.norm()
    assert relative < 0.05, relative.item()


def test_bad_config_lists_every_problem_by_field():
    with pytest.raises(ConfigError) as error:
        DiTConfig(latent_dim=0, dim=30, heads=4, positions="absolute", timestep_dim=7, qk_norm=1, global_dim=True,
                  output_conv=4)
    fields = {problem.split(":")[0] for problem in error.value.problems}
    assert fields == {"latent_dim", "positions", "timestep_dim", "qk_norm", "global_dim", "dim", "output_conv"}
    with pytest.raises(ConfigError, match="rotary positions need an even head width"):
        DiTConfig(latent_dim=4, dim=30, heads=2)


def test_from_dict_names_unknown_missing_and_bad_keys():
    assert DiTConfig.from_dict({"latent_dim": 8, "depth": 2}) == DiTConfig(latent_dim=8, depth=2)
    with pytest.raises(ConfigError) as error:
        DiTConfig.from_dict({"depht": 2, "heads": "4"}, path="backbone")
    assert sorted(p.split(":")[0] for p in error.value.problems) == \
        ["backbone.depht", "backbone.heads", "backbone.latent_dim"]
    with pytest.raises(ConfigError, match="expected a mapping"):
        DiTConfig.from_dict([("latent_dim", 8)])


def test_check_routing_rejects_input_roles_and_unset_widths():
    with pytest.raises(ConfigError) as error:
        config(prepend_dim=None).check_routing({"sum": ["beat"], "cross": ["prompt"], "prepend": ["bpm"],
                                                "input_concat": ["melody"]})
    text = str(error.value)
    assert "role 'sum'" in text and "backbone.prepend_dim" in text and "backbone.global_dim" in text


def test_widths_that_do_not_fit_name_the_field_and_both_widths():
    model = DiT(config(cross_attention_dim=64))
    fused = dataclasses.replace(fused_inputs(), cross_attention_src=torch.randn(B, 4, 48))
    with pytest.raises(FusionError, match=r"cross_attention_src has width 48 but cross_attention_dim is 64"):
        model(torch.randn(B, D, L), torch.rand(B), fused)
    model = DiT(config())
    cases = {
        "global_dim is 6 but fused.global_cond is None": dataclasses.replace(fused_inputs(), global_cond=None),
        "input_concat has width 2 but input_concat_dim is 3":
            dataclasses.replace(fused_inputs(), input_concat=torch.randn(B, 3, 2)),
        "prepend_cond's mask must be bool":
            dataclasses.replace(fused_inputs(), prepend_mask=torch.ones(B, 3, dtype=torch.bool)),
    }
    for message, fused in cases.items():
        with pytest.raises(FusionError, match=message):
            model(torch.randn(B, D, L), torch.rand(B), fused)
    with pytest.raises(FusionError, match="latent_dim = 4"):
        model(torch.randn(B, 5, L), torch.rand(B), fused_inputs())
    with pytest.raises(FusionError, match="prepend_dim is not set"):
        DiT(config(prepend_dim=None))(torch.randn(B, D, L), torch.rand(B), fused_inputs())
