"""Tiny random MusicGen and MusicGen-melody models, built in code with fixed seeds (no hub).

Both share the shapes of the real ones at a fraction of their size: a 2-layer T5 encoder of width
24 (so ``enc_to_dec_proj`` exists, as in the real models), an EnCodec at 3,200 Hz with a hop of 64
samples (50 frames per second, MusicGen's frame rate) and 4 codebooks of 64 codes, and a 2-layer
decoder of width 32 with 256 positions (EnCodec's codebooks random too: transformers initialises
them to zeros). The melody model's chroma runs at 3,200 Hz with n_fft 512
(25 frames per second) over a 1-second chroma_length of 26 frames. Weights are drawn wider than
transformers' default initialisation so that the conditions move the logits visibly.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.tiny_models import word_tokenizer

SAMPLE_RATE = 3200
HOP = 64  # EnCodec samples per frame: 50 frames per second
CODEBOOKS, CODES = 4, 64
CHROMA = dict(sample_rate=3200, n_chroma=12, radix2_exp=9, chroma_length=26)  # n_fft 512, hop 128, 1 s
FEATURE_EXTRACTOR = {"feature_extractor_type": "MusicgenMelodyFeatureExtractor", "feature_size": 12,
                     "sampling_rate": 3200, "hop_length": 128, "n_fft": 512, "num_chroma": 12, "chunk_length": 1,
                     "padding_value": 0.0, "return_attention_mask": False, "stem_indices": [3, 2]}


def t5_tokenizer():
    tokenizer, vocab_size = word_tokenizer({"<pad>": 0, "</s>": 1, "<unk>": 2}, "$A </s>", pad_token="<pad>",
                                           eos_token="</s>", unk_token="<unk>")
    return tokenizer, vocab_size


def _widen(module: torch.nn.Module, std: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.dim() >= 2 and "norm" not in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)


def tiny_parts(seed: int = 0):
    """(T5 encoder, EnCodec, vocab size of the tokenizer) with random weights from ``seed``."""
    from transformers import EncodecConfig, EncodecModel, T5Config, T5EncoderModel

    tokenizer, vocab_size = t5_tokenizer()
    torch.manual_seed(seed)
    t5 = T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=24, d_kv=8, d_ff=48, num_layers=2, num_heads=3,
                                 pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    codec = EncodecModel(EncodecConfig(target_bandwidths=[1.2], sampling_rate=SAMPLE_RATE, hidden_size=16,
                                       num_filters=4, upsampling_ratios=[8, 8], codebook_size=CODES,
                                       num_lstm_layers=1, audio_channels=1))
    generator = torch.Generator().manual_seed(seed + 10)
    with torch.no_grad():  # transformers initialises the codebooks to zeros: every code would decode alike
        frames = codec.encoder(torch.randn(1, 1, 64 * HOP, generator=generator))[0].T  # [64, 16]
        centre, spread = frames.mean(dim=0), frames.std(dim=0)  # codes spread where the encoder's frames lie
        for i, layer in enumerate(codec.quantizer.layers):
            noise = torch.randn(layer.codebook.embed.shape, generator=generator)
            layer.codebook.embed.copy_((centre if i == 0 else 0) + noise * spread * (2 if i == 0 else 0.5))
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
    return t5, codec, tokenizer


def _decoder_settings() -> dict:
    return dict(vocab_size=CODES, max_position_embeddings=256, num_hidden_layers=2, ffn_dim=64, num_attention_heads=4,
                hidden_size=32, num_codebooks=CODEBOOKS, pad_token_id=CODES, bos_token_id=CODES)


def _finish(model, seed: int):
    _widen(model.decoder, 0.3, seed + 1)
    model.generation_config.pad_token_id = CODES
    model.generation_config.decoder_start_token_id = CODES
    return model.eval()


def tiny_musicgen(seed: int = 0):
    """(MusicgenForConditionalGeneration, tokenizer)."""
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM, MusicgenForConditionalGeneration

    t5, codec, tokenizer = tiny_parts(seed)
    decoder = MusicgenForCausalLM(MusicgenDecoderConfig(**_decoder_settings()))
    model = MusicgenForConditionalGeneration(text_encoder=t5, audio_encoder=codec, decoder=decoder)
    _widen(model.enc_to_dec_proj, 0.3, seed + 2)
    return _finish(model, seed), tokenizer


def tiny_musicgen_melody(seed: int = 0):
    """(MusicgenMelodyForConditionalGeneration, tokenizer)."""
    from transformers import (MusicgenMelodyConfig, MusicgenMelodyDecoderConfig, MusicgenMelodyForCausalLM,
                              MusicgenMelodyForConditionalGeneration)

    t5, codec, tokenizer = tiny_parts(seed)
    decoder = MusicgenMelodyForCausalLM(MusicgenMelodyDecoderConfig(**_decoder_settings()))
    config = MusicgenMelodyConfig(text_encoder=t5.config, audio_encoder=codec.config, decoder=decoder.config,
                                  num_chroma=12, chroma_length=CHROMA["chroma_length"])
    model = MusicgenMelodyForConditionalGeneration(config, text_encoder=t5, audio_encoder=codec, decoder=decoder)
    _widen(model.enc_to_dec_proj, 0.3, seed + 2)
    _widen(model.audio_enc_to_dec_proj, 0.3, seed + 3)
    return _finish(model, seed), tokenizer


def save(directory: Path, model, tokenizer) -> Path:
    """``model`` and ``tokenizer`` in transformers' layout (a melody model with its chroma settings)."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if model.config.model_type == "musicgen_melody":
        (directory / "preprocessor_config.json").write_text(json.dumps(FEATURE_EXTRACTOR, indent=2))
    return directory


def melody_wave(seconds: float = 0.6, seed: int = 0) -> torch.Tensor:
    """A melody at SAMPLE_RATE: a few sine notes with a little noise, float32 [T]."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    notes = torch.tensor([261.6, 329.6, 392.0, 523.3])[(t * 4).long() % 4]
    return (0.5 * torch.sin(2 * torch.pi * notes * t) + 0.01 * torch.randn(t.shape, generator=generator)).float()
