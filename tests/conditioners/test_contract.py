"""One contract test over every registered conditioner type.

Adding a conditioner to the registry means adding an example here: the test fails otherwise.
"""

import pytest
import torch

from cuecraft.conditioners import BaseConditioner, build_conditioner, registered_conditioners

# type name -> (settings, a batch of values with at least one None)
EXAMPLES = {
    "lut": ({"n_bins": 50, "dim": 6, "output_dim": 8}, ["deep house groove", None, "", "Piano"]),
    "list": ({"output_dim": 8, "options": ["rock", "jazz", "pop"]}, ["jazz", None, "rock", "pop"]),
    "int": ({"output_dim": 8, "min_val": 10, "max_val": 20}, [12, None, 25, 3]),
    "number": ({"output_dim": 8, "min_val": -1.0, "max_val": 3.0}, [0.5, None, 7.0, -1.0]),
}
BUILTIN = sorted(EXAMPLES)


def test_every_registered_type_has_an_example():
    assert set(registered_conditioners()) <= set(EXAMPLES), "add the new conditioner type to EXAMPLES"


def build(name, **extra):
    settings, values = EXAMPLES[name]
    torch.manual_seed(0)
    return build_conditioner(name, {**settings, **extra}), values


@pytest.mark.parametrize("name", BUILTIN)
def test_shapes_dtypes_and_masked_zeros(name):
    conditioner, values = build(name)
    tokens = conditioner.tokenize(values)
    assert tokens.values.device.type == "cpu" and tokens.mask.dtype == torch.bool
    assert tokens.values.shape == tokens.mask.shape and tokens.values.shape[0] == len(values)
    embedding, mask = conditioner(tokens)
    batch, length, width = embedding.shape
    assert (batch, width) == (len(values), conditioner.output_dim)
    assert mask.shape == (batch, length) and mask.dtype == torch.bool
    assert embedding.dtype == torch.float32
    if conditioner.output_length is not None:
        assert length == conditioner.output_length
    assert torch.all(embedding[~mask] == 0)
    assert not mask[1].any(), "None must be fully masked"
    assert mask[0].any()


@pytest.mark.parametrize("name", BUILTIN)
def test_null_batch_is_zeros_of_documented_length(name):
    conditioner, values = build(name, project_out=True)  # a projection bias must not leak
    embedding, mask = conditioner.condition([None] * 3)
    assert embedding.shape == (3, conditioner.null_length, conditioner.output_dim)
    assert torch.count_nonzero(embedding) == 0 and not mask.any()


@pytest.mark.parametrize("name", BUILTIN)
def test_items_do_not_depend_on_their_batch(name):
    conditioner, values = build(name)
    batch_embedding, batch_mask = conditioner.condition(values)
    for i, value in enumerate(values):
        single, single_mask = conditioner.condition([value])
        length = single.shape[1]
        assert torch.equal(single_mask[0], batch_mask[i, :length])
        assert not batch_mask[i, length:].any()
        torch.testing.assert_close(single[0], batch_embedding[i, :length], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", BUILTIN)
def test_state_dict_round_trip(name):
    source, values = build(name, project_out=True)
    torch.manual_seed(123)
    target = build_conditioner(name, {**EXAMPLES[name][0], "project_out": True})
    assert not torch.equal(source.condition(values).embedding, target.condition(values).embedding)
    target.load_state_dict(source.state_dict(), strict=True)
    assert torch.equal(source.condition(values).embedding, target.condition(values).embedding)


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dtype_moves(name, dtype):
    conditioner, values = build(name)
    reference = conditioner.condition(values).embedding
    moved = conditioner.to(dtype).condition(values).embedding
    assert moved.dtype == dtype
    tolerance = 1e-6 if dtype == torch.float64 else 0.1
    torch.testing.assert_close(moved.float(), reference, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("name", BUILTIN)
def test_device_moves(name):
    conditioner, values = build(name)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    reference = conditioner.condition(values).embedding
    for device in devices:
        moved = conditioner.to(device)
        assert moved.device.type == device
        embedding, mask = moved.condition(values)
        assert embedding.device.type == device and mask.device.type == device
        torch.testing.assert_close(embedding.cpu(), reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", BUILTIN)
def test_gradients_reach_the_parameters(name):
    conditioner, values = build(name)
    conditioner.condition(values).embedding.sum().backward()
    grads = [p.grad for p in conditioner.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", BUILTIN)
def test_tokenize_rejects_empty_and_non_sequence(name):
    conditioner, _ = build(name)
    with pytest.raises(ValueError, match="at least one value"):
        conditioner.tokenize([])
    with pytest.raises(TypeError, match="sequence of values"):
        conditioner.tokenize("abc")


def test_is_a_base_conditioner():
    for cls in registered_conditioners().values():
        assert issubclass(cls, BaseConditioner) and cls.kind in ("text", "wav", "joint_embed", "number")
