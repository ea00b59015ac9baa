"""Model configs refuse non-finite and unbounded values at validate time (issue 23).

Every value the issue found accepted (``lr: Infinity``, ``depth: 1000000``, ``num_workers: 1000000``,
a NaN ``timestep_mean``, sizes without a bound, demo prompts the stack cannot read) is a ConfigError
naming the field, before anything is allocated, fitted or written.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cuecraft.config.model import build_model, parse_model_config
from cuecraft.errors import ConfigError
from tests.train.helpers import fast_config

ROOT = Path(__file__).resolve().parents[2]


def _refused(config: dict, field: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_model_config(config)
    assert field in str(caught.value), str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize("field, value", [
    ("lr", math.inf), ("lr", math.nan), ("lr", 1e10), ("weight_decay", math.inf), ("grad_clip", math.nan),
    ("ema_decay", math.nan), ("min_lr_ratio", math.nan), ("betas", [2.0, 0.5]), ("betas", [0.9, math.nan]),
    ("num_workers", 1_000_000), ("batch_size", 10**9), ("max_steps", 10**400), ("demo_steps", 10**9),
    ("demo_seconds", 1e9), ("demo_seconds", math.inf), ("segment_seconds", 1e9), ("segment_seconds", math.nan),
    ("seed", 2**70), ("keep_checkpoints", 10**9), ("demo_prompts", [{}] * 1000),
])
def test_training_values_are_finite_and_bounded(field, value):
    _refused(fast_config(**{field: value}), f"training.{field}")


def test_lora_and_objective_values_are_bounded():
    _refused(fast_config(lora={"r": 10**9}), "training.lora.r")
    _refused(fast_config(lora={"alpha": math.inf}), "training.lora.alpha")
    for values in ({"timestep_mean": math.nan}, {"timestep_mean": 1e300}, {"timestep_std": math.inf}):
        config = fast_config()
        config["objective"] = {"type": "v", "timesteps": "logit_normal", **values}
        _refused(config, f"objective.{next(iter(values))}")


@pytest.mark.parametrize("field, value", [
    ("n_fft", 2**40), ("hop", 10**9), ("sample_rate", 1), ("sample_rate", 10**12), ("n_mels", 10**7),
    ("channels", 10**6), ("f_max", math.inf), ("f_min", math.nan), ("fit_stats_items", 10**12),
    ("griffin_lim", "fast"), ("load", "x" * 100_000),
])
def test_representation_values_are_bounded(field, value):
    config = fast_config()
    config["representation"][field] = value
    message = _refused(config, "representation.f_min / f_max" if field in ("f_min", "f_max") else
                       f"representation.{field}")
    assert len(message) < 1000  # a 100 KB value is not echoed


def test_an_item_is_at_most_a_bounded_number_of_samples():
    config = fast_config(segment_seconds=600)
    config["representation"].update(sample_rate=768000, n_fft=4096, hop=1024)
    assert "an item is at most 67,108,864" in _refused(config, "training.segment_seconds")


@pytest.mark.parametrize("field, value", [
    ("depth", 1_000_000), ("dim", 10**6), ("mlp_ratio", math.inf), ("mlp_ratio", 1e6), ("latent_dim", 10**9),
    ("patch_size", 10**6), ("heads", 10**9), ("rotary_base", math.nan), ("timestep_scale", math.inf),
    ("norm_eps", math.nan), ("cross_attention_dim", 10**9), ("timestep_dim", 10**8),
])
def test_backbone_sizes_are_bounded(field, value):
    config = fast_config()
    config["backbone"][field] = value
    _refused(config, f"backbone.{field}")


def test_a_backbone_of_too_many_parameters_is_refused_before_it_is_built():
    config = fast_config()
    config["backbone"].update(dim=16384, heads=16, depth=64)  # each size within its bound; about 300 G weights
    assert "parameters; at most 2,147,483,648" in _refused(config, "backbone.depth")


def test_demo_prompts_the_stack_cannot_read_are_refused_when_the_model_is_built():
    config = fast_config(demo_every=10, demo_prompts=[{"name": "piece_000001", "bpm": 120},
                                                      {"name": None, "bpm": "fast"}])
    with pytest.raises(ConfigError, match=r"training.demo_prompts\[1\]: .*'bpm'") as caught:
        build_model(config)
    assert "demo_prompts[0]" not in str(caught.value)


def _run_limited(code: str, limit_bytes: int) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python whose address space is capped at ``limit_bytes`` above its start."""
    prelude = textwrap.dedent(f"""
        import resource
        with open('/proc/self/statm') as f:
            size = int(f.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (size + {limit_bytes}, size + {limit_bytes}))
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_config_validate_counts_the_backbone_without_allocating_it(tmp_path):
    # the largest DiT the bounds allow (about 2 G parameters, 8 GB of float32) is counted on the meta
    # device: `config validate` stays within 1 GiB more than its start
    config = fast_config()
    config["backbone"].update(dim=8192, heads=16, depth=1, mlp_ratio=4.0)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(config))
    done = _run_limited(f"""
        import sys
        from cuecraft.cli import main
        sys.exit(main(["config", "validate", {str(path)!r}]))
    """, 2**30)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "parameters" in done.stdout
