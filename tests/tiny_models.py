"""Tiny random transformers models written to disk, built in code with fixed seeds.

Nothing comes from a hub: tokenizers are word-level vocabularies built here, so the models can
be loaded by cuecraft's conditioners from a local directory, exactly as real ones would be.
"""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = ("fast slow techno piano ballad with synths synthesizers solo quick deep house drums bass "
         "a the and of warm bright dark ambient jazz guitar song music loud soft").split()


def word_tokenizer(specials: dict[str, int], template: str, **names: str):
    """A fast word-level tokenizer over WORDS plus ``specials``; ``template`` is the single-sequence
    post-processing template (e.g. "$A </s>")."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = dict(specials)
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=names["unk_token"]))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    used = [t for t in specials if t in template]
    tokenizer.post_processor = processors.TemplateProcessing(single=template, special_tokens=[(t, vocab[t]) for t in used])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=64, **names), len(vocab)


def tiny_t5(directory: Path, seed: int = 0) -> Path:
    """A 2-layer T5 encoder (d_model 32) and its tokenizer in ``directory``."""
    from transformers import T5Config, T5EncoderModel

    tokenizer, vocab_size = word_tokenizer({"<pad>": 0, "</s>": 1, "<unk>": 2}, "$A </s>",
                                           pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(seed)
    config = T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                      pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.1)
    T5EncoderModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def tiny_clap(directory: Path, seed: int = 0) -> Path:
    """A tiny ClapModel (text width 32, projection 16, 8 kHz audio, 1 s windows) and processor."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizerFast

    fast, vocab_size = word_tokenizer({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}, "<s> $A </s>",
                                      bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    tokenizer = RobertaTokenizerFast(tokenizer_object=fast.backend_tokenizer, bos_token="<s>", pad_token="<pad>",
                                     eos_token="</s>", unk_token="<unk>", cls_token="<s>", sep_token="</s>",
                                     mask_token="<unk>", model_max_length=64)
    torch.manual_seed(seed)
    config = ClapConfig(
        text_config=dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=37, max_position_embeddings=80, pad_token_id=1, projection_dim=16),
        audio_config=dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=[2, 2], depths=[1, 1],
                          patch_embeds_hidden_size=8, spec_size=64, num_mel_bins=16, window_size=4,
                          patch_stride=(4, 4), patch_size=4, projection_dim=16),
        projection_dim=16,
    )
    extractor = ClapFeatureExtractor(feature_size=16, sampling_rate=8000, hop_length=80, fft_window_size=512,
                                     max_length_s=1, truncation="rand_trunc", frequency_min=0, frequency_max=4000)
    ClapModel(config).save_pretrained(directory)
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(directory)
    return directory
