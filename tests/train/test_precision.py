"""Precision: ``auto`` takes bfloat16 on a CPU only when the work that will run measures faster in it."""

from __future__ import annotations

import time

import pytest

import cuecraft.train.loop as loop
import cuecraft.train.precision as precision
from cuecraft.errors import ConfigError
from cuecraft.train.precision import choose_precision
from tests.train.helpers import fast_config, make_data, one_thread


def _probe(seconds: dict[str, float], calls: list[str]):
    def probe(chosen) -> None:
        calls.append(chosen.name)
        time.sleep(seconds[chosen.name])

    return probe


@pytest.mark.parametrize("bf16_seconds, expected", [(0.002, "bfloat16"), (0.02, "float32"), (0.0098, "float32")])
def test_auto_follows_the_probe_on_a_cpu_with_bfloat16_units(monkeypatch, bf16_seconds, expected):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ["avx512_bf16"])
    calls: list[str] = []
    chosen = choose_precision("auto", "cpu", probe=_probe({"float32": 0.01, "bfloat16": bf16_seconds}, calls))
    assert chosen.name == expected, chosen.reason
    assert "a training step measured" in chosen.reason  # not the matmul micro-benchmark
    assert sorted(calls) == ["bfloat16"] * 3 + ["float32"] * 3  # one warm-up + 2 timed each
    # 0.0098 s: 1.02x faster, inside PROBE_MARGIN, so float32 (no gain worth the risk)


def test_no_bfloat16_units_means_float32_without_probing(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: [])
    calls: list[str] = []
    chosen = choose_precision("auto", "cpu", probe=_probe({"float32": 0.0, "bfloat16": 0.0}, calls))
    assert chosen.name == "float32" and calls == [] and "no bfloat16 units" in chosen.reason
    assert "WARNING" in choose_precision("bfloat16", "cpu").reason
    with pytest.raises(ConfigError, match="float16"):
        choose_precision("float16", "cpu")


def test_trainer_decides_auto_on_a_whole_step(tmp_path, monkeypatch):
    """The trainer hands choose_precision a probe of its own model and batch, and logs the outcome."""
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ["avx512_bf16"])
    monkeypatch.setattr(loop, "cpu_bf16_flags", lambda: ["avx512_bf16"])
    corpus = make_data(tmp_path / "corpus", items=4, seconds=1.0)
    messages: list[str] = []
    with one_thread():
        result = loop.train(fast_config(max_steps=1, warmup_steps=0, precision="auto", segment_seconds=1.0), corpus,
                            tmp_path / "run", log=messages.append)
    line = next(m for m in messages if m.startswith("precision:"))
    assert "a training step measured" in line, line
    assert result.precision in ("float32", "bfloat16") and line.startswith(f"precision: {result.precision} ")
