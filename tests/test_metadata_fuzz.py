"""Malformed metadata batches through ``ConditioningStack.condition``: every one is a
ConditioningInputError with a bounded message, whatever the values (wrong types, failing
``repr``, huge numbers, text no tokenizer can encode, nested junk). ``bench/fuzz.py`` runs the
same generator over 5,000 batches."""

from __future__ import annotations

import collections
import math
import random
import re
from fractions import Fraction

import numpy as np
import pytest
import torch

from cuecraft.attributes import ConditioningAttributes, JointEmbedCondition, WavCondition, _describe
from cuecraft.config import build_stack
from cuecraft.errors import ConditioningInputError

RATE = 8000
KEYS = ("prompt", "genre", "seconds", "bpm", "t5", "clap", "melody")


def stack_config(t5: str, clap: str) -> dict:
    """Every kind a metadata dict can feed: text (lut, list, t5), number, int, joint_embed, wav."""
    return {"cond_dim": 8, "conditioners": [
        {"id": "prompt", "type": "lut", "roles": ["cross"], "config": {"n_bins": 64, "dim": 8, "tokenizer": "whitespace"}},
        {"id": "genre", "type": "list", "roles": ["global"], "config": {"options": ["rock", "jazz"]}},
        {"id": "seconds", "type": "number", "roles": ["global"], "config": {"min_val": 0, "max_val": 60}},
        {"id": "bpm", "type": "int", "roles": ["global"], "config": {"min_val": 40, "max_val": 240}},
        {"id": "t5", "type": "t5", "roles": ["cross"], "config": {"t5_model_name": t5, "max_length": 16}},
        {"id": "clap", "type": "clap", "roles": ["cross"], "config": {"clap_model_name": clap}},
        {"id": "melody", "type": "chroma_stem", "roles": ["prepend"],
         "config": {"sample_rate": RATE, "radix2_exp": 9, "duration": 0.5}},
    ]}


def valid_item() -> dict:
    return {"prompt": "warm rock", "genre": "jazz", "seconds": 10.0, "bpm": 120, "t5": "pop song",
            "clap": "pop song", "melody": None}


class FailingRepr:
    def __repr__(self):
        raise RuntimeError("repr exploded")

    __str__ = __repr__


class FailingReprText(str):
    """A str whose own repr, str, strip and lower raise: a tokenizer must only see a plain str."""

    def __repr__(self):
        raise RuntimeError("repr exploded")

    __str__ = strip = lower = split = encode = __repr__


class FailingHash:
    def __hash__(self):
        raise RuntimeError("hash exploded")

    def __eq__(self, other):
        raise RuntimeError("eq exploded")

    def __repr__(self):
        raise ValueError("repr exploded")


class FailingFloat(float):
    def __repr__(self):
        raise RuntimeError("repr exploded")


class FailingKey:
    def __str__(self):
        raise RuntimeError("str exploded")

    __repr__ = __str__


def _nested(rng: random.Random, depth: int):
    value = rng.choice([1, "a", None, 2.5])
    for _ in range(depth):
        value = rng.choice([[value], {"k": value}, (value,)])
    return value


def _sneaky_wav(samples: torch.Tensor) -> WavCondition:
    """A WavCondition whose tensor was changed after it was checked (NaN, 1e30, ...)."""
    condition = WavCondition(torch.zeros_like(samples), RATE)
    condition.wav.copy_(samples)
    return condition


def invalid_value(rng: random.Random, depth: int = 0):
    """A value no kind accepts (text, number, wav, joint_embed)."""
    choice = rng.randrange(24)
    if choice == 0:
        return FailingRepr()
    if choice == 1:
        return FailingHash()
    if choice == 2:
        return rng.choice([b"\xff\xfe bytes", bytearray(b"abc"), memoryview(b"x")])
    if choice == 3:
        return "\udcff\ud800 lone surrogates " + "x" * rng.choice([0, 100_000])
    if choice == 4:
        return rng.choice([float("nan"), float("inf"), -float("inf"), np.float64("nan"), np.float32("inf")])
    if choice == 5:
        return rng.choice([True, False, np.bool_(True), torch.tensor(True)])
    if choice == 6:
        return torch.tensor(rng.choice([[1.0, 2.0], [float("nan")] * 3, [[1.0]] * 2]))
    if choice == 7:
        return torch.zeros(rng.choice([(0,), (2, 3), (1, 1, 1)]))
    if choice == 8:
        return _nested(rng, rng.choice([3, 60, 3000]))
    if choice == 9:
        return [invalid_value(rng, depth + 1) if depth < 3 else 1 for _ in range(rng.randrange(1, 3))]
    if choice == 10:
        return {rng.choice(["a", 1, None, (1, 2), "k" * 10_000]): "x"}
    if choice == 11:
        return complex(1, 2)
    if choice == 12:
        return rng.choice([object(), lambda: 1, int, Ellipsis, range(10**18), iter([1, 2]), {1, 2}])
    if choice == 13:
        return ConditioningAttributes(text={"prompt": 5})  # invalid as a value and as an item
    if choice == 14:
        return {"path": "nowhere.wav", "seek_time": rng.choice([-1, float("nan"), "x"])}
    if choice == 15:
        return np.array(rng.choice([[1, 2], [[1.0]], ["a", "b"]]))
    if choice == 16:
        return _sneaky_wav(torch.full((1, 2000), rng.choice([float("nan"), float("inf"), 1e30])))
    if choice == 17:
        return torch.tensor(float("nan"))
    if choice == 18:
        return Fraction(10**400, 3) if rng.random() < 0.5 else Fraction(-(10**400), 7)
    if choice == 19:
        return np.str_("\ud800")
    if choice == 20:
        return FailingFloat("nan")
    if choice == 21:
        return JointEmbedCondition(text="\udcff")
    if choice == 22:
        return b"\x00" * rng.choice([1, 100_000])
    return rng.choice([float("nan"), [None], (), {}])


def edge_value(rng: random.Random):
    """A value some kinds accept and others refuse: huge or tiny numbers, odd text, NumPy scalars."""
    return rng.choice([
        10**20, -(10**20), 10**400, -(10**4000), 1e308, -1e308, 5e-324, 0, -0.0, 2**63, 2**63 - 1,
        np.int64(7), np.float32(1e38), np.float64(12.5), np.array(5.0), torch.tensor(3), np.str_("jazz"),
        FailingReprText("rock"), "", " ", "x" * 50_000, "\x00\x01 nul", "café 🎸", "rock", "jazz",
        Fraction(3, 2), 12.5, 120, None, WavCondition(torch.randn(1, 1600) * 0.1, RATE),
        WavCondition(torch.zeros(2, 0), RATE), JointEmbedCondition(text="jazz"),
        JointEmbedCondition(wav=torch.randn(800) * 0.1, sample_rate=RATE, text=FailingReprText("pop")),
    ])


def malformed_batch(rng: random.Random) -> list | object:
    """A batch of 1-3 items with at least one thing wrong: an invalid value, an item that is not
    a mapping, a missing key, or a batch that is not a list."""
    if rng.random() < 0.03:
        return rng.choice([None, 5, "prompt", {"prompt": "x"}, FailingRepr(), b"x", iter([valid_item()])])
    items = []
    for _ in range(rng.randrange(1, 4)):
        item = valid_item()
        for key in rng.sample(KEYS, rng.randrange(0, 3)):
            item[key] = edge_value(rng)
        items.append(item)
    broken = rng.randrange(len(items))
    flaw = rng.random()
    if flaw < 0.05:
        items[broken] = invalid_value(rng)
    elif flaw < 0.1:
        del items[broken][rng.choice(KEYS)]
        items[broken][rng.choice([FailingKey(), "k" * 100_000, 3, (1,)])] = 1
    else:
        for key in rng.sample(KEYS, rng.randrange(1, 3)):
            items[broken][key] = invalid_value(rng)
    return items


NUMBERS = (10**20, -(10**20), 10**400, -(10**4000), 1e308, -1e308, 5e-324, -0.0, 2**63, np.int64(7),
           np.float32(1e38), np.array(5.0), torch.tensor(3), Fraction(3, 2), True)
TEXTS = ("", " ", "x" * 50_000, "\x00\x01 nul", "café 🎸", np.str_("jazz"), FailingReprText("rock"), "blues", 7)
EDGES = {"seconds": NUMBERS, "bpm": NUMBERS, "prompt": TEXTS, "genre": TEXTS, "t5": TEXTS, "clap": TEXTS}


def edge_batch(rng: random.Random) -> list:
    """A batch of edge values only, mostly of the key's own kind: may be valid or not."""
    items = [valid_item() for _ in range(rng.randrange(1, 4))]
    for item in items:
        for key in rng.sample(KEYS, rng.randrange(1, 3)):
            item[key] = rng.choice(EDGES[key]) if key in EDGES and rng.random() < 0.8 else edge_value(rng)
    return items


def outcome(stack, batch) -> str:
    """'ConditioningInputError' or 'valid' (finite conditions); any other exception propagates."""
    try:
        with torch.no_grad():
            conditions = stack.condition(batch)
    except ConditioningInputError as error:
        message = str(error)
        assert len(message) < 1500, message[:300]
        return "ConditioningInputError"
    for name, (embedding, mask) in conditions.items():
        assert torch.isfinite(embedding).all(), name
        assert mask.dtype == torch.bool
    return "valid"


@pytest.fixture(scope="module")
def stack(tiny_models):
    return build_stack(stack_config(tiny_models["t5"], tiny_models["clap"]), seed=0)


def test_malformed_batches_are_all_conditioning_input_errors(stack):
    counts = collections.Counter(outcome(stack, malformed_batch(random.Random(seed))) for seed in range(300))
    assert counts == {"ConditioningInputError": 300}, counts


def test_edge_batches_are_errors_or_finite_conditions(stack):
    counts = collections.Counter(outcome(stack, edge_batch(random.Random(seed))) for seed in range(150))
    assert counts["valid"] > 20 and counts["ConditioningInputError"] > 20, counts  # the pool reaches both


def test_describe_survives_a_failing_repr():
    for value in (FailingRepr(), FailingHash(), FailingFloat("nan")):
        name = type(value).__name__
        assert re.fullmatch(rf"{name} <{name} (instance at 0x[0-9a-f]+|object \(repr failed\))>", _describe(value))
    text = _describe("x" * 1_000_000)
    assert text.startswith("str 'xxx") and len(text) < 80
    assert _describe(10**5000).startswith("int ") and len(_describe(10**5000)) < 80  # str(int) would raise


def test_failing_repr_in_a_batch_is_named_by_type(stack):
    batch = [{**valid_item(), "bpm": FailingRepr()}]
    with pytest.raises(ConditioningInputError, match=r"item 0, key 'bpm'.*got FailingRepr <FailingRepr "):
        stack.condition(batch)


def test_text_no_tokenizer_can_encode_is_refused(stack):
    with pytest.raises(ConditioningInputError, match=r"key 't5'.*valid Unicode; character 4 is a lone surrogate"):
        stack.condition([{**valid_item(), "t5": "pop \ud800 song"}])
    with pytest.raises(ConditioningInputError, match=r"key 'clap', text.*lone surrogate"):
        stack.condition([{**valid_item(), "clap": JointEmbedCondition(text="\udcff")}])


def test_a_str_subclass_reaches_tokenizers_as_a_plain_str(stack):
    plain = stack.condition([{**valid_item(), "t5": "pop song", "prompt": "warm rock"}])
    odd = stack.condition([{**valid_item(), "t5": FailingReprText("pop song"), "prompt": FailingReprText("warm rock")}])
    for name in ("t5", "prompt"):
        assert torch.equal(plain[name].embedding, odd[name].embedding)


def test_numbers_that_do_not_convert_are_refused(stack):
    with pytest.raises(ConditioningInputError, match=r"key 'seconds'.*got Fraction"):
        stack.condition([{**valid_item(), "seconds": Fraction(10**400, 3)}])
    huge = stack.condition([{**valid_item(), "seconds": 10**4000, "bpm": -(10**400)}])
    assert torch.isfinite(huge["seconds"].embedding).all() and torch.isfinite(huge["bpm"].embedding).all()


def test_non_finite_or_absurd_waveforms_are_refused():
    for value, words in ((float("nan"), "not finite"), (float("inf"), "not finite"), (1e30, r"up to 1e\+30")):
        with pytest.raises(ConditioningInputError, match=rf"WavCondition.wav samples are {words}.*within \+-64"):
            WavCondition(torch.full((1, 100), value), RATE)
    assert WavCondition(torch.full((2, 10), 1.5), RATE).length == 10  # a little over 1.0 is audio


def test_a_waveform_changed_after_its_check_is_refused_by_the_stem_backend(stack):
    with pytest.raises(ConditioningInputError, match=r"condition 'melody'.*not finite"):
        stack.condition([{**valid_item(), "melody": _sneaky_wav(torch.full((1, 2000), float("nan")))}])


def test_unreadable_keys_are_described():
    config = {"cond_dim": 4, "conditioners": [
        {"id": "bpm", "type": "int", "roles": ["global"], "config": {"min_val": 40, "max_val": 240}}]}
    small = build_stack(config, seed=0)
    with pytest.raises(ConditioningInputError, match=r"missing key 'bpm'.*keys given: \['<FailingKey .*', 'k+\.\.\.'\]$"):
        small.condition([{"k" * 100_000: 1, FailingKey(): 2}])
    assert math.isfinite(small.condition([{"bpm": 10**30}])["bpm"].embedding.sum().item())
