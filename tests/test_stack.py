"""The stateless tokenize: train/generator flags, one check per value, no mode toggling, workers."""

import pickle

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import cuecraft.attributes
import cuecraft.conditioners.base
import cuecraft.provider
from cuecraft.attributes import ConditioningAttributes
from cuecraft.conditioners import Tokens
from cuecraft.config import build_stack
from cuecraft.errors import ConditioningInputError
from cuecraft.models import ConditionedModel

CONFIG = {
    "cond_dim": 8,
    "conditioners": [
        {"id": "prompt", "type": "lut", "roles": ["cross"], "config": {"n_bins": 64, "dim": 8}},
        {"id": "seconds", "type": "number", "roles": ["global"], "config": {"min_val": 0, "max_val": 60}},
        {"id": "bpm", "type": "int", "roles": ["global"], "config": {"min_val": 40, "max_val": 240}},
    ],
    "dropout": {"cfg": 0.3, "attributes": {"text": {"prompt": 0.3}, "number": {"bpm": 0.3}}},
}
PROMPTS = ["deep house with warm pads", "rock ballad", "fast techno and a lead synth", "slow jazz piano trio"]


def metadata(n, offset=0):
    return [{"prompt": PROMPTS[(i + offset) % 4], "seconds": float(5 + i + offset), "bpm": 60 + 7 * (i + offset)}
            for i in range(n)]


def assert_same_tokens(first, second):
    assert first.keys() == second.keys()
    for name in first:
        assert type(first[name]) is type(second[name]), name
        for a, b in zip(first[name], second[name]):
            if isinstance(a, torch.Tensor):
                assert a.dtype == b.dtype and torch.equal(a, b), name
            else:
                assert a == b, name


def count_checks(monkeypatch):
    """Values checked, one entry each: by check_value, or in bulk by check_column (whose own
    value-by-value fallback is not counted twice)."""
    calls, inside = [], []
    value, column = cuecraft.attributes.check_value, cuecraft.attributes.check_column

    def counted_value(kind, *args, **kwargs):
        if not inside:
            calls.append(kind)
        return value(kind, *args, **kwargs)

    def counted_column(kind, values, *args, **kwargs):
        calls.extend([kind] * len(values))
        inside.append(True)
        try:
            return column(kind, values, *args, **kwargs)
        finally:
            inside.pop()

    monkeypatch.setattr(cuecraft.attributes, "check_value", counted_value)
    for module in (cuecraft.attributes, cuecraft.provider, cuecraft.conditioners.base):
        monkeypatch.setattr(module, "check_column", counted_column)
    return calls


def test_every_value_is_checked_once_through_the_stack(monkeypatch):
    stack = build_stack({**CONFIG, "conditioners": CONFIG["conditioners"][:1],
                         "dropout": {"cfg": 0.5, "attributes": {"text": {"prompt": 0.5}}}}, seed=0)
    calls = count_checks(monkeypatch)
    stack.condition(metadata(2))
    assert len(calls) == 2  # two items, one conditioner (it was six)
    calls.clear()
    stack.condition(metadata(2), train=True, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 2  # dropout copies are not checked again
    calls.clear()
    attributes = stack.provider.to_attributes(metadata(3))
    stack.provider.condition(attributes)
    stack.tokenize(attributes, train=True)
    assert len(calls) == 3  # converted once; the provider and the stack trust it afterwards
    calls.clear()
    stack.provider.tokenize([ConditioningAttributes(text={"prompt": "by hand"})])
    assert len(calls) == 1  # attributes built by hand are checked


def test_guidance_checks_each_value_once(monkeypatch):
    stack = build_stack(CONFIG, seed=0)
    model = ConditionedModel(stack, lambda x, t, **inputs: x)
    calls = count_checks(monkeypatch)
    model(torch.zeros(2, 1), torch.zeros(2), metadata(2), cfg_scale=3.0)
    assert len(calls) == 2 * 3  # 2 items x 3 conditions; the null branch needs no check
    calls.clear()
    model(torch.zeros(2, 1), torch.zeros(2), metadata(2), metadata(2, offset=1), cfg_scale=3.0)
    assert len(calls) == 2 * 2 * 3  # and the negative items once each


def test_the_flag_decides_not_the_mode():
    stack = build_stack(CONFIG, seed=0)
    batch = metadata(16)
    results = {}
    for mode in (True, False):
        stack.provider.train(mode)
        results[mode] = (stack.tokenize(batch, train=True, generator=torch.Generator().manual_seed(3)),
                         stack.tokenize(batch))
        assert stack.provider.training is mode  # never toggled by the stack
        with torch.no_grad():
            stack.condition(batch, train=True, generator=torch.Generator().manual_seed(3))
        assert stack.provider.training is mode
    assert_same_tokens(results[True][0], results[False][0])
    assert_same_tokens(results[True][1], results[False][1])
    dropped = results[True][0]
    assert not dropped["prompt"].mask.any(dim=1).all()  # some prompts dropped, from the generator
    assert results[True][1]["prompt"].mask.any(dim=1).all() and results[True][1]["bpm"].mask.all()  # eval: none


def test_condition_is_the_provider_over_tokenize():
    stack = build_stack(CONFIG, seed=0)
    batch = metadata(5)
    with torch.no_grad():
        direct = stack.condition(batch, train=True, generator=torch.Generator().manual_seed(1))
        parts = stack.provider(stack.tokenize(batch, train=True, generator=torch.Generator().manual_seed(1)))
    for name in direct:
        assert torch.equal(direct[name].embedding, parts[name].embedding)
        assert torch.equal(direct[name].mask, parts[name].mask)


def test_tokens_follow_one_protocol_and_pickle():
    stack = build_stack(CONFIG, seed=0)
    tokens = stack.tokenize(metadata(3), train=True, generator=torch.Generator().manual_seed(0))
    for value in tokens.values():
        assert isinstance(value, Tokens) and value.mask.dtype == torch.bool and value.mask.shape[0] == 3
        assert isinstance(value.to("cpu"), Tokens)
    assert_same_tokens(pickle.loads(pickle.dumps(tokens)), tokens)


def test_errors_still_name_the_item_and_condition():
    stack = build_stack(CONFIG, seed=0)
    with pytest.raises(ConditioningInputError, match=r"item 1, key 'bpm': expected an int or float"):
        stack.tokenize([*metadata(1), {**metadata(1)[0], "bpm": "fast"}])
    with pytest.raises(ConditioningInputError, match=r"condition 'bpm', item 0: expected a whole number; got 1.5"):
        stack.tokenize([{**metadata(1)[0], "bpm": 1.5}])


class Batches(Dataset):
    """Batch i: its metadata and the seed its randomness comes from."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return index


def _collate(stack):
    def collate(indices):
        (index,) = indices
        return stack.tokenize(metadata(6, offset=index), train=True, generator=torch.Generator().manual_seed(index))
    return collate


def test_workers_tokenize_exactly_as_the_main_process(tiny_models):
    config = {**CONFIG, "conditioners": [*CONFIG["conditioners"],
              {"id": "caption", "type": "t5", "roles": ["cross"],
               "config": {"t5_model_name": tiny_models["t5"], "word_dropout": 0.4, "max_length": 16}}],
              "default_keys": {"caption": "prompt"}}
    stack = build_stack(config, seed=0)
    stack.provider.train()  # the workers' copies are in training mode, the main process's not
    loader = DataLoader(Batches(6), batch_size=1, num_workers=2, collate_fn=_collate(stack))
    from_workers = list(loader)
    stack.provider.eval()
    for index, tokens in enumerate(from_workers):
        expected = _collate(stack)([index])
        assert_same_tokens(tokens, expected)
        assert tokens["caption"].train
    lengths = [int(t["caption"].attention_mask.sum()) for t in from_workers]
    plain = stack.tokenize(metadata(6))["caption"].attention_mask.sum().item()
    assert sum(lengths) < 6 * plain  # word dropout (and CFG dropout) took words out
