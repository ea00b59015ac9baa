"""Guidance per condition group: the group branch's attributes and conditions, and the checks of its
config block (``guidance.group``)."""

import pytest
import torch

from cuecraft.attributes import ConditioningAttributes
from cuecraft.config import build_stack
from cuecraft.errors import ConditioningInputError, ConfigError
from cuecraft.guidance import AttributeDropout
from cuecraft.guidance_groups import check_guidance_group, group_attributes, prompt_conditions

CONFIG = {
    "cond_dim": 8,
    "conditioners": [
        {"id": "prompt", "type": "lut", "roles": ["cross"], "config": {"n_bins": 64, "dim": 8}},
        {"id": "style", "type": "lut", "roles": ["cross"], "config": {"n_bins": 64, "dim": 8}},
        {"id": "bpm", "type": "number", "roles": ["cross", "global"], "config": {"min_val": 40, "max_val": 240}},
    ],
}
ITEMS = [{"prompt": "warm piano", "style": "jazz", "bpm": 90.0},
         {"prompt": "fast techno", "style": "house", "bpm": 128}]


def assert_same_fused(first, second):
    for name in ("cross_attention_src", "cross_attention_mask", "global_cond"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name


@pytest.fixture(scope="module")
def stack():
    stack = build_stack(CONFIG, seed=0)
    stack.guidance_group = ("prompt",)
    return stack


def test_without_branch_nulls_the_group_through_the_dropout_path(stack):
    conditional, null, group = stack.group_guidance_inputs(ITEMS)
    assert_same_fused(conditional, stack.fuse(stack.condition(ITEMS)))
    assert_same_fused(null, stack.guidance_inputs(ITEMS)[1])
    assert_same_fused(group, stack.fuse(stack.condition([{**i, "prompt": None} for i in ITEMS])))
    # the same null as training-time attribute dropout of the prompt
    dropped = AttributeDropout({"text": {"prompt": 1.0}})(stack.provider.to_attributes(ITEMS))
    assert_same_fused(group, stack.fuse(stack.condition(dropped)))
    # the prompt's 1 token is masked, the style's and bpm's are not
    assert group.cross_attention_mask.tolist() == [[False, True, True]] * 2


def test_only_branch_keeps_the_group_alone(stack):
    _, _, group = stack.group_guidance_inputs(ITEMS, ["prompt", "style"], branch="only")
    assert_same_fused(group, stack.fuse(stack.condition([{**i, "bpm": None} for i in ITEMS])))


def test_negative_conditions_stay_the_second_branch(stack):
    negative = [{"prompt": "noise", "style": None, "bpm": None}] * 2
    _, other, _ = stack.group_guidance_inputs(ITEMS, negative=negative)
    assert_same_fused(other, stack.fuse(stack.condition(negative)))


def test_group_attributes_do_not_modify_their_input_and_keep_kinds():
    item = ConditioningAttributes(text={"prompt": "x", "style": "y"}, number={"bpm": 90.0})
    without = group_attributes([item], {"text": ["prompt"]})[0]
    assert without.text == {"prompt": None, "style": "y"} and without.number == {"bpm": 90.0}
    only = group_attributes([item], {"text": ["prompt"]}, "only", keep_kinds=["number"])[0]
    assert only.text == {"prompt": "x", "style": None} and only.number == {"bpm": 90.0}
    assert item.text == {"prompt": "x", "style": "y"}
    with pytest.raises(ConfigError, match="branch: expected one of without, only"):
        group_attributes([item], {"text": ["prompt"]}, "both")


def test_the_default_group_is_the_prompt_encoders(stack):
    assert prompt_conditions({"prompt": "sentence", "bpm": "number", "caption": "t5", "key": "list"}) == \
        ("prompt", "caption")
    assert stack.text_conditions() == ()  # lut is not a prompt encoder
    with pytest.raises(ConditioningInputError, match="no condition is named"):
        stack.group_guidance_inputs(ITEMS, ["tempo"])


TYPES = {"prompt": "t5", "melody": "chroma_stem", "bpm": "number"}


def test_group_config_checks_name_every_problem_with_its_path():
    assert check_guidance_group(["prompt"], 3.5, "without", TYPES) == []
    assert check_guidance_group(None, 3.5, "only", TYPES) == []  # the t5 prompt
    assert check_guidance_group(["prompt", "tempo", "prompt", 3], -1, "both", TYPES) == [
        "group.scale: expected a finite number >= 0 (0: off); got -1",
        "group.branch: expected one of without, only; got 'both'",
        "group.conditions[1]: no conditioner has id 'tempo'; ids: ['prompt', 'melody', 'bpm']",
        "group.conditions[2]: 'prompt' is listed twice",
        "group.conditions[3]: no conditioner has id 3; ids: ['prompt', 'melody', 'bpm']",
    ]
    assert check_guidance_group("prompt", float("inf"), "without", TYPES) == [
        "group.scale: expected a finite number >= 0 (0: off); got inf",
        "group.conditions: expected a non-empty list of condition ids; got 'prompt'",
    ]
    assert check_guidance_group(["prompt", "melody", "bpm"], 1.0, "without", TYPES)[0].startswith(
        "group.conditions: the group holds every condition")
    problems = check_guidance_group(None, 2.0, "without", {"melody": "chroma_stem", "bpm": "number"})
    assert len(problems) == 1 and "no conditioner carries a text prompt" in problems[0] and "['melody']" in problems[0]


def _config_has_groups() -> bool:
    from cuecraft.config.schema import GuidanceSpec

    return "group" in GuidanceSpec.model_fields


@pytest.mark.skipif(not _config_has_groups(), reason="the config schema has no guidance.group yet")
def test_config_guidance_group_builds_and_reports_problems_with_paths():
    stack = build_stack({**CONFIG, "guidance": {"scale": 1.75, "group": {"conditions": ["prompt"], "scale": 3.5,
                                                                         "branch": "only"}}}, seed=0)
    assert (stack.guidance_scale, stack.guidance_group, stack.guidance_group_scale, stack.guidance_group_branch) == \
        (1.75, ("prompt",), 3.5, "only")
    assert build_stack(CONFIG, seed=0).guidance_group_scale == 0.0
    with pytest.raises(ConfigError) as error:
        build_stack({**CONFIG, "guidance": {"group": {"conditions": ["prompt", "tempo"], "branch": "both"}}})
    assert error.value.problems == [
        "guidance.group.branch: expected one of without, only; got 'both'",
        "guidance.group.conditions[1]: no conditioner has id 'tempo'; ids: ['prompt', 'style', 'bpm']",
    ]
    with pytest.raises(ConfigError) as error:
        build_stack({**CONFIG, "guidance": {"group": {"scale": -1, "colour": "red"}}})
    assert [p.split(":")[0] for p in error.value.problems] == ["guidance.group.scale", "guidance.group.colour"]
    with pytest.raises(ConfigError, match="guidance.group.conditions: not given, and no conditioner carries a text"):
        build_stack({**CONFIG, "guidance": {"group": {"scale": 2.0}}})
