"""A run whose loss turns non-finite stops with a typed error and exports nothing (issue 23)."""

from __future__ import annotations

import math

import pytest

from cuecraft.errors import TrainingError
from cuecraft.train.loop import train
from tests.train.helpers import fast_config, make_data, one_thread, quiet


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("corpus"), items=4, seconds=1.0)


def test_a_non_finite_loss_stops_the_run_with_a_typed_error_and_no_export(corpus, tmp_path, monkeypatch):
    from cuecraft.models import objectives

    real = objectives._GaussianPath.loss
    calls = []

    def loss(self, *args, **kwargs):  # the second step's loss is NaN, as a diverging run's
        calls.append(1)
        value = real(self, *args, **kwargs)
        return value * math.nan if len(calls) == 2 else value

    monkeypatch.setattr(objectives._GaussianPath, "loss", loss)
    with one_thread(), pytest.raises(TrainingError, match=r"step 2: the training loss is nan.*nothing exported"):
        train(fast_config(max_steps=3, segment_seconds=1.0), corpus, tmp_path / "run", log=quiet)
    assert not (tmp_path / "run" / "model").exists()


def test_the_cli_says_so_in_one_line_with_exit_status_2(corpus, tmp_path, monkeypatch, capsys):
    import json

    from cuecraft.cli import main
    from cuecraft.models import objectives

    real = objectives._GaussianPath.loss
    monkeypatch.setattr(objectives._GaussianPath, "loss", lambda self, *a, **k: real(self, *a, **k) * math.inf)
    config = tmp_path / "model.json"
    config.write_text(json.dumps(fast_config(max_steps=2, segment_seconds=1.0)))
    with one_thread():
        status = main(["train", "--config", str(config), "--data", str(corpus), "--out", str(tmp_path / "run"),
                       "--no-progress"])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("cuecraft train: error: step 1: the training loss is") and "Traceback" not in err
    assert not (tmp_path / "run" / "model").exists()
