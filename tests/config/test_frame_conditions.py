"""``beats`` and ``chords`` in cuecraft's JSON, stable-audio-tools' conditioning block and AudioCraft's
YAML, routed to input_concat, sum and input_interpolate; raw channels or a projection; the null
condition of dropout and of the unconditional branch is one path."""

from __future__ import annotations

import pytest
import torch
import yaml

from cuecraft.config import build_stack
from cuecraft.errors import ConfigError, FusionError

METADATA = [{"bpm": 120, "time_signature": "4/4", "chords": "Am F C G", "prompt": "x"},
            {"bpm": 91, "time_signature": "6/8", "key": "D minor", "prompt": "y"}]
FRAMES = {"frame_rate": 25, "duration": 8}  # T = 200


def cuecraft_config(**extra):
    return {"cond_dim": 16, "conditioners": [
        {"id": "prompt", "type": "lut", "roles": ["cross"], "config": {"n_bins": 32, "dim": 16}},
        {"id": "beats", "type": "beats", "roles": ["input_concat"], "config": dict(FRAMES)},
        {"id": "chords", "type": "chords", "roles": ["input_concat"], "config": dict(FRAMES)},
    ], **extra}


def test_cuecraft_json_routes_raw_channels_to_input_concat():
    stack = build_stack(cuecraft_config(backbone={"input_concat_dim": 30}), seed=0)
    conditions = stack.condition(METADATA)
    assert conditions["beats"].embedding.shape == (2, 200, 6) and conditions["chords"].embedding.shape == (2, 200, 24)
    direct = stack.provider.conditioners["chords"].condition([{"chords": "Am F C G", "bpm": 120}])
    assert torch.equal(conditions["chords"].embedding[:1], direct.embedding)  # raw: what the user sees is what goes in
    fused = stack.fuse(conditions, torch.zeros(2, 100, 8))
    assert fused.input.shape == (2, 100, 8 + 30)  # resampled to the input length, concatenated
    with pytest.raises(ConfigError, match="input_concat_dim: is 64, but the conditions routed to 'input_concat' "
                                          "add up to 30"):
        build_stack(cuecraft_config(backbone={"input_concat_dim": 64}))


def test_project_out_gives_cond_dim_and_an_explicit_width_needs_it():
    config = cuecraft_config()
    config["conditioners"][1]["config"]["project_out"] = True
    stack = build_stack(config, seed=0)
    assert stack.condition(METADATA)["beats"].embedding.shape == (2, 200, 16)
    config["conditioners"][2]["config"]["output_dim"] = 12
    with pytest.raises(ConfigError) as error:
        build_stack(config)
    assert error.value.problems[0].startswith("conditioners[2].config.output_dim: without project_out the output "
                                              "is the 24 raw channels; got 12")


def test_stable_audio_tools_conditioning_block():
    peer = {"model_type": "diffusion_cond", "model": {
        "conditioning": {"cond_dim": 16, "configs": [
            {"id": "beats", "type": "beats", "config": dict(FRAMES)},
            {"id": "chords", "type": "chords", "config": {**FRAMES, "project_out": True}}]},
        "diffusion": {"input_concat_ids": ["beats", "chords"], "config": {"input_concat_dim": 22}}}}
    stack = build_stack(peer, seed=0)
    conditions = stack.condition(METADATA)
    assert conditions["beats"].embedding.shape == (2, 200, 6) and conditions["chords"].embedding.shape == (2, 200, 16)
    assert stack.fuse(conditions, torch.zeros(2, 50, 4)).input.shape == (2, 50, 26)


def test_audiocraft_yaml_with_sum_and_input_interpolate_and_symbolic_dropout():
    text = f"""
transformer_lm: {{dim: 16}}
conditioners:
  beats: {{model: beats, beats: {{frame_rate: 25, duration: 8, time_signature: "3/4"}}}}
  chords: {{model: chords, chords: {{frame_rate: 25, duration: 8}}}}
fuser: {{sum: [beats], input_interpolate: [chords], cross: [], prepend: []}}
attribute_dropout: {{symbolic: {{chords: 0.5}}}}
classifier_free_guidance: {{training_dropout: 0.0, inference_coef: 3.0}}
"""
    stack = build_stack(yaml.safe_load(text), seed=0)
    conditions = stack.condition(METADATA)
    assert conditions["beats"].embedding.shape == (2, 200, 16)  # AudioCraft projects every condition
    fused = stack.fuse(conditions, torch.zeros(2, 200, 16))
    assert fused.input.shape == (2, 200, 16) and fused.input.abs().sum() > 0
    dropped = [stack.condition(METADATA, train=True, generator=torch.Generator().manual_seed(s))["chords"].mask.any(1)
               for s in range(40)]
    assert 0.3 < 1 - torch.stack(dropped).float().mean() < 0.7  # chords dropped about half the time
    with pytest.raises(FusionError, match="beats: role 'sum' needs length 150"):  # sum: the input's length exactly
        stack.fuse(conditions, torch.zeros(2, 150, 16))


def test_dropout_and_the_unconditional_branch_give_the_same_null():
    stack = build_stack(cuecraft_config(dropout={"cfg": 1.0}), seed=0)
    dropped = stack.condition(METADATA, train=True, generator=torch.Generator().manual_seed(0))
    _, unconditional = stack.guidance_inputs(METADATA, input=torch.zeros(2, 200, 8))
    for name in ("beats", "chords"):
        assert not dropped[name].mask.any() and torch.count_nonzero(dropped[name].embedding) == 0
    assert unconditional.input_concat.abs().sum() == 0
    fused = stack.fuse(dropped, torch.zeros(2, 200, 8))
    assert torch.equal(fused.input, unconditional.input)


def test_config_validate_runs_an_example_through_them(capsys):
    from cuecraft.config.report import validate_config

    report = validate_config(cuecraft_config())
    rows = {row.id: row for row in report.rows}
    assert tuple(rows["beats"].shape)[1:] == (200, 6) and tuple(rows["chords"].shape)[1:] == (200, 24)
