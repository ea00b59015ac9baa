"""Documents that bench/fuzz.py (seed 0) found escaping as untyped errors, each now a ConfigError
with its field path from both ``validate_config`` and ``build_stack``."""

import pytest

from cuecraft.config import build_stack
from cuecraft.config.report import validate_config
from cuecraft.errors import ConfigError


def document(seconds: dict) -> dict:
    return {"cond_dim": 4, "conditioners": [
        {"id": "prompt", "type": "lut", "roles": ["cross"], "config": {"n_bins": 8, "dim": 4}},
        {"type": "number", "roles": ["cross", "global"], **seconds},
        {"id": "genre", "type": "list", "roles": ["prepend"], "config": {"options": ["a", "b"]}}],
        "fuser": {"cross_attention_pos_emb": True, "cross_attention_pos_emb_scale": 0.5}}


@pytest.mark.parametrize("seconds, message", [
    # cuecraft JSON #1638: a 40-digit max_val built, then torch's RuntimeError ("value cannot be
    # converted to type float without overflow") came out of the example condition.
    ({"id": "seconds", "config": {"min_val": 0, "max_val": int("9" * 40)}},
     "conditioners[1].config.max_val: must be within +-1e+38 (values are scaled in float32); got 1e+40"),
    # cuecraft JSON #8340, #8579: an id with a '.' reached nn.ModuleDict, whose KeyError escaped.
    ({"id": "${a.${b}}", "config": {"min_val": 0}},
     "conditioners[1].id: must not contain '.' (ids name modules); got '${a.${b}}'"),
], ids=["number-beyond-float32", "dotted-id"])
def test_fuzz_findings_are_config_errors(seconds, message):
    for step in (validate_config, lambda d: build_stack(d, seed=0)):
        with pytest.raises(ConfigError) as error:
            step(document(seconds))
        assert message in str(error.value)


def test_the_same_documents_within_bounds_build():
    stack = build_stack(document({"id": "seconds", "config": {"min_val": 0, "max_val": 1e38}}), seed=0)
    assert sorted(stack.provider.conditioners) == ["genre", "prompt", "seconds"]


def test_a_provider_refuses_a_dotted_name_in_python():
    from cuecraft.conditioners import NumberConditioner
    from cuecraft.provider import ConditionProvider

    with pytest.raises(ConfigError, match=r"conditioners: a name must be a non-empty str without '\.'; got 'a\.b'"):
        ConditionProvider({"a.b": NumberConditioner(4)})
