"""All N waveforms per prompt by default (as diffusers), per-prompt candidate numbers, and a fast
mode that picks its precision from what the processor does well."""

import pytest
import torch

from cuecraft.pipelines import precision
from cuecraft.pipelines.precision import choose_precision

SETTINGS = dict(num_inference_steps=2, audio_length_in_s=0.016, num_waveforms_per_prompt=3)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_every_candidate_comes_back_ranked_by_default(pipe):
    out = pipe(["fast techno", "slow piano"], generator=seeded(), output_type="pt", **SETTINGS)
    assert out.audios.shape == (6, 256) and out.candidates.shape == (2, 3)
    assert [sorted(row) for row in out.candidates.tolist()] == [[0, 1, 2], [0, 1, 2]]  # each prompt's own
    assert torch.all(out.scores[:, :-1] >= out.scores[:, 1:])  # best first
    best = pipe(["fast techno", "slow piano"], generator=seeded(), output_type="pt", num_waveforms_to_keep=1,
                **SETTINGS)
    assert best.candidates.tolist() == out.candidates[:, :1].tolist()
    torch.testing.assert_close(best.audios, out.audios.view(2, 3, 256)[:, 0])


def fake_processor(monkeypatch, flags, speedups):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(precision, "cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(precision, "matmul_speedup", lambda device, dtype: speedups[dtype])


def test_no_bfloat16_units_keeps_float32_and_says_why(monkeypatch):
    fake_processor(monkeypatch, {"avx2", "fma"}, {"bfloat16": 0.13, "float16": 0.05})
    choice = choose_precision("cpu")
    assert choice.dtype == "float32" and choice.speedups == {"bfloat16": 0.13, "float16": 0.05}
    assert "CPU capability AVX2: no bfloat16/float16 matrix units" in choice.reason
    assert "float32 is kept" in choice.reason


def test_units_that_are_really_faster_are_used(monkeypatch):
    fake_processor(monkeypatch, {"avx512_bf16", "amx_bf16"}, {"bfloat16": 2.5, "float16": 0.3})
    choice = choose_precision("cpu")
    assert choice.dtype == "bfloat16" and "avx512_bf16, amx_bf16" in choice.reason
    fake_processor(monkeypatch, {"avx512_bf16"}, {"bfloat16": 1.02, "float16": 0.3})  # units, but no gain
    assert choose_precision("cpu").dtype == "float32"


def test_set_fast_mode_never_slows_a_run(pipe, monkeypatch):
    fake_processor(monkeypatch, {"avx2"}, {"bfloat16": 0.13, "float16": 0.05})
    assert pipe.set_fast_mode().autocast_dtype == "float32"  # auto
    with pytest.warns(UserWarning, match=r"set_fast_mode\('bfloat16'\) keeps float32: CPU capability AVX2"):
        pipe.set_fast_mode("bfloat16")
    assert pipe.autocast_dtype == "float32" and "float32 is kept" in pipe.precision.reason
    assert pipe.set_fast_mode("bfloat16", force=True).autocast_dtype == "bfloat16"
    fake_processor(monkeypatch, {"amx_bf16"}, {"bfloat16": 3.0, "float16": 0.5})
    assert pipe.set_fast_mode().autocast_dtype == "bfloat16"


def test_this_machine_is_measured_once():
    precision.matmul_speedup.cache_clear()
    first = precision.matmul_speedup("cpu", "bfloat16", 64, 2)
    assert first > 0 and precision.matmul_speedup("cpu", "bfloat16", 64, 2) == first  # cached
    assert precision.matmul_speedup.cache_info().hits >= 1
