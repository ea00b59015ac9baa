"""Hostile and malformed documents in every format: only ConfigError comes out, in bounded time
and memory, and ``validate_config`` and ``build_stack`` agree on every document."""

import collections
import copy
import json
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cuecraft.config import build_stack
from cuecraft.config.reading import MAX_CONFIG_BYTES, MAX_DEPTH, MAX_YAML_BYTES, parse_document, read_document
from cuecraft.config.report import validate_config
from cuecraft.errors import ConfigError

CUECRAFT = {
    "cond_dim": 4,
    "conditioners": [
        {"id": "prompt", "type": "lut", "roles": ["cross"], "config": {"n_bins": 8, "dim": 4}},
        {"id": "seconds", "type": "number", "roles": ["cross", "global"], "config": {"min_val": 0, "max_val": 10}},
        {"id": "genre", "type": "list", "roles": ["prepend"], "config": {"options": ["a", "b"]}},
    ],
    "fuser": {"cross_attention_pos_emb": True, "cross_attention_pos_emb_scale": 0.5},
    "dropout": {"cfg": 0.1, "attributes": {"text": {"genre": 0.5}}},
    "guidance": {"scale": 3.0},
}
STABLE_AUDIO = {
    "model_type": "diffusion_cond", "sample_size": 441000, "sample_rate": 44100,
    "model": {"conditioning": {"configs": [
        {"id": "prompt", "type": "lut", "config": {"n_bins": 8, "dim": 4}},
        {"id": "seconds_start", "type": "number", "config": {"min_val": 0, "max_val": 10}},
        {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 10}}], "cond_dim": 4},
        "diffusion": {"cross_attention_cond_ids": ["prompt", "seconds_start"], "global_cond_ids": ["seconds_total"],
                      "config": {"cond_token_dim": 4, "global_cond_dim": 4}}},
}
AUDIOCRAFT = {
    "sample_rate": 16000, "transformer_lm": {"dim": 8},
    "classifier_free_guidance": {"training_dropout": 0.2, "inference_coef": 3.0},
    "attribute_dropout": {"text": {"description": 0.1}},
    "fuser": {"cross_attention_pos_emb": False, "cross_attention_pos_emb_scale": 1, "sum": [], "prepend": [],
              "cross": ["description", "genre"], "input_interpolate": []},
    "conditioners": {"description": {"model": "lut", "lut": {"n_bins": 16, "dim": 8, "tokenizer": "noop"}},
                     "genre": {"model": "lut", "lut": {"n_bins": "${transformer_lm.dim}", "dim": 4}}},
}
FORMATS = {"cuecraft": (CUECRAFT, False), "stable-audio-tools": (STABLE_AUDIO, False), "audiocraft": (AUDIOCRAFT, True)}
OUTCOMES: dict[str, collections.Counter] = {name: collections.Counter() for name in FORMATS}

values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 600) | st.sampled_from([10**12, -1, 0, 2**70])
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6)
    | st.sampled_from(["${sample_rate}", "${nowhere}", "???", "cross", "global", "prompt", "lut", "t5"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def places(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from places(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from places(item, prefix + (i,))


@st.composite
def mutated(draw, base):
    """1-3 edits (replace, delete, add) anywhere in ``base``: most reach deep into the schema."""
    document = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from([p for p in places(document) if p] or [()]))
        if not where:
            break
        parent = document
        for part in where[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[where[-1]] = draw(values)
        elif action == "delete":
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(values)
        else:
            parent.append(draw(values))
    return document


def outcome(document, as_yaml):
    """'valid' or 'ConfigError'; the same for validate and build (anything else fails the test)."""
    text = yaml.safe_dump(document) if as_yaml else json.dumps(document)
    try:
        parsed = parse_document(text.encode("utf-8"), "doc", yaml=as_yaml)
    except ConfigError:
        return "ConfigError (reading)"
    try:
        validate_config(copy.deepcopy(parsed))
        validated = "valid"
    except ConfigError as error:
        assert error.problems and all(isinstance(p, str) and ":" in p for p in error.problems)
        validated = "ConfigError"
    try:
        build_stack(copy.deepcopy(parsed), seed=0)
        built = "valid"
    except ConfigError:
        built = "ConfigError"
    assert validated == built, (validated, built, document)
    return validated


@pytest.mark.parametrize("name", list(FORMATS))
def test_the_base_documents_are_valid(name):
    base, as_yaml = FORMATS[name]
    assert outcome(base, as_yaml) == "valid"


def _property(name):
    base, as_yaml = FORMATS[name]

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated(base))
    def run(document):
        OUTCOMES[name][outcome(document, as_yaml)] += 1

    run()
    counts = OUTCOMES[name]
    # generated documents reach past the first check: some stay valid, some fail deep inside
    assert counts["valid"] > 0 and counts["ConfigError"] > 0, counts


@pytest.mark.parametrize("name", list(FORMATS))
def test_mutated_documents_give_only_config_errors_and_validate_agrees_with_build(name):
    _property(name)


def _quick(fn, *args, **kwargs):
    start = time.perf_counter()
    with pytest.raises(ConfigError) as error:
        fn(*args, **kwargs)
    assert time.perf_counter() - start < 1.0
    message = str(error.value)
    assert len(message) < 2000
    return message


def test_hostile_documents_are_bounded(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    assert "nested deeper" in _quick(parse_document, deep.encode(), "deep.json", yaml=False)
    _quick(parse_document, deep.encode(), "deep.yaml", yaml=True)  # libyaml: "while increasing flow level"
    indented = "".join(" " * i + "k:\n" for i in range(0, 1400, 2)) + " " * 1400 + "v\n"
    _quick(parse_document, indented.encode(), "indented.yaml", yaml=True)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(9))
    assert "alias bomb" in _quick(parse_document, bomb.encode(), "bomb.yaml", yaml=True)
    assert "recursive alias" in _quick(parse_document, b"a: &a [*a]\n", "loop.yaml", yaml=True)
    assert "not UTF-8" in _quick(parse_document, b'{"cond_dim": "\xff\xfe"}', "bytes.json", yaml=False)
    _quick(parse_document, b'{"cond_dim": ' + b"9" * 5000 + b"}", "int.json", yaml=False)
    _quick(parse_document, b"cond_dim: " + b"9" * 5000 + b"\n", "int.yaml", yaml=True)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_CONFIG_BYTES + 1))
    assert f"at most {MAX_CONFIG_BYTES:,} bytes" in _quick(read_document, big)
    assert MAX_DEPTH == 64


def test_a_megabyte_document_reads_in_under_a_second(tmp_path):
    items = [{"id": f"c{i}", "type": "number", "roles": ["cross"], "config": {"min_val": 0, "max_val": 1}}
             for i in range(9000)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"cond_dim": 4, "conditioners": items}))
    assert 0.5e6 < path.stat().st_size <= MAX_CONFIG_BYTES
    start = time.perf_counter()
    read_document(path)
    assert time.perf_counter() - start < 1.0
    big_yaml = tmp_path / "big.yaml"
    big_yaml.write_text(yaml.safe_dump({"cond_dim": 4, "conditioners": items}, default_flow_style=True))
    assert f"at most {MAX_YAML_BYTES:,}" in _quick(read_document, big_yaml)  # refused before parsing
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump({"cond_dim": 4, "conditioners": items[:2800]}, default_flow_style=True))
    assert 0.5 * MAX_YAML_BYTES < small.stat().st_size <= MAX_YAML_BYTES
    start = time.perf_counter()
    read_document(small)
    assert time.perf_counter() - start < 1.0


def test_sizes_names_and_reals_are_checked_before_anything_is_allocated():
    build_stack(CUECRAFT, seed=0)  # imports done: what is timed below is the check alone

    def config(**settings):
        return {"cond_dim": 4, "conditioners": [{"id": "p", "type": "lut", "roles": ["cross"],
                                                 "config": {"n_bins": 8, "dim": 4, **settings}}]}
    assert "past the bound of 16,777,216" in _quick(build_stack, config(n_bins=10**10))
    assert "past the bound of 65,536" in _quick(build_stack, config(dim=10**10))
    assert "past the bound of 268,435,456" in _quick(build_stack, config(n_bins=2**24, dim=2**15))
    _quick(build_stack, config(n_bins=2**80))
    long_key = {"cond_dim": 4, "conditioners": [], "x" * 1_000_000: 1}
    assert len(_quick(build_stack, long_key)) < 2000
    for field, value in (("fuser", {"cross_attention_pos_emb_scale": float("nan")}),
                         ("guidance", {"scale": float("inf")}), ("dropout", {"cfg": float("nan")})):
        document = {**config(), field: value}
        _quick(build_stack, document)
        _quick(validate_config, document)
    name = {"cond_dim": 4, "conditioners": [{"id": "p", "type": "t5", "roles": ["cross"],
                                             "config": {"t5_model_name": "/" + "a" * 5000}}]}
    assert "at most 1,024" in _quick(build_stack, name)
