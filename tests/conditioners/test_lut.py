import hashlib

import pytest
import torch

from cuecraft.conditioners import ListConditioner, LUTConditioner
from cuecraft.conditioners.lut import hash_token, split_words
from cuecraft.errors import ConditioningInputError, ConfigError


def sha_bucket(token: str, n_bins: int) -> int:
    return int(hashlib.sha256(token.encode("utf-8")).hexdigest(), 16) % n_bins


def test_whitespace_tokens_are_hashed_lowercase_words():
    lut = LUTConditioner(n_bins=97, dim=4, output_dim=4)
    tokens = lut.tokenize(["Fast TECHNO, with synths!", "techno"])
    expected = [sha_bucket(w, 97) for w in ["fast", "techno", "with", "synths"]]
    assert tokens.values[0].tolist() == expected
    assert tokens.values[1, 0] == expected[1]
    assert tokens.mask.tolist() == [[True] * 4, [True, False, False, False]]
    assert split_words("Ünïcode words, ok?") == ["ünïcode", "words", "ok"]
    assert hash_token("x", 10) == sha_bucket("x", 10)


def test_noop_tokenizer_hashes_the_whole_string():
    lut = LUTConditioner(n_bins=1000, dim=4, output_dim=4, tokenizer="noop")
    tokens = lut.tokenize(["hip hop", None, ""])
    assert tokens.values[:, 0].tolist() == [sha_bucket("hip hop", 1000), 0, 0]
    assert tokens.mask.tolist() == [[True], [False], [False]]


def test_embedding_is_table_then_projection_with_padding_zeroed():
    lut = LUTConditioner(n_bins=13, dim=3, output_dim=5)
    assert isinstance(lut.proj_out, torch.nn.Linear)
    embedding, mask = lut.condition(["a b", "c"])
    ids = lut.tokenize(["a b", "c"]).values
    expected = lut.embed.weight[ids] @ lut.proj_out.weight.T + lut.proj_out.bias
    expected = expected * mask.unsqueeze(-1)
    torch.testing.assert_close(embedding, expected)
    assert torch.all(embedding[1, 1] == 0)


def test_same_width_means_no_projection_unless_asked():
    assert isinstance(LUTConditioner(10, 4, 4).proj_out, torch.nn.Identity)
    assert isinstance(LUTConditioner(10, 4, 4, project_out=True).proj_out, torch.nn.Linear)


def test_lut_config_errors_list_every_problem():
    with pytest.raises(ConfigError) as error:
        LUTConditioner(n_bins=0, dim=4, output_dim=4, tokenizer="spacy")
    assert error.value.problems == [
        "n_bins: must be >= 1; got 0",
        "tokenizer: expected one of whitespace, noop; got 'spacy'",
    ]
    with pytest.raises(ConfigError, match="dim: expected an int; got float 4.5"):
        LUTConditioner(n_bins=3, dim=4.5, output_dim=4)


def test_list_labels_use_row_index_plus_one():
    labels = ListConditioner(output_dim=4, options=["rock", "jazz"])
    assert labels.embedder.weight.shape == (3, 4)
    embedding, mask = labels.condition(["jazz", "rock", None])
    torch.testing.assert_close(embedding[0, 0], labels.embedder.weight[2])
    torch.testing.assert_close(embedding[1, 0], labels.embedder.weight[1])
    assert mask.tolist() == [[True], [True], [False]] and torch.all(embedding[2] == 0)


def test_unknown_label_is_an_error_listing_options():
    labels = ListConditioner(output_dim=4, options=["rock", "jazz"])
    with pytest.raises(ConditioningInputError, match=r"item 1: unknown label 'polka'; expected one of \['rock', 'jazz'\] or None"):
        labels.tokenize(["rock", "polka"])


def test_unknown_label_can_be_null_when_configured():
    labels = ListConditioner(output_dim=4, options=["rock"], unknown="null")
    embedding, mask = labels.condition(["polka", "rock"])
    assert mask.tolist() == [[False], [True]] and torch.all(embedding[0] == 0)


@pytest.mark.parametrize(
    "options, unknown, message",
    [
        ([], "error", "options: expected a non-empty list"),
        ("rock", "error", "options: expected a non-empty list"),
        (["a", "a", "b"], "error", r"options: labels must be unique; repeated: \['a'\]"),
        (["a", 3], "error", "every label must be a str"),
        (["a"], "zero", "unknown: expected one of error, null, row0; got 'zero'"),
    ],
)
def test_list_config_errors(options, unknown, message):
    with pytest.raises(ConfigError, match=message):
        ListConditioner(output_dim=4, options=options, unknown=unknown)
