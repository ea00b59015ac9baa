import pytest
import torch
from torch import nn

from cuecraft.errors import ConditioningInputError
from cuecraft.guidance import combine_guidance
from cuecraft.models import ConditionedModel

CONFIG = {
    "cond_dim": 8,
    "conditioners": [
        {"id": "prompt", "type": "lut", "roles": ["cross"], "config": {"n_bins": 32, "dim": 8}},
        {"id": "seconds", "type": "number", "roles": ["cross", "global"], "config": {"min_val": 0, "max_val": 60}},
        {"id": "genre", "type": "list", "roles": ["prepend"], "config": {"options": ["rock", "jazz"]}},
        {"id": "melody", "type": "lut", "roles": ["input_concat"], "config": {"n_bins": 32, "dim": 4, "output_dim": 4, "tokenizer": "noop"}},
    ],
    "guidance": {"scale": 3.0},
}
METADATA = [{"prompt": "deep house", "seconds": 30, "genre": "jazz", "melody": "c e g"},
            {"prompt": "rock ballad with guitar", "seconds": 12, "genre": None, "melody": "a"}]


class Recorder(nn.Module):
    """A stand-in backbone: records its inputs, predicts from global_cond so guidance shows."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, t, **inputs):
        self.calls.append({"x": x, "t": t, **inputs})
        return x + inputs["global_cond"].sum(-1)[:, None, None]


def test_backbone_inputs_have_the_documented_shapes():
    model = ConditionedModel.from_config(CONFIG, Recorder(), seed=0)
    inputs = model.conditioning_inputs(METADATA)
    assert {k: tuple(v.shape) for k, v in inputs.items()} == {
        "cross_attn_cond": (2, 5, 8), "cross_attn_mask": (2, 5), "global_cond": (2, 8),
        "prepend_cond": (2, 1, 8), "prepend_cond_mask": (2, 1), "input_concat_cond": (2, 4, 1)}
    assert inputs["cross_attn_mask"].tolist() == [[True, True, False, False, True], [True] * 5]
    assert inputs["prepend_cond_mask"].tolist() == [[True], [False]]


def test_guidance_batches_conditional_then_null_or_negative():
    model = ConditionedModel.from_config(CONFIG, Recorder(), seed=0)
    doubled = model.conditioning_inputs(METADATA, guidance=True)
    assert doubled["global_cond"].shape == (4, 8)
    assert torch.count_nonzero(doubled["global_cond"][2:]) == 0 and not doubled["cross_attn_mask"][2:].any()
    negative = [{**m, "prompt": "noise"} for m in METADATA]
    with_negative = model.conditioning_inputs(METADATA, negative, guidance=True)
    assert with_negative["cross_attn_mask"][2:, :1].all()
    with pytest.raises(ConditioningInputError, match="negative metadata only takes part with guidance=True"):
        model.conditioning_inputs(METADATA, negative)


def test_forward_applies_the_configured_guidance_in_one_pass():
    backbone = Recorder()
    model = ConditionedModel.from_config(CONFIG, backbone, seed=0)
    x, t = torch.randn(2, 3, 4), torch.tensor([0.5, 0.1])
    out = model(x, t, METADATA)
    assert len(backbone.calls) == 1 and backbone.calls[0]["x"].shape == (4, 3, 4)
    inputs = model.conditioning_inputs(METADATA)
    conditional = x + inputs["global_cond"].sum(-1)[:, None, None]
    torch.testing.assert_close(out, combine_guidance(conditional, x, 3.0))
    torch.testing.assert_close(model(x, t, METADATA, cfg_scale=1.0), conditional)
    with pytest.raises(ConditioningInputError, match="1 metadata items for a batch of 2"):
        model(x, t, METADATA[:1])


def test_training_dropout_and_state():
    config = {**CONFIG, "dropout": {"cfg": 1.0}}
    model = ConditionedModel.from_config(config, Recorder(), seed=0)
    inputs = model.conditioning_inputs(METADATA, train=True, generator=torch.Generator().manual_seed(0))
    assert torch.count_nonzero(inputs["global_cond"]) == 0
    assert any(k.startswith("provider.conditioners.prompt.") for k in model.state_dict())


SAT_CONFIG = {"model": {"conditioning": {"cond_dim": 4, "configs": [
    {"id": "prompt", "type": "list", "config": {"options": ["techno", "jazz"]}},
    {"id": "seconds_start", "type": "number", "config": {"min_val": 0, "max_val": 512}},
    {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 512}}]},
    "diffusion": {"cross_attention_cond_ids": ["prompt", "seconds_start", "seconds_total"],
                  "global_cond_ids": ["seconds_start", "seconds_total"]}}}
SAT_METADATA = [{"prompt": "jazz", "seconds_start": 0, "seconds_total": 30},
                {"prompt": "techno", "seconds_start": 5, "seconds_total": 47}]


def test_guidance_keeps_stable_audio_global_conditions_in_both_halves():
    # stable-audio-tools' DiT CFG: batch_global_cond = cat([global, global]); cross: cat([cross, zeros])
    backbone = Recorder()
    model = ConditionedModel.from_config(SAT_CONFIG, backbone, seed=0)
    conditional = model.conditioning_inputs(SAT_METADATA)
    x, t = torch.randn(2, 3, 4), torch.tensor([0.5, 0.1])
    out = model(x, t, SAT_METADATA, cfg_scale=6.0)
    seen = backbone.calls[-1]
    assert seen["global_cond"].shape == (4, 8) and conditional["global_cond"].abs().sum() > 0
    assert torch.equal(seen["global_cond"], torch.cat([conditional["global_cond"]] * 2))
    assert torch.equal(seen["cross_attn_cond"][:2], conditional["cross_attn_cond"])
    assert seen["cross_attn_cond"].shape == (4, 3, 4) and torch.count_nonzero(seen["cross_attn_cond"][2:]) == 0
    # the global condition is the same in both halves, so this backbone's guided output is x + g
    torch.testing.assert_close(out, x + conditional["global_cond"].sum(-1)[:, None, None])
    # cuecraft's own config: the unconditional branch has the null global condition (zeros)
    own = ConditionedModel.from_config(CONFIG, Recorder(), seed=0)
    assert torch.count_nonzero(own.conditioning_inputs(METADATA, guidance=True)["global_cond"][2:]) == 0


def test_guidance_halves_of_different_lengths_are_padded_masked():
    model = ConditionedModel.from_config(CONFIG, Recorder(), seed=0)
    short = [{**m, "prompt": "a"} for m in METADATA]  # 1 word: the negative half's prompt is shorter
    doubled = model.conditioning_inputs(METADATA, short, guidance=True)
    conditional = model.conditioning_inputs(METADATA)
    negative = model.conditioning_inputs(short)
    assert doubled["cross_attn_cond"].shape == (4, 5, 8) and negative["cross_attn_cond"].shape == (2, 2, 8)
    assert torch.equal(doubled["cross_attn_cond"][:2], conditional["cross_attn_cond"])
    assert torch.equal(doubled["cross_attn_cond"][2:, :2], negative["cross_attn_cond"])
    assert torch.count_nonzero(doubled["cross_attn_cond"][2:, 2:]) == 0
    assert doubled["cross_attn_mask"][2:].tolist() == [[True, True, False, False, False]] * 2
