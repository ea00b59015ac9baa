"""Peer layouts of the fuser, guidance, dropout and checkpoint buffers, asserted against the
peers' formulas: AudioCraft 1.3.0's ConditionFuser (iterates the provider's conditions, text then
wav then joint_embed; ``cat([cond, input])`` per prepended condition; ``cat([cross, cond])`` per
cross one), stable-audio-tools 0.0.19's DiT CFG batch (global and input_concat in both halves,
cross and prepend ``zeros_like``), and MusicGen-melody's checkpoint buffer ``...chroma.spec.window``.
"""

import pytest
import torch

from cuecraft.config import build_stack
from cuecraft.config.weights import load_peer_weights
from cuecraft.errors import ConfigError, WeightsError
from cuecraft.guidance import AttributeDropout, ClassifierFreeGuidanceDropout

AUDIOCRAFT = {"transformer_lm": {"dim": 8},
              "fuser": {"prepend": ["melody", "genre"], "cross": ["mood", "tags"]},
              "conditioners": {
                  "melody": {"model": "chroma_stem", "chroma_stem": {"sample_rate": 8000, "n_chroma": 12,
                                                                     "radix2_exp": 9, "duration": 1.0}},
                  "mood": {"model": "lut", "lut": {"n_bins": 16, "dim": 8, "tokenizer": "noop"}},
                  "genre": {"model": "lut", "lut": {"n_bins": 16, "dim": 8, "tokenizer": "noop"}},
                  "tags": {"model": "lut", "lut": {"n_bins": 16, "dim": 8, "tokenizer": "noop"}}}}
ITEMS = [{"melody": None, "mood": "calm", "genre": "jazz", "tags": "live"},
         {"melody": None, "mood": "dark", "genre": "rock", "tags": "demo"}]


def audiocraft_fuse(conditions, prepend, cross, x):
    """AudioCraft's fuser loop over the provider's conditions."""
    out, source = x, None
    for name, (embedding, _) in conditions.items():
        if name in prepend:
            out = torch.cat([embedding, out], dim=1)
        elif name in cross:
            source = embedding if source is None else torch.cat([source, embedding], dim=1)
    return out, source


def test_audiocraft_prepend_is_reversed_and_cross_in_provider_order():
    stack = build_stack(AUDIOCRAFT, seed=0)
    assert list(stack.provider.conditioners) == ["mood", "genre", "tags", "melody"]  # text, then wav
    assert stack.fuser.prepend_order == "reversed"
    conditions = stack.provider.condition(ITEMS)
    x = torch.randn(2, 3, 8)
    fused = stack.fuse(conditions, x)
    expected_input, expected_cross = audiocraft_fuse(conditions, ("melody", "genre"), ("mood", "tags"), x)
    assert torch.equal(fused.input, expected_input) and torch.equal(fused.cross_attention_src, expected_cross)
    # cuecraft's own default: prepend in the listed order
    own = build_stack({"cond_dim": 8, "conditioners": [
        {"id": n, "type": "lut", "roles": ["prepend"], "config": {"n_bins": 16, "dim": 8, "tokenizer": "noop"}}
        for n in ("genre", "mood")]}, seed=0)
    both = own.provider.condition([{"genre": "jazz", "mood": "calm"}])
    assert torch.equal(own.fuse(both).prepend_cond, torch.cat([both["genre"].embedding, both["mood"].embedding], 1))


SAT = {"model": {"conditioning": {"cond_dim": 4, "configs": [
    {"id": "genre", "type": "list", "config": {"options": ["techno", "jazz"]}},
    {"id": "seconds_start", "type": "number", "config": {"min_val": 0, "max_val": 512}},
    {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 512}}]},
    "diffusion": {"cross_attention_cond_ids": ["genre", "seconds_start", "seconds_total"],
                  "global_cond_ids": ["seconds_start", "seconds_total"]}}}
META = [{"genre": "jazz", "seconds_start": 0, "seconds_total": 30}, {"genre": None, "seconds_start": 5, "seconds_total": 47}]


def test_sat_guidance_keeps_the_global_condition_in_both_halves():
    stack = build_stack(SAT, seed=0)
    conditional, unconditional = stack.guidance_inputs(META)
    # the peer's DiT: batch_global_cond = cat([global, global]); cross: zeros_like(cross)
    assert torch.equal(unconditional.global_cond, conditional.global_cond)
    assert conditional.global_cond.abs().sum() > 0
    assert unconditional.cross_attention_src.shape == conditional.cross_attention_src.shape == (2, 3, 4)
    assert torch.count_nonzero(unconditional.cross_attention_src) == 0
    # genre None is the learned row 0 in the conditional branch, not zeros
    assert torch.equal(conditional.cross_attention_src[1, 0], stack.provider.conditioners["genre"].embedder.weight[0])
    own = build_stack({"cond_dim": 4, "conditioners": [
        {"id": "seconds_total", "type": "number", "roles": ["global"], "config": {"max_val": 512}}]}, seed=0)
    _, null = own.guidance_inputs([{"seconds_total": 30}])
    assert torch.count_nonzero(null.global_cond) == 0  # cuecraft's own: the null condition, everywhere


def test_sat_guidance_with_negative_conditions_keeps_global():
    stack = build_stack(SAT, seed=0)
    negative = [{"genre": "techno", "seconds_start": 100, "seconds_total": 200}] * 2
    conditional, other = stack.guidance_inputs(META, negative)
    assert torch.equal(other.global_cond, conditional.global_cond)
    assert not torch.equal(other.cross_attention_src, conditional.cross_attention_src)


def test_exact_audiocraft_dropout_is_drawn_once_per_batch():
    config = {**AUDIOCRAFT, "classifier_free_guidance": {"training_dropout": 0.5}}
    assert build_stack(config, seed=0).cfg_dropout.per == "item"
    assert build_stack(config, seed=0, compat="exact").cfg_dropout.per == "batch"
    attributes = build_stack(config, seed=0).provider.to_attributes(ITEMS * 8)
    for seed in range(6):
        dropped = ClassifierFreeGuidanceDropout(0.5, per="batch")(attributes, torch.Generator().manual_seed(seed))
        assert len({d.text["mood"] is None for d in dropped}) == 1  # all items or none
    by_attribute = AttributeDropout({"text": {"mood": 0.5}}, per="batch")
    dropped = by_attribute(attributes, torch.Generator().manual_seed(1))
    assert len({d.text["mood"] is None for d in dropped}) == 1


def melody_checkpoint(stack, window):
    state = {f"lm.condition_provider.conditioners.{k.split('.', 1)[1].replace('proj_out', 'output_proj')}": v
             for k, v in stack.provider.state_dict().items()}
    state["lm.condition_provider.conditioners.melody.chroma.spec.window"] = window
    return state


def test_musicgen_melody_window_buffer_is_checked_not_refused():
    stack = build_stack(AUDIOCRAFT, seed=0)
    other = build_stack(AUDIOCRAFT, seed=1)
    window = torch.hann_window(512)  # torchaudio Spectrogram's window: periodic Hann of n_fft (2 ** 9)
    report = load_peer_weights(other.provider, melody_checkpoint(stack, window))
    assert report.checked == ["conditioners.melody.chroma.spec.window"] and not report.unexpected
    assert "buffers checked equal" in str(report)
    assert torch.equal(other.provider.conditioners["mood"].embed.weight, stack.provider.conditioners["mood"].embed.weight)
    with pytest.raises(WeightsError, match="chroma.spec.window: the checkpoint's buffer differs"):
        load_peer_weights(other.provider, melody_checkpoint(stack, torch.hann_window(512, periodic=False)))


def clap_config(clap_dir):
    return {"transformer_lm": {"dim": 8}, "fuser": {"cross": ["genre", "description"]},
            "classifier_free_guidance": {"training_dropout": 1.0, "inference_coef": 3.0},
            "conditioners": {
                "genre": {"model": "lut", "lut": {"n_bins": 16, "dim": 8, "tokenizer": "noop"}},
                "description": {"model": "clap", "clap": {"checkpoint": clap_dir, "dim": 16}}}}


def test_exact_audiocraft_never_drops_clap(tiny_models):
    # AudioCraft 1.3.0: ClassifierFreeGuidanceDropout nullifies only "wav" and "text", and the LM's
    # unconditional branch is ClassifierFreeGuidanceDropout(p=1.0): its CLAP is in both halves.
    items = [{"genre": "jazz", "description": "warm pads"}, {"genre": "rock", "description": "loud guitars"}]
    exact = build_stack(clap_config(tiny_models["clap"]), seed=0, compat="exact")
    assert exact.cfg_dropout.keep_kinds == exact.guidance_keep_kinds == ("joint_embed",)
    conditions = exact.provider.condition(items)
    conditional, unconditional = exact.guidance_inputs(items)
    clap = conditions["description"]
    assert clap.embedding.shape == (2, 1, 8) and clap.mask.all() and clap.embedding.abs().sum() > 0
    peer_null = torch.cat([torch.zeros_like(conditions["genre"].embedding), clap.embedding], dim=1)
    assert torch.equal(conditional.cross_attention_src, torch.cat([conditions["genre"].embedding, clap.embedding], 1))
    assert torch.equal(unconditional.cross_attention_src, peer_null)
    assert unconditional.cross_attention_mask.tolist() == [[False, True]] * 2
    dropped = exact.dropout(exact.provider.to_attributes(items), torch.Generator().manual_seed(0))
    assert all(d.text["genre"] is None and d.joint_embed["description"] is not None for d in dropped)
    # cuecraft's default (and compat "inputs"): CLAP is dropped like every other condition
    inputs = build_stack(clap_config(tiny_models["clap"]), seed=0)
    assert inputs.cfg_dropout.keep_kinds == inputs.guidance_keep_kinds == ()
    _, null = inputs.guidance_inputs(items)
    assert torch.count_nonzero(null.cross_attention_src) == 0 and not null.cross_attention_mask.any()
    dropped = inputs.dropout(inputs.provider.to_attributes(items), torch.Generator().manual_seed(0))
    assert all(d.joint_embed["description"] is None for d in dropped)


def test_cfg_keep_kinds_are_checked():
    with pytest.raises(ConfigError, match="keep_kinds: 'clap' is not an attribute kind"):
        ClassifierFreeGuidanceDropout(0.5, keep_kinds=["clap"])
    with pytest.raises(ConfigError, match="dropout.cfg_keep_kinds: 'clap' is not an attribute kind"):
        build_stack({"cond_dim": 4, "dropout": {"cfg_keep_kinds": ["clap"]}, "conditioners": [
            {"id": "bpm", "type": "number", "roles": ["global"], "config": {"max_val": 200}}]})
