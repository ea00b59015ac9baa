import math

import numpy as np
import pytest
import torch

from cuecraft.attributes import (
    ConditioningAttributes,
    JointEmbedCondition,
    Route,
    SegmentWithAttributes,
    WavCondition,
    check_value,
    to_attributes,
)
from cuecraft.errors import ConditioningInputError

ROUTES = [
    Route("prompt", "text", ("prompt",)),
    Route("seconds_total", "number", ("seconds_total",)),
    Route("melody", "wav", ("melody",)),
]


def test_metadata_dict_is_routed_by_name_and_kind():
    wav = WavCondition(torch.zeros(2, 100), sample_rate=16000)
    attributes = to_attributes({"prompt": "a beautiful song", "seconds_total": 193, "melody": wav, "extra": 1}, ROUTES, 0)
    assert attributes.text == {"prompt": "a beautiful song"}
    assert attributes.number == {"seconds_total": 193}
    assert attributes.wav == {"melody": wav}
    assert attributes.joint_embed == {}


def test_fallback_keys_are_tried_in_order():
    routes = [Route("prompt_t5", "text", ("prompt_t5", "prompt"))]
    assert to_attributes({"prompt": "x"}, routes, 0).text == {"prompt_t5": "x"}
    assert to_attributes({"prompt": "x", "prompt_t5": "y"}, routes, 0).text == {"prompt_t5": "y"}


@pytest.mark.parametrize(
    "item, message",
    [
        ({"prompt": "x", "seconds_total": "193", "melody": None}, "item 3, key 'seconds_total': expected an int or float"),
        ({"prompt": "x", "seconds_total": math.nan, "melody": None}, "item 3, key 'seconds_total': expected a finite number; got nan"),
        ({"prompt": "x", "seconds_total": True, "melody": None}, "got bool True"),
        ({"prompt": 5, "seconds_total": 1, "melody": None}, "item 3, key 'prompt': expected a str or None (kind 'text'); got int 5"),
        ({"prompt": "x", "melody": None}, "item 3: missing key 'seconds_total' for condition 'seconds_total'"),
        ({"prompt": "x", "seconds_total": 1, "melody": torch.zeros(3)}, "expected a WavCondition or None"),
    ],
)
def test_bad_metadata_names_key_index_and_expectation(item, message):
    with pytest.raises(ConditioningInputError) as error:
        to_attributes(item, ROUTES, 3)
    assert message in str(error.value)


def test_numbers_are_canonicalised():
    assert check_value("number", np.float32(2.5), "x") == 2.5
    assert isinstance(check_value("number", np.int64(7), "x"), int)
    assert check_value("number", torch.tensor(3), "x") == 3
    assert check_value("number", None, "x") is None
    with pytest.raises(ConditioningInputError):
        check_value("number", torch.tensor([1, 2]), "x")
    with pytest.raises(ConditioningInputError):
        check_value("number", math.inf, "x")


def test_joint_embed_accepts_text_shorthand():
    value = check_value("joint_embed", "warm pads", "x")
    assert value == JointEmbedCondition(text="warm pads")


def test_wav_condition_is_validated():
    assert WavCondition(torch.zeros(1, 50), 8000).length == 50
    assert WavCondition(torch.zeros(50), 8000, length=20).length == 20
    with pytest.raises(ConditioningInputError, match=r"length must be an int in \[0, 50\]"):
        WavCondition(torch.zeros(1, 50), 8000, length=51)
    with pytest.raises(ConditioningInputError, match="sample_rate must be a positive int"):
        WavCondition(torch.zeros(1, 50), 0)
    with pytest.raises(ConditioningInputError, match=r"float tensor \[C, T\]"):
        WavCondition(torch.zeros(1, 2, 50), 8000)
    with pytest.raises(ConditioningInputError, match="sample_rate"):
        JointEmbedCondition(wav=torch.zeros(10), sample_rate=None)


def test_segment_with_attributes_is_accepted():
    class Item(SegmentWithAttributes):
        def to_condition_attributes(self):
            return ConditioningAttributes(text={"prompt": "hi"}, number={"seconds_total": 4.0})

    attributes = to_attributes(Item(), ROUTES, 0)
    assert attributes.text == {"prompt": "hi"}
    assert attributes.number == {"seconds_total": 4.0}
    assert attributes.wav == {"melody": None}  # absent -> None


def test_conditioning_attributes_values_are_checked_too():
    with pytest.raises(ConditioningInputError, match="item 1, number attribute 'seconds_total'"):
        to_attributes(ConditioningAttributes(number={"seconds_total": "long"}), ROUTES, 1)


def test_other_item_types_are_refused():
    with pytest.raises(ConditioningInputError, match="item 0: expected a metadata dict.*got str"):
        to_attributes("a song", ROUTES, 0)


def test_with_nulls_copies_and_nulls():
    original = ConditioningAttributes(text={"a": "x", "b": "y"}, number={"n": 1})
    some = original.with_nulls({"text": ["a"]})
    assert some.text == {"a": None, "b": "y"} and some.number == {"n": 1}
    everything = original.with_nulls()
    assert everything.text == {"a": None, "b": None} and everything.number == {"n": None}
    assert original.text == {"a": "x", "b": "y"}  # untouched


def test_time_major_waveforms_are_refused_with_a_hint():
    with pytest.raises(ConditioningInputError, match=r"shape \(48000, 2\).*pass wav.T"):
        WavCondition(torch.zeros(48000, 2), 48000)


def test_huge_integers_are_numbers_not_overflows():
    assert check_value("number", 10**400, "x") == 10**400
