import json

import pytest
import torch

from cuecraft.config import DEFAULT_CONFIG, DEFAULT_METADATA, build_stack, read_file
from cuecraft.errors import ConfigError


def base_config(**changes):
    config = {
        "cond_dim": 8,
        "conditioners": [
            {"id": "prompt", "type": "lut", "roles": ["cross"], "config": {"n_bins": 16, "dim": 4}},
            {"id": "seconds", "type": "number", "roles": ["cross", "global"], "config": {"min_val": 0, "max_val": 10}},
        ],
    }
    config.update(changes)
    return config


def test_builds_provider_and_fuser_with_cond_dim_as_default_width():
    stack = build_stack(base_config())
    assert stack.provider.conditioners["prompt"].output_dim == 8
    assert stack.provider.conditioners["prompt"].dim == 4
    assert stack.fuser.routing["cross"] == ("prompt", "seconds")
    assert stack.fuser.routing["global"] == ("seconds",)
    assert stack.cfg_dropout is None and stack.attribute_dropout is None
    fused = stack.fuse(stack.condition([{"prompt": "a b", "seconds": 3}]))
    assert fused.cross_attention_src.shape == (1, 3, 8) and fused.global_cond.shape == (1, 8)


def test_seed_makes_weights_reproducible_without_touching_global_state():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a = build_stack(base_config(), seed=3)
    assert torch.equal(torch.rand(1), before)
    b = build_stack(base_config(), seed=3)
    for (name, p), (_, q) in zip(a.provider.state_dict().items(), b.provider.state_dict().items()):
        assert torch.equal(p, q), name


def test_training_dropout_comes_from_the_config():
    config = base_config(dropout={"cfg": 1.0})
    stack = build_stack(config)
    conditions = stack.condition([{"prompt": "x", "seconds": 1}], train=True, generator=torch.Generator().manual_seed(0))
    assert not any(c.mask.any() for c in conditions.values())
    assert all(c.mask.any() for c in stack.condition([{"prompt": "x", "seconds": 1}]).values())


def test_every_problem_is_reported_with_its_path():
    config = base_config()
    config["conditioners"][1]["config"] = {"min_val": 5, "max_val": 5}
    config["conditioners"].append({"id": "bpm", "type": "intt", "roles": ["global"], "config": {}})
    config["conditioners"].append({"id": "prompt", "type": "int", "roles": ["sideways"], "confg": {}})
    config["fuser"] = {"cross_attention_pos_emb": "yes"}
    with pytest.raises(ConfigError) as error:
        build_stack(config)
    problems = error.value.problems
    assert any(p.startswith("conditioners[3].confg: Extra inputs are not permitted") for p in problems)
    assert any(p.startswith("fuser.cross_attention_pos_emb: Input should be a valid boolean") for p in problems)
    config["conditioners"][3] = {"id": "prompt", "type": "int", "roles": ["sideways"]}
    config["fuser"] = {}
    with pytest.raises(ConfigError) as error:
        build_stack(config)
    assert error.value.problems == [
        "conditioners[3].id: 'prompt' is already used by conditioners[0]",
        "conditioners[3].roles[0]: unknown role 'sideways'; valid roles: prepend, sum, cross, input_interpolate, global, input_concat",
    ]
    config["conditioners"].pop()
    with pytest.raises(ConfigError) as error:
        build_stack(config)
    assert error.value.problems[0].startswith("conditioners[1].config.max_val: must be greater than min_val (5)")
    assert error.value.problems[1].startswith("conditioners[2].type: unknown conditioner type 'intt'; valid types:")


def test_attribute_dropout_errors_carry_their_path():
    with pytest.raises(ConfigError, match=r"dropout.attributes.text.prompt: expected a probability in \[0, 1\]; got 2"):
        build_stack(base_config(dropout={"attributes": {"text": {"prompt": 2}}}))


def test_impossible_routing_is_a_build_time_error():
    config = base_config()
    config["conditioners"][0]["roles"] = ["global"]
    with pytest.raises(ConfigError, match=r"prompt: a sequence of shape \[B, T \(variable\), 8\] cannot feed role 'global'"):
        build_stack(config)


def test_read_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        read_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ConfigError, match="broken.json: not valid JSON"):
        read_file(broken)
    yaml_file = tmp_path / "config.yaml"
    yaml_file.write_text("cond_dim: 8\nconditioners:\n  - {id: n, type: int, roles: [global]}\n")
    assert build_stack(yaml_file).provider.conditioners["n"].output_dim == 8


def test_shipped_example_builds_and_conditions_its_metadata():
    stack = build_stack(DEFAULT_CONFIG, seed=0)
    metadata = read_file(DEFAULT_METADATA)
    conditions = stack.condition(metadata)
    assert set(conditions) == set(json.loads(DEFAULT_CONFIG.read_text())["conditioners"][i]["id"] for i in range(5))
    fused = stack.fuse(conditions)
    assert fused.global_cond.shape == (len(metadata), 3 * 64)


def test_attribute_dropout_names_must_be_conditions_of_that_kind():
    with pytest.raises(ConfigError) as error:
        build_stack(base_config(dropout={"attributes": {"text": {"promt": 0.5, "seconds": 0.1}}}))
    assert error.value.problems == [
        "dropout.attributes.text.promt: no text condition is named 'promt'; conditions: ['prompt', 'seconds']",
        "dropout.attributes.text.seconds: no text condition is named 'seconds'; 'seconds' is a number condition",
    ]


def test_validate_and_build_share_one_build_path(tmp_path):
    from cuecraft.config.report import validate_config

    misspelled = base_config(dropout={"attributes": {"text": {"promt": 0.5}}})
    expected = ["dropout.attributes.text.promt: no text condition is named 'promt'; conditions: ['prompt', 'seconds']"]
    for build in (build_stack, validate_config):
        with pytest.raises(ConfigError) as error:
            build(misspelled)
        assert error.value.problems == expected, build.__name__
    # Both report every problem at once: a bad setting and a bad dropout name together.
    both = base_config(dropout={"attributes": {"number": {"second": 0.5}}})
    both["conditioners"][1]["config"]["max_val"] = -1
    for build in (build_stack, validate_config):
        with pytest.raises(ConfigError) as error:
            build(both)
        assert len(error.value.problems) == 2 and "max_val" in error.value.problems[0], build.__name__
    report = validate_config(base_config(dropout={"attributes": {"text": {"prompt": 0.5}}}))
    assert [row.id for row in report.rows] == ["prompt", "seconds"]
