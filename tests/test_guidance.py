import pytest
import torch

from cuecraft.attributes import ATTRIBUTE_KINDS, ConditioningAttributes, JointEmbedCondition, WavCondition
from cuecraft.conditioners import IntConditioner, LUTConditioner, NumberConditioner
from cuecraft.errors import ConditioningInputError, ConfigError
from cuecraft.guidance import (
    AttributeDropout,
    ClassifierFreeGuidanceDropout,
    apply_guidance,
    combine_guidance,
    guidance_batch,
    unconditional,
)
from cuecraft.provider import ConditionProvider


def item(i=0):
    return ConditioningAttributes(
        text={"prompt": f"song {i}"},
        number={"bpm": 100 + i},
        wav={"melody": WavCondition(torch.zeros(1, 10), 16000)},
        joint_embed={"clap": JointEmbedCondition(text="x")},
    )


def is_null(a: ConditioningAttributes) -> bool:
    return all(v is None for kind in ATTRIBUTE_KINDS for v in getattr(a, kind).values())


def test_cfg_dropout_rate_is_per_sample_and_seeded():
    dropout = ClassifierFreeGuidanceDropout(0.3)
    batch = [item(i) for i in range(20000)]
    out = dropout(batch, generator=torch.Generator().manual_seed(1))
    dropped = [is_null(a) for a in out]
    assert abs(sum(dropped) / len(batch) - 0.3) < 0.015
    # dropped items lose every kind at once; kept items are unchanged
    assert all(is_null(a) or a is b for a, b in zip(out, batch))
    again = dropout(batch, generator=torch.Generator().manual_seed(1))
    assert [is_null(a) for a in again] == dropped
    assert not any(is_null(a) for a in batch)  # inputs untouched


def test_cfg_dropout_extremes():
    batch = [item(i) for i in range(50)]
    assert not any(is_null(a) for a in ClassifierFreeGuidanceDropout(0.0)(batch))
    assert all(is_null(a) for a in ClassifierFreeGuidanceDropout(1.0)(batch))


def test_attribute_dropout_rates_are_per_attribute():
    dropout = AttributeDropout({"text": {"prompt": 0.5}, "number": {"bpm": 0.1}, "wav": {"melody": 1.0}})
    out = dropout([item(i) for i in range(20000)], generator=torch.Generator().manual_seed(2))
    prompt = torch.tensor([a.text["prompt"] is None for a in out], dtype=torch.float)
    bpm = torch.tensor([a.number["bpm"] is None for a in out], dtype=torch.float)
    assert abs(prompt.mean() - 0.5) < 0.015 and abs(bpm.mean() - 0.1) < 0.01
    assert all(a.wav["melody"] is None and a.joint_embed["clap"] is not None for a in out)
    # independent draws: P(both) ~ 0.05
    assert abs((prompt * bpm).mean() - 0.05) < 0.01


def test_dropout_config_errors():
    with pytest.raises(ConfigError, match=r"p: expected a probability in \[0, 1\]; got 1.5"):
        ClassifierFreeGuidanceDropout(1.5)
    with pytest.raises(ConfigError) as error:
        AttributeDropout({"txt": {"a": 0.1}, "text": {"b": -0.1}})
    assert error.value.problems == [
        "txt: unknown attribute kind; valid kinds: text, wav, joint_embed, number, embedding, symbolic",
        "text.b: expected a probability in [0, 1]; got -0.1",
    ]
    with pytest.raises(ConditioningInputError, match="convert metadata first"):
        ClassifierFreeGuidanceDropout(0.5)([{"prompt": "x"}])


def test_dropout_and_unconditional_branch_give_identical_null_conditions():
    provider = ConditionProvider({
        "prompt": LUTConditioner(n_bins=32, dim=4, output_dim=6, project_out=True),
        "bpm": IntConditioner(output_dim=6, project_out=True),
        "seconds": NumberConditioner(output_dim=6, project_out=True),
    })
    batch = provider.to_attributes([{"prompt": "a b c", "bpm": 120, "seconds": 0.5}] * 3)
    dropped = provider.condition(ClassifierFreeGuidanceDropout(1.0)(batch))
    attribute_dropped = provider.condition(
        AttributeDropout({"text": {"prompt": 1.0}, "number": {"bpm": 1.0, "seconds": 1.0}})(batch))
    inference = provider.condition(unconditional(batch))
    for name in provider.conditioners:
        for other in (attribute_dropped, inference):
            assert torch.equal(dropped[name].embedding, other[name].embedding)
            assert torch.equal(dropped[name].mask, other[name].mask)
        assert torch.count_nonzero(dropped[name].embedding) == 0 and not dropped[name].mask.any()


def test_guidance_batch_puts_negative_or_null_second():
    batch = [item(0), item(1)]
    doubled = guidance_batch(batch)
    assert doubled[:2] == batch and all(is_null(a) for a in doubled[2:])
    negative = [item(5), item(6)]
    assert guidance_batch(batch, negative)[2:] == negative
    with pytest.raises(ConditioningInputError, match="1 given for 2 items"):
        guidance_batch(batch, negative[:1])


def test_combine_guidance_numbers():
    c = torch.tensor([[[1.0], [3.0]]])  # [B=1, C=2, T=1]
    u = torch.tensor([[[0.0], [1.0]]])
    torch.testing.assert_close(combine_guidance(c, u, 3.0), torch.tensor([[[3.0], [7.0]]]))
    # rescale: guided g = [3, 7] (std 2.8284), cond std 1.4142, so g * 0.5 = [1.5, 3.5]
    phi = 0.7
    expected = phi * torch.tensor([[[1.5], [3.5]]]) + (1 - phi) * torch.tensor([[[3.0], [7.0]]])
    torch.testing.assert_close(combine_guidance(c, u, 3.0, rescale_phi=phi), expected)
    torch.testing.assert_close(combine_guidance(c, u, 1.0, rescale_phi=phi), c)


def test_apply_guidance_splits_conditional_first():
    prediction = torch.cat([torch.full((2, 3), 2.0), torch.full((2, 3), 1.0)])
    torch.testing.assert_close(apply_guidance(prediction, 4.0), torch.full((2, 3), 5.0))
    with pytest.raises(ValueError, match="even size"):
        apply_guidance(torch.zeros(3, 2), 2.0)
    with pytest.raises(ValueError, match="rescale_phi must be in"):
        combine_guidance(torch.zeros(1, 2), torch.zeros(1, 2), 2.0, rescale_phi=2.0)
