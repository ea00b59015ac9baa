"""A peer's config gives a peer-trained checkpoint the inputs it was trained on (text and labels).

The expected numbers are computed here from the peers' formulas (stable-audio-tools 0.0.19's
T5Conditioner and ListConditioner, AudioCraft 1.3.0's NoopTokenizer and WhiteSpaceTokenizer),
with transformers and torch only: no peer package is needed.
"""

import hashlib
import sys
import types

import pytest
import torch
from transformers import AutoTokenizer, T5EncoderModel

from cuecraft.conditioners import LUTConditioner
from cuecraft.conditioners.lut import ListConditioner
from cuecraft.config import build_stack
from cuecraft.errors import ConditioningInputError

TEXTS = ["fast techno with deep bass", "", "slow piano"]


def sat_config(t5_dir, **t5):
    return {"model": {"conditioning": {"cond_dim": 8, "configs": [
        {"id": "prompt", "type": "t5", "config": {"t5_model_name": t5_dir, "max_length": 12, **t5}},
        {"id": "genre", "type": "list", "config": {"options": ["techno", "jazz"]}},
        {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 512}},
    ]}, "diffusion": {"cross_attention_cond_ids": ["prompt", "genre", "seconds_total"],
                      "global_cond_ids": ["seconds_total"]}}}


def sat_t5(directory, proj, texts, dtype):
    """stable-audio-tools' T5Conditioner.forward: padding to max_length, the encoder in ``dtype``
    (float16 on every device), ``.float()``, proj_out, times the attention mask."""
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = T5EncoderModel.from_pretrained(directory).eval().to(dtype)
    encoded = tokenizer(texts, truncation=True, max_length=12, padding="max_length", return_tensors="pt")
    mask = encoded["attention_mask"].bool()
    with torch.no_grad():
        hidden = model(input_ids=encoded["input_ids"], attention_mask=mask)["last_hidden_state"]
        embedding = proj(hidden.float()) * mask.unsqueeze(-1).float()
    return embedding, mask


def test_sat_t5_pads_to_max_length_and_embeds_the_empty_prompt(tiny_models):
    stack = build_stack(sat_config(tiny_models["t5"]), seed=0)
    t5 = stack.provider.conditioners["prompt"].eval()
    assert (t5.padding, t5.empty_text, t5.encoder_dtype) == ("max_length", "embed", "float32")
    embedding, mask = t5.condition(TEXTS)
    expected, expected_mask = sat_t5(tiny_models["t5"], t5.proj_out, TEXTS, torch.float32)
    assert embedding.shape == (3, 12, 8) and torch.equal(mask, expected_mask)
    assert mask[1].tolist() == [True] + [False] * 11  # "" is "</s>", one real token
    assert embedding[1, 0].abs().sum() > 0
    torch.testing.assert_close(embedding, expected, rtol=1e-5, atol=1e-6)
    # cuecraft's own default: the batch's longest prompt, and "" masked whole
    own = build_stack({"cond_dim": 8, "conditioners": [{"id": "prompt", "type": "t5", "roles": ["cross"],
                                                        "config": {"t5_model_name": tiny_models["t5"]}}]})
    own_embedding, own_mask = own.provider.conditioners["prompt"].eval().condition(TEXTS)
    assert own_embedding.shape[1] == 6 and not own_mask[1].any()  # "fast techno with deep bass </s>"


def test_sat_exact_runs_t5_in_float16_on_cpu_bit_for_bit(tiny_models):
    stack = build_stack(sat_config(tiny_models["t5"]), seed=0, compat="exact")
    t5 = stack.provider.conditioners["prompt"].eval()
    assert t5.encoder_dtype == "float16" and t5._lru is None  # no re-layout by a cache
    assert next(t5.encoder.parameters()).dtype == torch.float16
    stack.provider.to(torch.float32)  # a model-wide cast keeps the encoder in float16
    assert next(t5.encoder.parameters()).dtype == torch.float16
    embedding, mask = t5.condition(TEXTS)
    expected, expected_mask = sat_t5(tiny_models["t5"], t5.proj_out, TEXTS, torch.float16)
    assert embedding.dtype == torch.float32 and torch.equal(mask, expected_mask)
    assert torch.equal(embedding, expected)
    float32, _ = sat_t5(tiny_models["t5"], t5.proj_out, TEXTS, torch.float32)
    relative = ((embedding - float32).norm() / float32.norm()).item()
    assert 1e-5 < relative < 1e-2  # float16 rounding: what "exact" adds over the default


def test_lru_encodes_at_the_padded_layout(tiny_models):
    stack = build_stack(sat_config(tiny_models["t5"]), seed=0)
    t5 = stack.provider.conditioners["prompt"].eval()
    with torch.no_grad():
        t5.condition(["slow piano"])  # cached alone, at max_length positions
        cached, _ = t5.condition(TEXTS)
        assert t5._lru.hits == 1
        t5.clear_cache()
        fresh, _ = t5.condition(TEXTS)
    torch.testing.assert_close(cached, fresh, rtol=0, atol=1e-6)


def test_sat_list_none_takes_the_learned_row_0():
    peer = ListConditioner(output_dim=4, options=["techno", "jazz"], missing="row0")
    embedding, mask = peer.condition(["jazz", None])
    table = peer.embedder.weight  # peer: options.index(x) + 1 if x in options else 0, mask ones
    assert torch.equal(embedding[:, 0], torch.stack([table[2], table[0]])) and mask.all()
    with pytest.raises(ConditioningInputError, match="unknown label 'jaz'"):
        peer.tokenize(["jaz"])  # default: a typo is an error, not the "no label" row
    exact = ListConditioner(output_dim=4, options=["techno", "jazz"], missing="row0", unknown="row0")
    assert exact.tokenize(["jaz"]).values.tolist() == [[0]]
    own = ListConditioner(output_dim=4, options=["techno", "jazz"])
    assert own.condition([None]).mask.tolist() == [[False]]


def test_sat_reader_sets_list_options(tiny_models):
    inputs = build_stack(sat_config(tiny_models["t5"]), seed=0).provider.conditioners["genre"]
    exact = build_stack(sat_config(tiny_models["t5"]), seed=0, compat="exact").provider.conditioners["genre"]
    assert (inputs.missing, inputs.unknown) == ("row0", "error")
    assert (exact.missing, exact.unknown) == ("row0", "row0")


def hash_trick(word, n_bins):  # AudioCraft's: int(sha256(word).hexdigest(), 16) % vocab_size
    return int(hashlib.sha256(word.encode("utf-8")).hexdigest(), 16) % n_bins


def test_audiocraft_noop_lut_hashes_the_empty_label():
    peer = LUTConditioner(n_bins=64, dim=4, output_dim=4, tokenizer="noop", empty_text="embed")
    tokens = peer.tokenize(["", "Techno", None])
    assert tokens.values[:, 0].tolist() == [hash_trick("", 64), hash_trick("Techno", 64), 0]
    assert tokens.mask.tolist() == [[True], [True], [False]]
    own = LUTConditioner(n_bins=64, dim=4, output_dim=4, tokenizer="noop")
    assert own.tokenize([""]).mask.tolist() == [[False]]


class FakeToken:
    def __init__(self, text, lemma, stop):
        self.text, self.lemma_, self.is_stop = text, lemma, stop


def fake_spacy(lemmas, stops):
    """A stand-in for spaCy: load(name) -> nlp(text) -> tokens split on spaces and punctuation."""
    module = types.ModuleType("spacy")
    loaded = []

    def load(name):
        loaded.append(name)

        def nlp(text):
            words = text.replace(",", " , ").replace("!", " ! ").split()
            return [FakeToken(w, lemmas.get(w, w), w in stops) for w in words]
        return nlp

    module.load = load
    module.loaded = loaded
    return module


def test_lemmas_follow_audiocraft_whitespace_tokenizer(monkeypatch):
    from cuecraft.conditioners import lut

    spacy = fake_spacy({"Drums": "drum", "playing": "play"}, stops={"with", "the"})
    monkeypatch.setitem(sys.modules, "spacy", spacy)
    lut._spacy_pipeline.cache_clear()
    try:
        conditioner = LUTConditioner(n_bins=128, dim=4, output_dim=4, lemmas=True)
        tokens = conditioner.tokenize(["Drums playing with the bass, loud!"])
        # AudioCraft: no stop words, no "?:!.,;", each token's lemma, not lower-cased
        expected = [hash_trick(w, 128) for w in ("drum", "play", "bass", "loud")]
        assert tokens.values[0].tolist() == expected and tokens.mask.all()
        assert spacy.loaded == ["en_core_web_sm"]
        plain = LUTConditioner(n_bins=128, dim=4, output_dim=4).tokenize(["Drums playing"])
        assert plain.values[0].tolist() == [hash_trick("drums", 128), hash_trick("playing", 128)]
    finally:
        lut._spacy_pipeline.cache_clear()


def test_audiocraft_reader_warns_without_spacy():
    config = {"transformer_lm": {"dim": 8}, "fuser": {"cross": ["genre", "tags"]},
              "conditioners": {"genre": {"model": "lut", "lut": {"n_bins": 16, "dim": 8, "tokenizer": "noop"}},
                               "tags": {"model": "lut", "lut": {"n_bins": 16, "dim": 8, "tokenizer": "whitespace"}}}}
    with pytest.warns(UserWarning, match="tags: AudioCraft's whitespace tokenizer uses spaCy"):
        stack = build_stack(config, seed=0)
    assert stack.provider.conditioners["genre"].empty_text == "embed"
    assert stack.provider.conditioners["tags"].lemmas is False  # spaCy is not installed here
