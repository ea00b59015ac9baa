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


def tiny_clap_parts(projection_dim: int, seed: int = 0) -> tuple:
    """(ClapModel, tokenizer, feature extractor): text width 32, 8 kHz audio, 1 s windows, a
    byte-level BPE Roberta tokenizer (see ``bpe_roberta_tokenizer``), random weights from ``seed``."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    tokenizer = bpe_roberta_tokenizer()
    torch.manual_seed(seed)
    clap = ClapModel(ClapConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=37, max_position_embeddings=80, pad_token_id=1,
                         projection_dim=projection_dim),
        audio_config=dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=[2, 2], depths=[1, 1],
                          patch_embeds_hidden_size=8, spec_size=64, num_mel_bins=16, window_size=4,
                          patch_stride=(4, 4), patch_size=4, projection_dim=projection_dim),
        projection_dim=projection_dim,
    )).eval()
    extractor = ClapFeatureExtractor(feature_size=16, sampling_rate=8000, hop_length=80, fft_window_size=512,
                                     max_length_s=1, truncation="rand_trunc", frequency_min=0, frequency_max=4000)
    return clap, tokenizer, extractor


def tiny_clap(directory: Path, seed: int = 0) -> Path:
    """A tiny ClapModel (projection 16; see ``tiny_clap_parts``) and its processor in ``directory``."""
    from transformers import ClapProcessor

    clap, tokenizer, extractor = tiny_clap_parts(16, seed)
    clap.save_pretrained(directory)
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def bpe_roberta_tokenizer(model_max_length: int = 64):
    """A byte-level BPE Roberta tokenizer (CLAP's kind) trained here on WORDS; it survives
    save_pretrained / from_pretrained unchanged on transformers 4 and 5. (A word-level tokenizer
    saved as a Roberta one does not: transformers 5 rebuilds it as BPE without merges on load.)"""
    import tempfile

    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(WORDS)], vocab_size=400, min_frequency=1, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    with tempfile.TemporaryDirectory() as directory:
        bpe.save_model(directory)  # vocab.json + merges.txt
        return RobertaTokenizerFast.from_pretrained(directory, model_max_length=model_max_length)


def tiny_musicldm_components(seed: int = 0) -> dict:
    """In-memory MusicLDM components with random weights, sized as diffusers' own fast tests size
    them: a UNet with blocks (32, 64) and a 32-wide CLAP class embedding, a VAE with blocks (32, 64)
    (scale factor 2, 4 latent channels), a CLAP model (text width 32, projection 32, 8 kHz audio,
    1 s windows) with a byte-level BPE Roberta tokenizer, a DDIM scheduler, and an 8-mel HiFi-GAN at
    16 kHz that upsamples 4x (4 samples per mel frame), initialised wider than transformers' default
    so that its waveforms have an audible amplitude and parity checks compare real numbers."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=(32, 64), class_embed_type="simple_projection",
        projection_class_embeddings_input_dim=32, class_embeddings_concat=True,
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    torch.manual_seed(seed)
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=1, out_channels=1, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2)
    clap, tokenizer, extractor = tiny_clap_parts(32, seed)
    torch.manual_seed(seed)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=8, sampling_rate=16000, upsample_initial_channel=16, upsample_rates=[2, 2],
        upsample_kernel_sizes=[4, 4], resblock_kernel_sizes=[3, 7], resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
        normalize_before=False, initializer_range=0.2,  # waveforms of realistic amplitude (std ~0.1)
    )).eval()
    return {"vae": vae.eval(), "text_encoder": clap, "tokenizer": tokenizer, "feature_extractor": extractor,
            "unet": unet.eval(), "scheduler": scheduler, "vocoder": vocoder}


MUSICLDM_LAYOUT = {  # model_index.json of the published MusicLDM weights (ucsd-reach/musicldm)
    "_class_name": "MusicLDMPipeline",
    "feature_extractor": ["transformers", "ClapFeatureExtractor"],
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "ClapModel"],
    "tokenizer": ["transformers", "RobertaTokenizerFast"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
    "vocoder": ["transformers", "SpeechT5HifiGan"],
}


def save_tiny_musicldm(directory: Path, seed: int = 0) -> Path:
    """``tiny_musicldm_components`` saved in the diffusers layout: model_index.json and one
    sub-directory per component (safetensors weights)."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    for name, component in tiny_musicldm_components(seed).items():
        component.save_pretrained(directory / name)
    (directory / "model_index.json").write_text(json.dumps(MUSICLDM_LAYOUT, indent=2))
    return directory
