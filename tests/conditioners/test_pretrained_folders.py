"""A byte-level ByT5 folder holds no vocabulary file by design and is a complete tokenizer folder (issue 23)."""

from __future__ import annotations

import pytest

from cuecraft.conditioners.pretrained import check_model_folder
from cuecraft.errors import PretrainedModelNotFoundError


def test_a_byt5_tokenizer_folder_is_complete_without_a_vocabulary_file(tmp_path):
    transformers = pytest.importorskip("transformers")
    transformers.ByT5Tokenizer().save_pretrained(tmp_path / "byt5")
    check_model_folder(tmp_path / "byt5", "t5", tokenizer=True)  # no error: bytes need no vocabulary
    loaded = transformers.AutoTokenizer.from_pretrained(tmp_path / "byt5")
    assert loaded("hé")["input_ids"][:3] == [107, 198, 172]  # UTF-8 bytes + 3


def test_a_folder_with_neither_a_vocabulary_nor_a_byte_tokenizer_is_still_incomplete(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "tokenizer_config.json").write_text('{"tokenizer_class": "T5Tokenizer"}')
    with pytest.raises(PretrainedModelNotFoundError, match="no tokenizer file"):
        check_model_folder(tmp_path / "t", "t5", tokenizer=True)
    (tmp_path / "t" / "tokenizer_config.json").write_text("[" * 100_000)  # unreadable: not a byte tokenizer
    with pytest.raises(PretrainedModelNotFoundError, match="no tokenizer file"):
        check_model_folder(tmp_path / "t", "t5", tokenizer=True)


def test_loading_turns_progress_bars_off_for_the_load_only(tmp_path):
    from transformers.utils import logging as transformers_logging

    from cuecraft.conditioners.pretrained import load_pretrained

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    seen = []

    def load(source, **kwargs):
        seen.append(transformers_logging.is_progress_bar_enabled())
        return "model"

    for enabled in (True, False):
        (transformers_logging.enable_progress_bar if enabled else transformers_logging.disable_progress_bar)()
        assert load_pretrained(load, str(tmp_path), what="encoder") == "model"
        assert transformers_logging.is_progress_bar_enabled() is enabled  # the caller's state, restored
    transformers_logging.enable_progress_bar()
    assert seen == [False, False]
