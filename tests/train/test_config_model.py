"""The model config: every problem reported together with its path; widths checked against the routing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cuecraft.config.model import build_model, parse_model_config
from cuecraft.errors import ConfigError
from tests.train.helpers import fast_config

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_config_is_shipped_and_builds():
    shipped = ROOT / "src" / "cuecraft" / "config" / "examples" / "tiny.json"
    assert json.loads(shipped.read_text()) == json.loads((ROOT / "configs" / "tiny.json").read_text())
    stack, representation, dit, objective = build_model(parse_model_config(ROOT / "configs" / "tiny.json"))
    assert representation.latent_dim == dit.config.latent_dim == 32
    assert set(stack.types) == {"prompt", "bpm", "key"} and objective.name == "v"


def test_every_problem_is_reported_with_its_path():
    config = fast_config(lr=-1, batch_size=3, grad_accum=2, precision="float8")
    config["representation"].update(n_mels=-1, bogus=1)
    config["backbone"].update(heads=3, unknown_field=1)
    config["objective"] = {"type": "x0"}
    with pytest.raises(ConfigError) as caught:
        parse_model_config(config)
    text = str(caught.value)
    for path in ("training.lr", "training.precision", "representation.n_mels", "representation.bogus",
                 "backbone.unknown_field", "backbone.dim", "objective.type"):
        assert path in text, (path, text)
    with pytest.raises(ConfigError, match="training.batch_size: 3 is not a multiple of grad_accum"):
        parse_model_config(fast_config(batch_size=3, grad_accum=2))


def test_widths_are_checked_against_the_routed_conditions():
    config = fast_config()
    config["backbone"]["global_dim"] = 48
    with pytest.raises(ConfigError, match=r"backbone.global_dim: is 48, but the conditions routed to 'global' add up to 32"):
        build_model(config)
    config = fast_config()
    config["backbone"]["latent_dim"] = 20
    with pytest.raises(ConfigError, match="backbone.latent_dim: is 20, but the representation gives 16"):
        build_model(config)
    config = fast_config()
    config["backbone"]["global_dim"] = None
    with pytest.raises(ConfigError, match="backbone.global_dim"):
        build_model(config)


def test_cli_validate_recognises_a_model_config(tmp_path, capsys):
    from cuecraft.cli import main
    from cuecraft.config.model import build_model as build

    path = tmp_path / "model.json"
    path.write_text(json.dumps(fast_config()))
    assert main(["config", "validate", str(path)]) == 0
    out = capsys.readouterr().out
    dit = build(fast_config()).dit
    assert "valid model config (conditioning: cuecraft)" in out
    assert "name  list    cross+global  [2, 1, 32]" in out and "bpm   number  cross" in out
    assert "mel: 16000 Hz, 16 bands, hop 256 (62.5 frames/s), 1 channel -> 16 per frame" in out
    assert f"depth 2, 4 heads, patch 1, rotary positions; {dit.parameter_count():,} parameters" in out
    assert "objective:      v, output target, timesteps uniform" in out
    # a width that does not fit fails like any invalid config: exit status 2, the field path named
    assert main(["config", "validate", str(path), "--set", "backbone.global_dim=16"]) == 2
    assert "backbone.global_dim" in capsys.readouterr().err


def test_a_patch_wider_than_the_token_is_refused_for_training_unless_the_network_outputs_x0(tmp_path):
    from cuecraft.config.model import training_problems
    from cuecraft.config.report import validate_model_config
    from cuecraft.train.loop import train

    config = fast_config()
    config["backbone"].update(patch_size=8, dim=64)  # 8 frames x 16 bands = 128 values in a width of 64
    parsed = parse_model_config(config)  # exported models made before the rule still load
    (problem,) = training_problems(parsed)
    assert "128 values is wider than the token (dim 64)" in problem and "patch_size <= 4" in problem
    with pytest.raises(ConfigError, match="backbone.patch_size"):
        validate_model_config(config)
    with pytest.raises(ConfigError, match="backbone.patch_size"):
        train(config, tmp_path / "no-data-needed", tmp_path / "run")
    assert not (tmp_path / "run").exists()
    config["objective"]["output"] = "x0"
    assert training_problems(parse_model_config(config)) == []
    config["backbone"].update(patch_size=4)
    config["objective"]["output"] = "target"
    assert training_problems(parse_model_config(config)) == []  # 64 values fit a width of 64
