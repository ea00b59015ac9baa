import math

import pytest
import torch

from cuecraft.conditioners import IntConditioner, NumberConditioner
from cuecraft.errors import ConditioningInputError, ConfigError


def test_int_uses_row_value_minus_min_and_clamps():
    ints = IntConditioner(output_dim=4, min_val=10, max_val=20)
    assert ints.int_embedder.weight.shape == (11, 4)
    embedding, mask = ints.condition([12, 25, 3, 10.0, None])
    table = ints.int_embedder.weight
    torch.testing.assert_close(embedding[:4, 0], table[[2, 10, 0, 0]])
    assert mask[:, 0].tolist() == [True, True, True, True, False]
    assert torch.all(embedding[4] == 0)


def test_int_refuses_fractions_and_strings():
    ints = IntConditioner(output_dim=4)
    with pytest.raises(ConditioningInputError, match="item 1: expected a whole number; got 2.5"):
        ints.tokenize([1, 2.5])
    with pytest.raises(ConditioningInputError, match="item 0: expected an int or float"):
        ints.tokenize(["120"])


def test_int_config_errors():
    with pytest.raises(ConfigError, match=r"max_val: must be >= min_val \(5\); got 4"):
        IntConditioner(output_dim=4, min_val=5, max_val=4)
    with pytest.raises(ConfigError, match="min_val: expected an int; got float 0.5"):
        IntConditioner(output_dim=4, min_val=0.5)


def reference_number_embedding(x, min_val, max_val, frequencies, weight, bias):
    """The formula written out: clamp, scale to [0, 1], [n, sin 2πnw, cos 2πnw], linear."""
    n = (min(max(x, min_val), max_val) - min_val) / (max_val - min_val)
    features = [n] + [math.sin(2 * math.pi * n * w) for w in frequencies] + [math.cos(2 * math.pi * n * w) for w in frequencies]
    return torch.tensor(features, dtype=torch.float64) @ weight.double().T + bias.double()


def test_number_matches_the_fourier_feature_formula():
    numbers = NumberConditioner(output_dim=6, min_val=10, max_val=50)
    values = [10, 22.5, 50, 70, -3]
    embedding, mask = numbers.condition(values)
    frequencies = numbers.embedder.embedding[0].weights.tolist()
    linear = numbers.embedder.embedding[1]
    assert len(frequencies) == 128 and linear.in_features == 257
    for i, x in enumerate(values):
        expected = reference_number_embedding(x, 10, 50, frequencies, linear.weight, linear.bias)
        torch.testing.assert_close(embedding[i, 0].double(), expected, rtol=1e-5, atol=1e-5)
    assert mask.all()
    torch.testing.assert_close(embedding[3], embedding[2])  # clamped to max
    torch.testing.assert_close(embedding[4], embedding[0])  # clamped to min


def test_number_state_dict_uses_stable_audio_tools_names():
    assert set(NumberConditioner(output_dim=4).state_dict()) == {
        "embedder.embedding.0.weights", "embedder.embedding.1.weight", "embedder.embedding.1.bias",
    }
    assert "proj_out.weight" in NumberConditioner(output_dim=4, project_out=True).state_dict()


@pytest.mark.parametrize(
    "min_val, max_val, message",
    [
        (3, 3, r"max_val: must be greater than min_val \(3\)"),
        (4, 1, r"max_val: must be greater than min_val \(4\)"),
        (math.nan, 1, "min_val: expected a finite number; got float nan"),
        ("0", 1, "min_val: expected a finite number; got str '0'"),
    ],
)
def test_number_config_errors(min_val, max_val, message):
    with pytest.raises(ConfigError, match=message):
        NumberConditioner(output_dim=4, min_val=min_val, max_val=max_val)


def test_number_null_and_bad_values():
    numbers = NumberConditioner(output_dim=4)
    embedding, mask = numbers.condition([None, 0.5])
    assert mask.tolist() == [[False], [True]] and torch.all(embedding[0] == 0)
    with pytest.raises(ConditioningInputError, match="item 0: expected a finite number; got nan"):
        numbers.tokenize([math.nan])


def test_huge_values_clamp_without_overflow():
    numbers = NumberConditioner(output_dim=4, min_val=0, max_val=10)
    torch.testing.assert_close(numbers.condition([10**400]).embedding, numbers.condition([10]).embedding)
    ints = IntConditioner(output_dim=4, min_val=0, max_val=10)
    torch.testing.assert_close(ints.condition([10**400]).embedding, ints.condition([10]).embedding)


@pytest.mark.parametrize("settings, message", [
    ({"min_val": 0, "max_val": 10**40 - 1}, "max_val: must be within +-1e+38 (values are scaled in float32); got 1e+40"),
    ({"min_val": -3e38, "max_val": 1}, "min_val: must be within +-1e+38 (values are scaled in float32); got -3e+38"),
])
def test_number_range_beyond_float32_is_a_config_error(settings, message):
    """Fuzz regression (bench/fuzz.py, cuecraft JSON #1638): a 40-digit max_val built, then the
    first value raised torch's RuntimeError ("cannot be converted to type float without overflow")."""
    with pytest.raises(ConfigError) as error:
        NumberConditioner(output_dim=4, **settings)
    assert message in str(error.value)
    edge = NumberConditioner(output_dim=4, min_val=-1e38, max_val=1e38)
    tokens = edge.tokenize([0.0, 1e38, None])
    assert tokens.values.squeeze(1).tolist() == [0.5, 1.0, 0.0] and tokens.mask.squeeze(1).tolist() == [True, True, False]
