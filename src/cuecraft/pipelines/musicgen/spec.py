"""What a MusicGen model is, read from its configuration alone (before any weight is loaded).

Checks of a generation call need only this: the kind of model, its rates and its limits. A
folder is read into a ``MusicGenSpec`` in milliseconds, so bad input is reported before the
weights (gigabytes) are read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cuecraft.errors import PretrainedModelNotFoundError

KINDS = ("musicgen", "musicgen_melody")  # transformers' model_type of each supported model


@dataclass(frozen=True)
class ChromaSettings:
    """MusicGen-melody's chroma: what its feature extractor (and AudioCraft's ChromaStemConditioner) computes.

    sample_rate: Hz the melody is resampled to. n_chroma: bins per octave (12). radix2_exp:
    n_fft = 2**radix2_exp, hop n_fft / 4. chroma_length: frames the melody is looped or cut to
    (235 = 30 s at 32 kHz with hop 4096).
    """

    sample_rate: int = 32000
    n_chroma: int = 12
    radix2_exp: int = 14
    chroma_length: int = 235

    @property
    def hop_length(self) -> int:
        return 2 ** self.radix2_exp // 4

    @property
    def duration(self) -> float:
        """The melody's length in seconds that gives ``chroma_length`` frames (1 + samples // hop)."""
        return (self.chroma_length - 1) * self.hop_length / self.sample_rate


@dataclass(frozen=True)
class MusicGenSpec:
    """A MusicGen model's kind, rates and limits.

    kind: "musicgen" (text, cross-attention) or "musicgen_melody" (text and melody, prepended).
    sample_rate: EnCodec's rate (Hz). hop_length: samples per EnCodec frame. num_codebooks: K.
    vocab_size: codes per codebook. max_positions: the decoder's position embeddings (the
    prefix of MusicGen-melody, the start step, the frames and K - 1 steps of delay share them).
    max_text_tokens: the tokenizer's limit (its model_max_length). chroma: MusicGen-melody's
    chroma settings (None for MusicGen).
    """

    kind: str
    sample_rate: int
    hop_length: int
    num_codebooks: int
    vocab_size: int
    max_positions: int
    max_text_tokens: int
    chroma: ChromaSettings | None = None

    @property
    def melody(self) -> bool:
        return self.chroma is not None

    @property
    def frame_rate(self) -> float:
        """EnCodec frames per second (50 for MusicGen's 32 kHz EnCodec)."""
        return self.sample_rate / self.hop_length

    def frames_for(self, samples: int) -> int:
        """EnCodec frames that cover ``samples``."""
        return math.ceil(samples / self.hop_length)

    def positions(self, frames: int, text_tokens: int) -> int:
        """Decoder positions a generation of ``frames`` frames (audio prompt included) reads:
        the prefix (melody: chroma_length + text tokens), the start step and K - 1 delay steps."""
        prefix = self.chroma.chroma_length + text_tokens if self.chroma is not None else 0
        return prefix + frames + self.num_codebooks - 1

    def max_frames(self, text_tokens: int) -> int:
        """The most frames (an audio prompt's included) the position embeddings allow."""
        return max(0, self.max_positions - self.positions(0, text_tokens))


def text_limit(tokenizer: Any) -> int:
    """The tokenizer's model_max_length (512 for T5), or 512 where it declares none."""
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < 1_000_000 else 512


def spec_from_config(config: Any, tokenizer: Any, chroma: ChromaSettings | None, where: str) -> MusicGenSpec:
    """The spec of a transformers MusicgenConfig / MusicgenMelodyConfig (``chroma`` for melody models)."""
    kind = getattr(config, "model_type", None)
    decoder, codec = getattr(config, "decoder", None), getattr(config, "audio_encoder", None)
    problems = []
    if kind not in KINDS:
        problems.append(f"its config.json has model_type {kind!r}; cuecraft musicgen runs {', '.join(KINDS)}")
    elif getattr(decoder, "audio_channels", 1) != 1:
        problems.append("it is a stereo model (decoder.audio_channels 2); cuecraft musicgen runs mono models "
                        "(musicgen-small, -medium, -large, -melody)")
    if problems:
        raise PretrainedModelNotFoundError(f"MusicGen model {where}: " + "; ".join(problems))
    hop = int(math.prod(codec.upsampling_ratios))
    return MusicGenSpec(kind=kind, sample_rate=int(codec.sampling_rate), hop_length=hop,
                        num_codebooks=int(decoder.num_codebooks), vocab_size=int(decoder.vocab_size),
                        max_positions=int(decoder.max_position_embeddings), max_text_tokens=text_limit(tokenizer),
                        chroma=chroma if kind == "musicgen_melody" else None)
