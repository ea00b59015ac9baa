import pytest
import torch

from cuecraft.attributes import ConditioningAttributes
from cuecraft.conditioners import IntConditioner, ListConditioner, LUTConditioner, NumberConditioner
from cuecraft.errors import ConditioningInputError, ConfigError
from cuecraft.provider import ConditionProvider


@pytest.fixture
def provider():
    return ConditionProvider(
        {
            "prompt": LUTConditioner(n_bins=64, dim=8, output_dim=8),
            "genre": ListConditioner(output_dim=8, options=["rock", "jazz"]),
            "bpm": IntConditioner(output_dim=8, min_val=40, max_val=240),
            "seconds_total": NumberConditioner(output_dim=8, min_val=0, max_val=512),
        },
        default_keys={"prompt": "description"},
    )


METADATA = [
    {"prompt": "a beautiful song", "genre": "rock", "bpm": 120, "seconds_total": 193},
    {"description": "slow jazz", "genre": None, "bpm": None, "seconds_total": 30.5},
]


def test_metadata_dicts_give_each_conditioners_own_result(provider):
    conditions = provider.condition(METADATA)
    assert list(conditions) == ["prompt", "genre", "bpm", "seconds_total"]
    expected = provider.conditioners["prompt"].condition(["a beautiful song", "slow jazz"])
    torch.testing.assert_close(conditions["prompt"].embedding, expected.embedding)
    assert torch.equal(conditions["prompt"].mask, expected.mask)
    expected_bpm = provider.conditioners["bpm"].condition([120, None])
    torch.testing.assert_close(conditions["bpm"].embedding, expected_bpm.embedding)
    assert conditions["genre"].mask.tolist() == [[True], [False]]


def test_attributes_and_dicts_mix_in_one_batch(provider):
    attributes = ConditioningAttributes(text={"prompt": "slow jazz"}, number={"seconds_total": 30.5})
    mixed = provider.condition([METADATA[0], attributes])
    from_dicts = provider.condition(METADATA)
    for name in ("prompt", "seconds_total", "bpm", "genre"):
        torch.testing.assert_close(mixed[name].embedding, from_dicts[name].embedding)


def test_tokenize_is_cpu_work_and_forward_follows_the_provider(provider):
    tokens = provider.tokenize(METADATA)
    assert all(t.values.device.type == "cpu" for t in tokens.values())
    provider.to(torch.float64)
    conditions = provider(tokens)
    assert all(c.embedding.dtype == torch.float64 for c in conditions.values())
    assert all(c.device.type == "cpu" for c in provider.conditioners.values())


def test_errors_name_the_condition_the_item_and_the_key(provider):
    with pytest.raises(ConditioningInputError, match="condition 'genre', item 1: unknown label 'polka'"):
        provider.tokenize([METADATA[0], {**METADATA[0], "genre": "polka"}])
    with pytest.raises(ConditioningInputError, match="item 1, key 'bpm': expected an int or float"):
        provider.tokenize([METADATA[0], {**METADATA[0], "bpm": "fast"}])
    with pytest.raises(ConditioningInputError, match="item 0: missing key 'seconds_total'"):
        provider.tokenize([{"prompt": "x", "genre": None, "bpm": None}])
    with pytest.raises(ConditioningInputError, match="missing key 'prompt' or 'description'"):
        provider.tokenize([{"genre": None, "bpm": None, "seconds_total": 1}])
    with pytest.raises(ConditioningInputError, match="the batch is empty"):
        provider.tokenize([])
    with pytest.raises(ConditioningInputError, match="expected a batch"):
        provider.tokenize(METADATA[0])


def test_forward_needs_every_conditioners_tokens(provider):
    tokens = provider.tokenize(METADATA)
    del tokens["bpm"]
    with pytest.raises(ConditioningInputError, match=r"tokens missing for conditions \['bpm'\]"):
        provider(tokens)


def test_construction_errors():
    with pytest.raises(ConfigError, match="default_keys.x: no conditioner is named 'x'"):
        ConditionProvider({"a": IntConditioner(output_dim=2)}, default_keys={"x": "y"})
    with pytest.raises(ConfigError, match="conditioners.a: expected a BaseConditioner; got Linear"):
        ConditionProvider({"a": torch.nn.Linear(2, 2)})
    with pytest.raises(ConfigError, match="at least one conditioner"):
        ConditionProvider({})


def test_pre_encoded_conditions_bypass_their_conditioner():
    provider = ConditionProvider({"clap": NumberConditioner(output_dim=4), "n": IntConditioner(output_dim=4)},
                                 pre_encoded_keys=["clap"])
    ready = torch.arange(8.0).reshape(2, 4)
    conditions = provider.condition([{"clap": ready, "n": 1}, {"clap": torch.ones(4), "n": 2}, {"clap": None, "n": 3}])
    embedding, mask = conditions["clap"]
    assert embedding.shape == (3, 2, 4)
    assert torch.equal(embedding[0], ready) and torch.equal(embedding[1, 0], torch.ones(4))
    assert mask.tolist() == [[True, True], [True, False], [False, False]]
    with pytest.raises(ConditioningInputError, match=r"condition 'clap', item 0: a pre-encoded embedding of width 4"):
        provider.tokenize([{"clap": torch.zeros(3), "n": 1}])
    with pytest.raises(ConditioningInputError, match="a float tensor"):
        provider.tokenize([{"clap": "text", "n": 1}])


def test_pre_encoded_nulls_follow_the_conditioner():
    lut = LUTConditioner(n_bins=8, dim=4, output_dim=4)
    lut.null_length = 3
    provider = ConditionProvider({"text": lut}, pre_encoded_keys=["text"]).to(torch.float64)
    embedding, mask = provider.condition([{"text": None}])["text"]
    assert embedding.shape == (1, 3, 4) and embedding.dtype == torch.float64 and not mask.any()
