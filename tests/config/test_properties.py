"""Whatever malformed config comes in, only ConfigError comes out (or a working stack)."""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cuecraft.config import build_stack
from cuecraft.errors import ConfigError

BASE = {
    "cond_dim": 4,
    "conditioners": [
        {"id": "prompt", "type": "lut", "roles": ["cross"], "config": {"n_bins": 8, "dim": 4}},
        {"id": "seconds", "type": "number", "roles": ["cross", "global"], "config": {"min_val": 0, "max_val": 10}},
        {"id": "bpm", "type": "int", "roles": ["prepend"], "config": {"min_val": 40, "max_val": 50}},
        {"id": "genre", "type": "list", "roles": ["prepend"], "config": {"options": ["a", "b"]}},
    ],
    "default_keys": {"prompt": "text"},
    "fuser": {"cross_attention_pos_emb": True},
    "dropout": {"cfg": 0.1, "attributes": {"text": {"genre": 0.5}}},
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 600) | st.floats(allow_nan=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths(item, prefix + (i,))


def mutate(draw, document):
    """Up to three random edits (replace, delete or add a value) anywhere in ``document``."""
    for _ in range(draw(st.integers(1, 3))):
        places = [p for p in paths(document) if p]
        if not places:
            break
        where = draw(st.sampled_from(places))
        parent = document
        for part in where[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[where[-1]] = draw(json_values)
        elif action == "delete":
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return document


@st.composite
def mutated_configs(draw):
    return mutate(draw, copy.deepcopy(BASE))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_malformed_configs_raise_only_config_errors(config):
    try:
        build_stack(config, seed=0)
    except ConfigError as error:
        assert error.problems and all(isinstance(p, str) and ":" in p for p in error.problems)


@settings(max_examples=50, deadline=None)
@given(json_values)
def test_arbitrary_documents_raise_only_config_errors(document):
    try:
        build_stack(document)
    except ConfigError:
        pass


PEER_DOCUMENTS = [
    {"model": {"conditioning": {"configs": [{"id": "p", "type": "lut", "config": {"n_bins": 8, "dim": 4}},
                                            {"id": "s", "type": "number", "config": {"min_val": 0, "max_val": 9}}],
                                "cond_dim": 4},
               "diffusion": {"cross_attention_cond_ids": ["p", "s"], "global_cond_ids": ["s"],
                             "config": {"cond_token_dim": 4, "global_cond_dim": 4}}}},
    {"transformer_lm": {"dim": 4},
     "conditioners": {"d": {"model": "lut", "lut": {"n_bins": 8, "dim": 4}}},
     "fuser": {"cross": ["d"], "prepend": [], "sum": []},
     "classifier_free_guidance": {"training_dropout": 0.1, "inference_coef": 3.0},
     "attribute_dropout": {"text": {"d": 0.2}}},
]


@st.composite
def mutated_peer_documents(draw):
    return mutate(draw, copy.deepcopy(draw(st.sampled_from(PEER_DOCUMENTS))))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_peer_documents())
def test_malformed_peer_configs_raise_only_config_errors(document):
    try:
        build_stack(document, seed=0)
    except ConfigError as error:
        assert error.problems and all(isinstance(p, str) for p in error.problems)
