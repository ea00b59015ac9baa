import pytest
import torch

from cuecraft.condition import Condition
from cuecraft.conditioners import BaseConditioner, ValueTokens, build_conditioner, register_conditioner
from cuecraft.conditioners import registry
from cuecraft.errors import ConfigError


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


class Tempo(BaseConditioner):
    """A user's own conditioner: tempo in beats per second, times a learned vector."""

    kind = "number"

    def __init__(self, output_dim: int, scale: float = 1.0):
        super().__init__(1, output_dim)
        self.scale = scale

    def tokenize_checked(self, values, *, train=False, generator=None):
        return ValueTokens(torch.tensor([[0.0 if v is None else v / 60 * self.scale] for v in values]),
                      torch.tensor([[v is not None] for v in values]))

    def encode(self, tokens):
        return Condition(tokens.values.unsqueeze(-1), tokens.mask)


def test_users_register_and_build_their_own(clean_registry):
    register_conditioner("tempo")(Tempo)
    tempo = build_conditioner("tempo", {"output_dim": 3, "scale": 2.0})
    embedding, mask = tempo.condition([120, None])
    expected = tempo.proj_out(torch.tensor([[4.0]]))
    torch.testing.assert_close(embedding[0], expected)
    assert torch.all(embedding[1] == 0)


def test_unknown_type_lists_valid_names():
    with pytest.raises(ConfigError) as error:
        build_conditioner("tt5", {})
    valid = ", ".join(sorted(registry.registered_conditioners()))
    assert error.value.problems == [f"type: unknown conditioner type 'tt5'; valid types: {valid}"]
    assert {"int", "list", "lut", "number", "t5", "sentence", "clap_text", "clap"} <= set(valid.split(", "))


def test_unknown_and_missing_settings_are_all_reported():
    with pytest.raises(ConfigError) as error:
        build_conditioner("number", {"min_vall": 0})
    assert error.value.problems == [
        "min_vall: unknown setting for conditioner type 'number'; valid settings: output_dim, min_val, max_val, project_out",
        "output_dim: required by conditioner type 'number' but not given",
    ]


def test_taken_names_need_replace(clean_registry):
    with pytest.raises(ValueError, match="'int' is already registered to IntConditioner"):
        register_conditioner("int")(Tempo)
    register_conditioner("int", replace=True)(Tempo)
    assert registry.conditioner_class("int") is Tempo


def test_registration_checks_the_class(clean_registry):
    with pytest.raises(TypeError, match="needs a BaseConditioner subclass"):
        register_conditioner("x")(dict)
    with pytest.raises(ValueError, match="non-empty str"):
        register_conditioner("")
