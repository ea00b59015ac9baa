import math

import pytest
import torch

from cuecraft.condition import Condition
from cuecraft.errors import ConfigError, FusionError
from cuecraft.fuser import ConditionFuser, sinusoidal_embedding


def cond(values, mask=None):
    embedding = torch.tensor(values, dtype=torch.float32)
    if mask is None:
        mask = torch.ones(embedding.shape[:2], dtype=torch.bool)
    return Condition(embedding, torch.tensor(mask) if isinstance(mask, list) else mask)


def snapshot(conditions, input):
    return {k: (c.embedding.clone(), c.mask.clone()) for k, c in conditions.items()}, input.clone()


def assert_untouched(conditions, input, saved):
    before, before_input = saved
    assert torch.equal(input, before_input)
    for name, (embedding, mask) in before.items():
        assert torch.equal(conditions[name].embedding, embedding) and torch.equal(conditions[name].mask, mask)


def test_sum_adds_to_the_input():
    fuser = ConditionFuser({"sum": ["a"]})
    input = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    conditions = {"a": cond([[[10.0, 20.0], [30.0, 40.0]]])}
    saved = snapshot(conditions, input)
    out = fuser(conditions, input)
    assert out.input.tolist() == [[[11.0, 22.0], [33.0, 44.0]]]
    assert out.input_mask.tolist() == [[True, True]]
    assert_untouched(conditions, input, saved)


def test_input_interpolate_resamples_nearest_then_adds():
    fuser = ConditionFuser({"input_interpolate": ["a"]})
    input = torch.zeros(1, 4, 1)
    out = fuser({"a": cond([[[1.0], [2.0]]])}, input)
    assert out.input[0, :, 0].tolist() == [1.0, 1.0, 2.0, 2.0]


def test_prepend_in_routing_order_with_masks():
    fuser = ConditionFuser({"prepend": ["a", "b"]})
    input = torch.full((2, 2, 2), 9.0)
    conditions = {
        "a": cond([[[1.0, 1.0]], [[0.0, 0.0]]], [[True], [False]]),
        "b": cond([[[2.0, 2.0], [3.0, 3.0]], [[4.0, 4.0], [0.0, 0.0]]], [[True, True], [True, False]]),
    }
    saved = snapshot(conditions, input)
    out = fuser(conditions, input)
    assert out.input[0, :, 0].tolist() == [1.0, 2.0, 3.0, 9.0, 9.0]
    assert out.input_mask.tolist() == [[True, True, True, True, True], [False, True, False, True, True]]
    assert out.prepend_cond.shape == (2, 3, 2)
    assert out.prepend_mask.tolist() == [[True, True, True], [False, True, False]]
    assert_untouched(conditions, input, saved)


def test_cross_concatenates_along_time_and_keeps_mask():
    fuser = ConditionFuser({"cross": ["text", "seconds"]})
    conditions = {
        "text": cond([[[1.0, 1.0], [0.0, 0.0]]], [[True, False]]),
        "seconds": cond([[[5.0, 6.0]]]),
    }
    out = fuser(conditions)
    assert out.cross_attention_src.tolist() == [[[1.0, 1.0], [0.0, 0.0], [5.0, 6.0]]]
    assert out.cross_attention_mask.tolist() == [[True, False, True]]
    assert out.input is None and out.global_cond is None


def test_cross_positional_embedding_with_scale():
    fuser = ConditionFuser({"cross": ["a"]}, cross_attention_pos_emb=True, cross_attention_pos_emb_scale=0.5)
    conditions = {"a": cond([[[0.0] * 4] * 3])}
    out = fuser(conditions)
    # dim 4 -> half 2: exponents 0 and 1, so frequencies 1 and 1/10000.
    expected = [[0.5 * v for v in (math.cos(p), math.cos(p / 1e4), math.sin(p), math.sin(p / 1e4))] for p in range(3)]
    torch.testing.assert_close(out.cross_attention_src[0], torch.tensor(expected))
    assert torch.count_nonzero(conditions["a"].embedding) == 0  # input untouched


def test_sinusoidal_embedding_values():
    table = sinusoidal_embedding(5, 6)
    p, i = 3, 1
    assert table.shape == (5, 6)
    assert math.isclose(table[p, i].item(), math.cos(p / 10000 ** (i / 2)), rel_tol=1e-6)
    assert math.isclose(table[p, 3 + i].item(), math.sin(p / 10000 ** (i / 2)), rel_tol=1e-6)


def test_global_concatenates_channels():
    fuser = ConditionFuser({"global": ["a", "b"]})
    out = fuser({"a": cond([[[1.0, 2.0]]]), "b": cond([[[3.0]]])})
    assert out.global_cond.tolist() == [[1.0, 2.0, 3.0]]


def test_input_concat_resamples_and_concatenates_channels():
    fuser = ConditionFuser({"input_concat": ["a"]})
    input = torch.zeros(1, 4, 1)
    out = fuser({"a": cond([[[1.0, -1.0], [2.0, -2.0]]])}, input)
    assert out.input.shape == (1, 4, 3)
    assert out.input[0].tolist() == [[0, 1, -1], [0, 1, -1], [0, 2, -2], [0, 2, -2]]
    assert out.input_concat.shape == (1, 4, 2)


def test_one_condition_feeds_several_roles():
    fuser = ConditionFuser({"cross": ["s"], "global": ["s"]})
    out = fuser({"s": cond([[[7.0, 8.0]]])})
    assert out.cross_attention_src.tolist() == [[[7.0, 8.0]]]
    assert out.global_cond.tolist() == [[7.0, 8.0]]
    assert fuser.roles_of("s") == ["cross", "global"]


def test_build_time_routing_errors():
    with pytest.raises(ConfigError, match="unknown fuser role; valid roles: prepend, sum, cross"):
        ConditionFuser({"crossattn": ["a"]})
    with pytest.raises(ConfigError, match="a condition is listed twice"):
        ConditionFuser({"cross": ["a", "a"]})
    fuser = ConditionFuser({"global": ["text", "x"], "cross": ["text", "n"]})
    with pytest.raises(ConfigError) as error:
        fuser.check_shapes({"text": (None, 8), "n": (1, 4), "unused": (1, 8)})
    problems = "\n".join(error.value.problems)
    assert "x: routed to ['global'] but no conditioner is named so" in problems
    assert "unused: this condition is routed to no role" in problems
    assert "text: a sequence of shape [B, T (variable), 8] cannot feed role 'global'" in problems
    assert "cross: conditions concatenated along time need one width; got {'text': 8, 'n': 4}" in problems


def test_runtime_errors():
    fuser = ConditionFuser({"sum": ["a"], "global": ["g"]})
    good = {"a": cond([[[1.0]]]), "g": cond([[[1.0]]])}
    with pytest.raises(FusionError, match="need the input sequence"):
        fuser(good)
    with pytest.raises(FusionError, match=r"unrouted \['b'\], missing \['g'\]"):
        fuser({"a": cond([[[1.0]]]), "b": cond([[[1.0]]])}, torch.zeros(1, 1, 1))
    with pytest.raises(FusionError, match="role 'sum' needs length 2"):
        fuser(good, torch.zeros(1, 2, 1))
    with pytest.raises(FusionError, match="role 'global' takes"):
        fuser({"a": cond([[[1.0]]]), "g": cond([[[1.0], [2.0]]])}, torch.zeros(1, 1, 1))
    with pytest.raises(FusionError, match="batch sizes differ"):
        fuser({"a": cond([[[1.0]]]), "g": cond([[[1.0]], [[1.0]]])}, torch.zeros(1, 1, 1))
