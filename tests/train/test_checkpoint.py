"""Checkpoints round-trip exactly; torn, foreign or mismatched ones and bad data are typed errors before training."""

from __future__ import annotations

import json
import random

import pytest
import torch

from cuecraft.errors import CheckpointError, ConfigError, DatasetError
from cuecraft.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from cuecraft.train.loop import train
from tests.train.helpers import fast_config, make_data, one_thread, quiet


def _save(run, step=5):
    model = {"w": torch.randn(3, 4), "b": torch.randn(4)}
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.randn(3))], lr=1e-3)
    optimizer.param_groups[0]["params"][0].grad = torch.ones(3)
    optimizer.step()
    path = save_checkpoint(run, step, model=model, ema={k: v * 2 for k, v in model.items()},
                           optimizer=optimizer.state_dict(), state={"config": {"a": 1}, "rng": rng_state()})
    return path, model, optimizer


def test_round_trip(tmp_path):
    path, model, optimizer = _save(tmp_path)
    state = rng_state()
    expected = torch.rand(3)
    python_draw = random.random()
    loaded = load_checkpoint(tmp_path)
    assert loaded.path == path and loaded.step == 5
    for name in model:
        assert torch.equal(loaded.model[name], model[name]) and torch.equal(loaded.ema[name], 2 * model[name])
    assert torch.equal(loaded.optimizer["state.0.exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    set_rng_state(state)
    assert torch.equal(torch.rand(3), expected) and random.random() == python_draw
    _save(tmp_path, 6)
    _save(tmp_path, 7)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_00000006", "step_00000007"]


def test_torn_and_foreign_checkpoints_are_errors(tmp_path):
    path, _, _ = _save(tmp_path)
    data = (path / "ema.safetensors").read_bytes()
    (path / "ema.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="ema.safetensors: size or SHA-256"):
        load_checkpoint(tmp_path)
    (path / "state.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CheckpointError, match="not a cuecraft checkpoint"):
        load_checkpoint(path)
    (path / "state.json").write_text("{")
    with pytest.raises(CheckpointError, match="not readable as JSON"):
        load_checkpoint(path)
    (tmp_path / "checkpoints" / "latest").write_text("step_00000099\n")
    with pytest.raises(CheckpointError, match="names 'step_00000099'"):
        load_checkpoint(tmp_path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("corpus"), items=4, seconds=1.0)


def _never(step, metrics):
    raise AssertionError("training started")


def test_bad_inputs_fail_before_training(corpus, tmp_path):
    with one_thread():
        with pytest.raises(DatasetError, match="no such folder"):
            train(fast_config(), tmp_path / "missing", tmp_path / "a", log=quiet, on_step=_never)
        with pytest.raises(DatasetError, match="fewer than one batch"):
            train(fast_config(batch_size=8), corpus, tmp_path / "b", log=quiet, on_step=_never)
        with pytest.raises(CheckpointError, match="has no checkpoint"):
            train(fast_config(), corpus, tmp_path / "c", resume=True, log=quiet, on_step=_never)
        train(fast_config(max_steps=2), corpus, tmp_path / "d", log=quiet)
        with pytest.raises(CheckpointError, match="already holds a run"):
            train(fast_config(max_steps=2), corpus, tmp_path / "d", log=quiet, on_step=_never)
        with pytest.raises(CheckpointError, match=r"another config \(differs in: training\)"):
            train(fast_config(max_steps=4, lr=1.0), corpus, tmp_path / "d", resume=True, log=quiet, on_step=_never)
        with pytest.raises(ConfigError, match="training.batch_size"):
            train(fast_config(batch_size=3, grad_accum=2), corpus, tmp_path / "e", log=quiet, on_step=_never)
        latest = tmp_path / "d" / "checkpoints" / "step_00000002" / "model.safetensors"
        latest.write_bytes(b"torn")
        with pytest.raises(CheckpointError, match="model.safetensors"):
            train(fast_config(max_steps=4), corpus, tmp_path / "d", resume=True, log=quiet, on_step=_never)
