"""MusicGen's guidance and token choice: double CFG by the formula (a stub decoder), the delay
pattern, and the sampling warpers against transformers' own."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from cuecraft.attributes import WavCondition
from cuecraft.pipelines.musicgen.pattern import UNKNOWN, DelayPattern
from cuecraft.pipelines.musicgen.sampling import Guidance, Sampler
from tests.pipelines.musicgen_models import CHROMA, CODEBOOKS, CODES, SAMPLE_RATE, melody_wave, tiny_musicgen_melody

pytest.importorskip("transformers")


class StubDecoder(nn.Module):
    """Logits that are a fixed linear function of the prefix: [R * K, n, V]; every call recorded."""

    def __init__(self, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(width, CODEBOOKS * CODES, generator=torch.Generator().manual_seed(0)))
        self.config = SimpleNamespace(hidden_size=width)
        self.prefixes: list[torch.Tensor] = []

    def logits_of(self, prefix: torch.Tensor) -> torch.Tensor:
        """[R, P, D] -> [R * K, V]."""
        return (prefix.mean(dim=1) @ self.weight).reshape(-1, CODES)

    def forward(self, input_ids, use_cache=True, cache=None, encoder_hidden_states=None, **kwargs):
        if encoder_hidden_states is not None:
            self.prefixes.append(encoder_hidden_states)
            cache = encoder_hidden_states
        logits = self.logits_of(cache)[:, None].expand(-1, input_ids.shape[1], -1)
        return SimpleNamespace(logits=logits, cache=cache)


@pytest.fixture(scope="module")
def stub_pipe():
    from cuecraft.pipelines.musicgen import ChromaSettings, MusicGenPipeline

    model, tokenizer = tiny_musicgen_melody(seed=0)
    pipe = MusicGenPipeline(model, tokenizer, ChromaSettings(**CHROMA))
    stub = StubDecoder(model.decoder.config.hidden_size)
    pipe.model.decoder = stub  # the conditions stay the model's; the decoder is the stub
    pipe._cache_argument = "cache"
    return pipe, stub


@pytest.mark.parametrize("two_step", [False, True], ids=["batched", "two-step"])
def test_double_cfg_is_the_formula(stub_pipe, monkeypatch, two_step):
    pipe, stub = stub_pipe
    seen = []
    monkeypatch.setattr(Sampler, "select", lambda self, logits, generator: seen.append(logits) or logits.argmax(-1))
    melody = WavCondition(melody_wave(0.6), SAMPLE_RATE)
    s, s_g = 3.0, 12.0  # AudioCraft's cfg_coef 3, cfg_coef_beta 5
    stub.prefixes.clear()
    pipe("warm piano", melody=melody, seconds=0.04, guidance=s, guidance_text=s_g, two_step_cfg=two_step,
         negative_prompt="loud drums")
    # the three branches' prefixes, each as the conditioning makes it
    branches = pipe.conditioning.branches(["warm piano"], [melody], ["loud drums"],
                                          ("conditional", "group", "unconditional"))
    inputs = pipe.conditioning.decoder_inputs(branches, together=not two_step)
    c, g, u = (stub.logits_of(inputs[name].prefix) for name in ("conditional", "group", "unconditional"))
    expected = u + s * (c - u) + s_g * (c - g)
    torch.testing.assert_close(seen[0], expected, rtol=1e-5, atol=1e-4)
    beta = 1 + s_g / s  # AudioCraft's double CFG: u + α (w + β (c - w) - u), w the text-free branch
    torch.testing.assert_close(seen[0], u + s * (g + beta * (c - g) - u), rtol=1e-5, atol=1e-4)
    # batched: one pass of 3 rows; two-step: three passes of one row, the group keeps the melody
    assert [p.shape[0] for p in stub.prefixes] == ([3] if not two_step else [1, 1, 1])
    assert len(seen) == 2 + CODEBOOKS - 1  # 0.04 s: 2 frames, then the K - 1 steps of delay


def test_group_branch_drops_the_text_and_keeps_the_melody(stub_pipe):
    pipe, _ = stub_pipe
    melody = WavCondition(melody_wave(0.6), SAMPLE_RATE)
    branches = pipe.conditioning.branches(["warm piano"], [melody], None, ("conditional", "group", "unconditional"))
    inputs = pipe.conditioning.decoder_inputs(branches)
    chroma_frames = CHROMA["chroma_length"]
    conditional, group, null = (inputs[n].prefix[0] for n in ("conditional", "group", "unconditional"))
    assert torch.equal(group[:chroma_frames], conditional[:chroma_frames])  # the melody kept
    assert group[chroma_frames:].abs().sum() == 0 and conditional[chroma_frames:].abs().sum() > 0  # the text null
    assert torch.equal(null[chroma_frames:], group[chroma_frames:])
    assert not torch.equal(null[:chroma_frames], conditional[:chroma_frames])  # the chroma of silence


@pytest.mark.parametrize("scale, group_scale, branches", [
    (1.0, 0.0, ("conditional",)), (3.0, 0.0, ("conditional", "unconditional")),
    (0.5, 0.0, ("conditional", "unconditional")),
    (3.0, 2.0, ("conditional", "group", "unconditional")), (1.0, 2.0, ("conditional", "group")),
])
def test_only_the_branches_with_weight_are_computed(scale, group_scale, branches):
    guidance = Guidance(scale, group_scale)
    assert guidance.branches() == branches
    predictions = {name: torch.randn(6, CODES, generator=torch.Generator().manual_seed(i))
                   for i, name in enumerate(("conditional", "group", "unconditional"))}
    c, g, u = predictions.values()
    torch.testing.assert_close(guidance.combine({n: predictions[n] for n in branches}),
                               u + scale * (c - u) + group_scale * (c - g), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("top_k, top_p, temperature", [(0, 0.0, 1.0), (20, 0.0, 0.7), (0, 0.9, 1.0), (30, 0.6, 1.4),
                                                       (1, 0.0, 1.0)])
def test_warpers_are_transformers(top_k, top_p, temperature):
    from transformers.generation.logits_process import (LogitsProcessorList, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    logits = torch.randn(8, CODES, generator=torch.Generator().manual_seed(1)) * 3
    theirs = LogitsProcessorList([p for p, on in ((TemperatureLogitsWarper(temperature), temperature != 1.0),
                                                  (TopKLogitsWarper(max(top_k, 1)), top_k > 0),
                                                  (TopPLogitsWarper(top_p), 0 < top_p < 1)) if on])
    sampler = Sampler(top_k, top_p, temperature)
    expected = theirs(None, logits)
    assert torch.equal(sampler.warp(logits), expected)
    if top_k != 1:
        probabilities = expected.softmax(-1)
        torch.manual_seed(5)
        drawn = torch.multinomial(probabilities, 1).squeeze(1)
        assert torch.equal(sampler.select(logits, torch.Generator().manual_seed(5)), drawn)
    else:
        assert sampler.greedy and torch.equal(sampler.select(logits, None), logits.argmax(-1))


def test_delay_pattern_layout_and_revert():
    pattern = DelayPattern(num_codebooks=3, frames=4, start_token=9)
    prompt = torch.tensor([[[1, 2], [3, 4], [5, 6]]])
    grid = pattern.build(1, prompt)
    assert grid[0].tolist() == [[9, 1, 2, UNKNOWN, UNKNOWN, 9, 9],
                                [9, 9, 3, 4, UNKNOWN, UNKNOWN, 9],
                                [9, 9, 9, 5, 6, UNKNOWN, UNKNOWN]]
    assert pattern.first_step(2) == 3 and pattern.steps == 7
    grid[grid == UNKNOWN] = 0
    assert pattern.revert(grid)[0].tolist() == [[1, 2, 0, 0], [3, 4, 0, 0], [5, 6, 0, 0]]
