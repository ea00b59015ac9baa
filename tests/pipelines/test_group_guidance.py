"""Guidance per condition group through the generation pipeline and `cuecraft generate`, on the tiny
random model (its text prompt is the group)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cuecraft.cli import main
from cuecraft.errors import GenerationInputError
from cuecraft.pipelines.generate import GenerationPipeline, GenerationRequest
from cuecraft.sampling import Denoiser, GuidanceOptions
from tests.pipelines.generation_model import export_tiny_model

METADATA = [{"prompt": "warm piano", "bpm": 90.0, "key": "A minor", "instrument": "piano", "drums": "off",
             "self_wav": None},
            {"prompt": "fast techno with deep bass and drums", "bpm": 150.0, "key": None, "instrument": None,
             "drums": "on", "self_wav": None}]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return export_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def pipe(model_dir):
    torch.set_num_threads(1)
    return GenerationPipeline.from_dir(model_dir)


def test_the_group_is_the_text_prompt(pipe):
    assert pipe.stack.guidance_group_conditions() == ("prompt",)
    assert pipe.stack.guidance_group_scale == 0.0


@pytest.mark.parametrize("branch", ["without", "only"])
def test_one_3b_dit_pass_equals_three_separate_passes(pipe, branch):
    """The formula on three separate DiT forwards (each branch its own batch of B, its own padding)
    equals the guided prediction of one forward on 3B items."""
    conditional, null, group = pipe.stack.group_guidance_inputs(METADATA, branch=branch)
    dit, objective = pipe.dit, pipe.objective
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, dit.config.latent_dim, pipe.frames, generator=generator)
    t = torch.tensor([0.3, 0.8])
    scale, group_scale = 1.75, 3.5
    guided = Denoiser(dit, objective, conditional, negative=null, group=group,
                      guidance=GuidanceOptions(scale=scale, group_scale=group_scale, group_branch=branch))
    with torch.no_grad():
        batched = guided.prediction(x, t)
        c, g, u = (dit(x, t, fused) for fused in (conditional, group, null))
    assert guided.items == 3 * 2
    if branch == "only":  # JASCO: a c + b t + (1 - a - b) u
        expected = scale * c + group_scale * g + (1 - scale - group_scale) * u
    else:  # MusicGen-Style with alpha = scale, beta = 1 + group_scale / scale
        beta = 1 + group_scale / scale
        expected = u + scale * (g + beta * (c - g) - u)
    torch.testing.assert_close(batched, expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(g, c, atol=1e-4)  # the prompt reaches the model: the test can fail


def test_guidance_text_zero_is_plain_guidance_and_positive_changes_the_audio(pipe, monkeypatch):
    request = GenerationRequest(prompt="warm piano", bpm=90, seconds=0.5)
    settings = dict(steps=2, guidance=2.0, measured=False)
    default = pipe.generate([request], **settings)[0].audio[0]
    off = pipe.generate([request], guidance_text=0.0, **settings)[0].audio[0]
    assert np.array_equal(default, off)
    batches = []
    forward = pipe.dit.forward

    def counting(x, *args, **kwargs):
        batches.append(x.shape[0])
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(pipe.dit, "forward", counting)
    texted = pipe.generate([request], guidance_text=3.0, **settings)[0].audio[0]
    assert set(batches) == {3} and not np.allclose(texted, default, atol=1e-4)
    batches.clear()
    pipe.generate([request], steps=2, guidance=1.0, guidance_text=3.0, measured=False)  # only the group: 2B
    assert set(batches) == {2}


def test_bad_group_scales_are_reported(pipe, tmp_path):
    request = GenerationRequest(prompt="x", seconds=0.5)
    with pytest.raises(GenerationInputError) as error:
        pipe.generate([request], steps=1, guidance=-1.0, guidance_text=float("nan"))
    assert len(error.value.problems) == 2 and "guidance_text: expected a number >= 0" in str(error.value)
    no_prompt = GenerationPipeline.from_dir(export_tiny_model(tmp_path / "no_prompt", prompt=False, melody=False))
    with pytest.raises(GenerationInputError, match="guidance_text: this model has no text conditions"):
        no_prompt.generate([GenerationRequest(bpm=100, seconds=0.5)], steps=1, guidance_text=2.0)


def test_cli_guidance_text(model_dir, tmp_path, capsys):
    out = tmp_path / "clip.wav"
    code = main(["generate", "a tune", "--model", str(model_dir), "--seconds", "0.5", "--steps", "2", "--guidance",
                 "1.75", "--guidance-text", "3.5", "--out", str(out), "--json", "--no-progress"])
    assert code == 0
    settings = json.loads(capsys.readouterr().out)["settings"]
    assert settings["guidance"] == 1.75 and settings["guidance_text"] == 3.5
    assert settings["guidance_group"] == ["prompt"]
    assert main(["generate", "--model", str(model_dir), "--guidance-text", "-2", "--out", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert "guidance_text: expected a number >= 0" in err and not (tmp_path / "x.wav").exists()
