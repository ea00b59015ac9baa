"""The training log's sample statistics: unconditional samples from fixed noises, measured against
the data every ``quality_every`` steps, so a run whose samples stay noisy shows it early."""

from __future__ import annotations

import json

import pytest

from cuecraft.train.loop import train
from tests.train.helpers import fast_config, make_data, one_thread, quiet


def test_quality_lines_are_written_every_quality_every_steps(tmp_path):
    corpus = make_data(tmp_path / "corpus", items=4, seconds=1.0)
    config = fast_config(max_steps=4, quality_every=2, quality_samples=2, segment_seconds=1.0)
    messages = []
    with one_thread():
        train(config, corpus, tmp_path / "run", log=messages.append)
    lines = [json.loads(line) for line in (tmp_path / "run" / "quality.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4]
    for line in lines:
        # a barely trained model's samples are close to its starting noise: far rougher than a mel
        assert line["roughness_ratio"] == pytest.approx(line["roughness"] / line["data_roughness"])
        assert line["roughness_ratio"] > 2 and 0.5 < line["std_ratio"] < 2
    assert any(m.startswith("samples at step 4: roughness x") for m in messages)
    # a line written after the last checkpoint (a crash) is dropped on resume, not kept twice
    with open(tmp_path / "run" / "quality.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({**lines[-1], "step": 5}) + "\n")
    with one_thread():
        train(config, corpus, tmp_path / "run", max_steps=6, resume=True, log=quiet)
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "quality.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]


def test_quality_settings_are_checked():
    from cuecraft.config.model import parse_model_config
    from cuecraft.errors import ConfigError

    with pytest.raises(ConfigError, match="training.quality_samples"):
        parse_model_config(fast_config(quality_samples=0))
    with pytest.raises(ConfigError, match="training.quality_every"):
        parse_model_config(fast_config(quality_every=-1))
