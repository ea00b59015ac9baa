"""The transformers-free BERT encoder and tokenizer against transformers' on the shipped MiniLM."""

from __future__ import annotations

import pytest
import torch

from cuecraft.conditioners.bert import load_bert
from cuecraft.conditioners.text import default_sentence_model

TEXTS = ["calm piano", "", "An UPBEAT électric piano groove, 128 bpm!!", "word " * 80]


@pytest.fixture(scope="module")
def both():
    transformers = pytest.importorskip("transformers")
    folder = default_sentence_model()
    return load_bert(folder), (transformers.AutoModel.from_pretrained(str(folder)).eval(),
                               transformers.AutoTokenizer.from_pretrained(str(folder)))


@pytest.mark.parametrize("options", [{}, {"padding": "longest", "truncation": True, "max_length": 64},
                                     {"padding": "max_length", "truncation": True, "max_length": 16}])
def test_tokenizer_gives_transformers_ids_and_masks(both, options):
    (_, ours), (_, theirs) = both
    a, b = ours(TEXTS, **options), theirs(TEXTS, **options)
    assert a["input_ids"] == b["input_ids"] and a["attention_mask"] == b["attention_mask"]
    assert ours("")["input_ids"] == theirs("")["input_ids"] == [101, 102]


def test_encoder_gives_transformers_hidden_states(both):
    (encoder, tokenizer), (model, _) = both
    batch = tokenizer(TEXTS, padding="longest", truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        ours = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        theirs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    attended = batch["attention_mask"].bool()
    assert ours.shape == theirs.shape == (4, 64, 384)
    torch.testing.assert_close(ours[attended], theirs[attended], atol=2e-5, rtol=0)


def test_other_folders_are_left_to_transformers(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    assert load_bert(tmp_path) is None
