"""Masks survive fusion and the reference backbone never attends to padding."""

import dataclasses

import pytest
import torch

from cuecraft.conditioners import IntConditioner, LUTConditioner, NumberConditioner
from cuecraft.fuser import ConditionFuser
from cuecraft.guidance import unconditional
from cuecraft.models import ReferenceTransformer
from cuecraft.provider import ConditionProvider

D = 16


@pytest.fixture
def setup():
    provider = ConditionProvider({
        "prompt": LUTConditioner(n_bins=64, dim=D, output_dim=D),
        "bpm": IntConditioner(output_dim=D, min_val=40, max_val=240),
        "seconds": NumberConditioner(output_dim=D, min_val=0, max_val=100),
    })
    fuser = ConditionFuser({"cross": ["prompt", "seconds"], "prepend": ["bpm"], "global": ["seconds"]})
    model = ReferenceTransformer(D, heads=2, layers=2, cross_dim=D, global_dim=D).eval()
    batch = [{"prompt": "short", "bpm": None, "seconds": 10}, {"prompt": "a much longer prompt here", "bpm": 120, "seconds": 50}]
    return provider, fuser, model, batch


def test_garbage_in_masked_positions_changes_nothing(setup):
    provider, fuser, model, batch = setup
    x = torch.randn(2, 5, D)
    fused = fuser(provider.condition(batch), x)
    reference = model(fused)
    assert reference.shape == (2, 5, D)
    noise = torch.randn_like(fused.cross_attention_src) * 100
    cross = torch.where(fused.cross_attention_mask.unsqueeze(-1), fused.cross_attention_src, noise)
    full = torch.where(fused.input_mask.unsqueeze(-1), fused.input, torch.randn_like(fused.input) * 100)
    tampered = dataclasses.replace(fused, cross_attention_src=cross, input=full)
    assert not torch.equal(cross, fused.cross_attention_src)  # the padding really changed
    torch.testing.assert_close(model(tampered), reference)


def test_unmasked_conditions_do_change_the_output(setup):
    provider, fuser, model, batch = setup
    x = torch.randn(2, 5, D)
    a = model(fuser(provider.condition(batch), x))
    b = model(fuser(provider.condition([{**batch[0], "prompt": "other words"}, batch[1]]), x))
    assert not torch.allclose(a[0], b[0]) and torch.allclose(a[1], b[1], atol=1e-6)


def test_fully_null_conditions_give_finite_output(setup):
    provider, fuser, model, batch = setup
    null = provider.condition(unconditional(provider.to_attributes(batch)))
    out = model(fuser(null, torch.randn(2, 5, D)))
    assert torch.isfinite(out).all()
