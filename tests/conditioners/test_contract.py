"""One contract test over every registered conditioner type.

Adding a conditioner to the registry means adding an example here: the test fails otherwise.
"""

import pytest
import torch

from cuecraft.attributes import JointEmbedCondition, SymbolicCondition, WavCondition
from cuecraft.conditioners import BaseConditioner, build_conditioner, registered_conditioners

# type name -> (settings, a batch of values with at least one None). A str setting is formatted
# with the tiny model directories ({t5}, {clap}) of the ``tiny_models`` fixture.
EXAMPLES = {
    "t5": ({"t5_model_name": "{t5}", "output_dim": 8}, ["fast techno with synths", None, "", "solo piano"]),
    "sentence": ({"output_dim": 8}, ["fast techno with synths", None, "", "solo piano"]),
    "clap_text": ({"clap_model_name": "{clap}", "output_dim": 8}, ["deep house", None, "", "warm jazz guitar"]),
    "clap_audio": ({"clap_model_name": "{clap}", "output_dim": 8}, [
        WavCondition(torch.sin(torch.arange(12000) * 0.05).unsqueeze(0), sample_rate=8000),
        None,
        WavCondition(torch.cos(torch.arange(2, 5000) * 0.3), sample_rate=16000),
        WavCondition(torch.sin(torch.arange(9000) * 0.01).repeat(2, 1), sample_rate=8000, length=7000),
    ]),
    "clap": ({"clap_model_name": "{clap}", "output_dim": 8}, [
        JointEmbedCondition(wav=torch.sin(torch.arange(12000) * 0.05).unsqueeze(0), sample_rate=8000),
        None,
        JointEmbedCondition(text="warm jazz guitar"),
        JointEmbedCondition(wav=torch.cos(torch.arange(2, 5000) * 0.3), sample_rate=16000, text="bass"),
    ]),
    "chroma_stem": ({"output_dim": 8, "sample_rate": 8000, "radix2_exp": 9, "duration": 0.5}, [
        WavCondition(torch.sin(torch.arange(6000) * 0.2).expand(2, -1).contiguous(), sample_rate=16000),
        None,
        WavCondition(torch.sin(torch.arange(2000) * 0.31), sample_rate=8000),
        WavCondition(torch.cos(torch.arange(9000) * 0.12), sample_rate=11025, length=7000),
    ]),
    "lut": ({"n_bins": 50, "dim": 6, "output_dim": 8}, ["deep house groove", None, "", "Piano"]),
    "list": ({"output_dim": 8, "options": ["rock", "jazz", "pop"]}, ["jazz", None, "rock", "pop"]),
    "int": ({"output_dim": 8, "min_val": 10, "max_val": 20}, [12, None, 25, 3]),
    "number": ({"output_dim": 8, "min_val": -1.0, "max_val": 3.0}, [0.5, None, 7.0, -1.0]),
    "beats": ({"output_dim": 8, "project_out": True, "frame_rate": 10, "duration": 4}, [
        SymbolicCondition(bpm=120, time_signature="3/4"),
        None,
        SymbolicCondition(beats=[0.1, 0.6, 1.1, 1.6], downbeats=[0.1], seek_time=0.5, duration=3.0),
        {"bpm": 91, "time_signature": "6/8", "downbeat_offset": 0.25},
    ]),
    "chords": ({"output_dim": 8, "project_out": True, "frame_rate": 10, "duration": 4}, [
        SymbolicCondition(chords="Am F C G", bpm=120),
        None,
        SymbolicCondition(key="Eb major", duration=2.5),
        {"chords": [{"symbol": "C", "start": 0.0, "end": 1.0}, {"symbol": "G7", "start": 1.5, "end": 3.0}]},
    ]),
}
BUILTIN = sorted(EXAMPLES)


def test_every_registered_type_has_an_example():
    assert set(registered_conditioners()) <= set(EXAMPLES), "add the new conditioner type to EXAMPLES"


@pytest.fixture
def build(tiny_models):
    def build(name, **extra):
        settings, values = EXAMPLES[name]
        settings = {k: v.format(**tiny_models) if isinstance(v, str) else v for k, v in settings.items()}
        torch.manual_seed(0)
        return build_conditioner(name, {**settings, **extra}).eval(), values

    return build


def tensors_in(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item)
    elif isinstance(value, tuple):
        for item in value:
            yield from tensors_in(item)


@pytest.mark.parametrize("name", BUILTIN)
def test_shapes_dtypes_and_masked_zeros(build, name):
    conditioner, values = build(name)
    tokens = conditioner.tokenize(values)
    assert all(t.device.type == "cpu" for t in tensors_in(tokens)), "tokenize is CPU-only work"
    assert tokens.mask.dtype == torch.bool and tokens.mask.shape[0] == len(values)
    assert type(tokens.to(torch.device("cpu"))) is type(tokens)
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
def test_null_batch_is_zeros_of_documented_length(build, name):
    conditioner, values = build(name, project_out=True)  # a projection bias must not leak
    embedding, mask = conditioner.condition([None] * 3)
    assert embedding.shape == (3, conditioner.null_length, conditioner.output_dim)
    assert torch.count_nonzero(embedding) == 0 and not mask.any()


@pytest.mark.parametrize("name", BUILTIN)
def test_items_do_not_depend_on_their_batch(build, name):
    conditioner, values = build(name)
    batch_embedding, batch_mask = conditioner.condition(values)
    for i, value in enumerate(values):
        single, single_mask = conditioner.condition([value])
        length = single.shape[1]
        assert torch.equal(single_mask[0], batch_mask[i, :length])
        assert not batch_mask[i, length:].any()
        torch.testing.assert_close(single[0], batch_embedding[i, :length], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", BUILTIN)
def test_state_dict_round_trip(build, name):
    source, values = build(name, project_out=True)
    torch.manual_seed(123)
    target, _ = build(name, project_out=True)
    torch.nn.init.normal_(target.proj_out.weight)
    assert not torch.equal(source.condition(values).embedding, target.condition(values).embedding)
    target.load_state_dict(source.state_dict(), strict=True)
    assert torch.equal(source.condition(values).embedding, target.condition(values).embedding)


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dtype_moves(build, name, dtype):
    conditioner, values = build(name)
    reference = conditioner.condition(values).embedding
    moved = conditioner.to(dtype).condition(values).embedding
    assert moved.dtype == dtype
    tolerance = 1e-6 if dtype == torch.float64 else 0.1
    torch.testing.assert_close(moved.float(), reference, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("name", BUILTIN)
def test_device_moves(build, name):
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
def test_gradients_reach_the_parameters(build, name):
    conditioner, values = build(name)
    conditioner.condition(values).embedding.sum().backward()
    grads = [p.grad for p in conditioner.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", BUILTIN)
def test_tokenize_rejects_empty_and_non_sequence(build, name):
    conditioner, _ = build(name)
    with pytest.raises(ValueError, match="at least one value"):
        conditioner.tokenize([])
    with pytest.raises(TypeError, match="sequence of values"):
        conditioner.tokenize("abc")


def test_is_a_base_conditioner():
    for cls in registered_conditioners().values():
        assert issubclass(cls, BaseConditioner) and cls.kind in ("text", "wav", "joint_embed", "number", "symbolic")
