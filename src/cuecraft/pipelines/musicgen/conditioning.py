"""MusicGen's conditions, made by cuecraft: T5 text and chroma melody, through the provider and fuser.

Notation: B items (prompts), T text tokens, C chroma frames (chroma_length), D the decoder width.

- ``prompt``: cuecraft's ``T5Conditioner`` over the model's own T5 encoder and tokenizer, padded
  to the batch's longest text, projected by the model's ``enc_to_dec_proj``; padding and the
  null text are zeros (masked), as transformers' MusicGen and AudioCraft's T5Conditioner make them.
- ``melody`` (MusicGen-melody): cuecraft's ``ChromaStemConditioner`` with AudioCraft's chroma
  (reflect padding, normalised power, argmax one-hot, a silent frame a C), the settings of
  transformers' MusicgenMelodyFeatureExtractor (no stem separation by default), looped or cut to
  C frames as AudioCraft does, projected by ``audio_enc_to_dec_proj``. A missing melody (and the
  melody of the unconditional branch) is the chroma of silence, a one-hot C on every frame,
  unmasked: what both peers feed MusicGen-melody (``null_melody: silence``).
- The fuser routes ``prompt`` to ``cross`` (MusicGen: the decoder's cross-attention source
  [B, T, D] and its mask) or ``melody`` then ``prompt`` to ``prepend`` (MusicGen-melody: a prefix
  [B, C + T, D] in front of the audio tokens; the model attends every prefix position, its padding
  zeros included, as it was trained, so the prefix mask is not passed).

Each guidance branch (conditional, group, unconditional or negative) is a list of attributes
made by ``ConditioningAttributes.with_nulls`` / ``group_attributes``, the one null path. Batched
guidance tokenizes all branches together (one padded length, as AudioCraft's batched CFG) and
runs each branch's encoders on its own rows (so the conditional rows are computed exactly as
transformers computes them); two-step guidance tokenizes each branch on its own (AudioCraft's
``two_step_cfg``: each branch keeps its own padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cuecraft.attributes import ConditioningAttributes, WavCondition
from cuecraft.conditioners.chroma import ChromaStemConditioner
from cuecraft.conditioners.text import T5Conditioner, TransformerTextConditioner
from cuecraft.fuser import ConditionFuser
from cuecraft.guidance_groups import group_attributes
from cuecraft.pipelines.musicgen.spec import ChromaSettings, MusicGenSpec
from cuecraft.provider import ConditionProvider

TEXT_GROUP = {"text": ["prompt"]}  # the group of --guidance-text: the prompt


@dataclass(frozen=True)
class DecoderInputs:
    """What the decoder reads for M rows: MusicGen's cross-attention source [M, T, D] and mask
    bool [M, T], or MusicGen-melody's prefix [M, C + T, D]."""

    cross: torch.Tensor | None = None
    cross_mask: torch.Tensor | None = None
    prefix: torch.Tensor | None = None

    @property
    def rows(self) -> int:
        return (self.cross if self.cross is not None else self.prefix).shape[0]  # type: ignore[union-attr]

    def repeat(self, count: int) -> DecoderInputs:
        """Each row ``count`` times in a row (candidates of one prompt side by side)."""
        def each(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.repeat_interleave(count, dim=0)
        return DecoderInputs(each(self.cross), each(self.cross_mask), each(self.prefix))

    @staticmethod
    def cat(parts: Sequence[DecoderInputs]) -> DecoderInputs:
        """Rows of ``parts`` one after the other (the branches of batched guidance)."""
        def joined(name: str) -> torch.Tensor | None:
            values = [getattr(p, name) for p in parts]
            return None if values[0] is None else torch.cat(values)
        return DecoderInputs(joined("cross"), joined("cross_mask"), joined("prefix"))


def text_conditioner(encoder: nn.Module, tokenizer: Any, output_dim: int, projection: nn.Module | None,
                     max_length: int) -> T5Conditioner:
    """cuecraft's T5 conditioner over an already loaded T5 encoder and its tokenizer, with
    ``projection`` (a model's ``enc_to_dec_proj``; None: the identity) as its output projection."""
    conditioner = T5Conditioner.__new__(T5Conditioner)  # T5Conditioner.__init__ loads by name
    TransformerTextConditioner.__init__(conditioner, encoder, tokenizer, int(encoder.config.d_model),
                                        output_dim if projection is not None else None, max_length=max_length,
                                        pooled=False, padding="longest", cache_size=0)
    conditioner.proj_out = projection if projection is not None else nn.Identity()
    return conditioner.eval()


def melody_conditioner(chroma: ChromaSettings, output_dim: int, projection: nn.Module | None,
                       stems: str = "none", stems_model: str | None = None) -> ChromaStemConditioner:
    """cuecraft's chroma conditioner with MusicGen-melody's settings and ``projection`` (a model's
    ``audio_enc_to_dec_proj``; None: the identity)."""
    conditioner = ChromaStemConditioner(
        output_dim if projection is not None else chroma.n_chroma, sample_rate=chroma.sample_rate,
        n_chroma=chroma.n_chroma, radix2_exp=chroma.radix2_exp, duration=chroma.duration, match_len_on_eval=True,
        stems=stems, stems_model=stems_model, argmax=True, pad_mode="reflect", normalized=True, silent_frames="c",
        pad_to_duration=False, null_melody="silence")
    assert conditioner.chroma_len == chroma.chroma_length, (conditioner.chroma_len, chroma)
    if projection is not None:
        conditioner.proj_out = projection
    return conditioner.eval()


def _rows(tokens: Any, rows: slice) -> Any:
    """The tokens (a NamedTuple of [B, ...] tensors) of ``rows``."""
    return type(tokens)(*(f[rows] if isinstance(f, torch.Tensor) and f.dim() > 0 else f for f in tokens))


class MusicGenConditioning:
    """The provider and fuser of a MusicGen model (see the module). Components are the model's own
    (shared, not copied): its T5 encoder, ``enc_to_dec_proj`` and ``audio_enc_to_dec_proj``."""

    def __init__(self, model: Any, tokenizer: Any, spec: MusicGenSpec, *, melody_stems: str = "none",
                 melody_stems_model: str | None = None):
        self.spec = spec
        width = int(model.decoder.config.hidden_size)
        conditioners: dict[str, Any] = {"prompt": text_conditioner(
            model.text_encoder, tokenizer, width, getattr(model, "enc_to_dec_proj", None), spec.max_text_tokens)}
        if spec.chroma is not None:
            projection = getattr(model, "audio_enc_to_dec_proj", None)
            conditioners["melody"] = melody_conditioner(spec.chroma, width, projection, melody_stems,
                                                        melody_stems_model)
            routing = {"prepend": ["melody", "prompt"]}  # the peers' order: the melody first
        else:
            routing = {"cross": ["prompt"]}
        self.provider = ConditionProvider(conditioners)
        self.fuser = ConditionFuser(routing)
        self.fuser.check_shapes({name: (c.output_length, c.output_dim) for name, c in conditioners.items()})

    def text_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text as the T5 conditioner reads it (its end token included)."""
        tokenizer = self.provider.conditioners["prompt"].tokenizer
        return [len(ids) for ids in tokenizer(list(texts))["input_ids"]]

    def branches(self, prompts: Sequence[str | None], melodies: Sequence[WavCondition | None],
                 negatives: Sequence[str | None] | None,
                 names: Sequence[str]) -> dict[str, list[ConditioningAttributes]]:
        """Attributes of each branch in ``names`` (conditional, group, unconditional), B items each.
        The unconditional branch holds the negative prompts where given (every other condition null)."""
        metadata = [{"prompt": p, **({"melody": m} if self.spec.melody else {})} for p, m in zip(prompts, melodies)]
        conditional = self.provider.to_attributes(metadata)
        out = {"conditional": conditional}
        if "group" in names:
            out["group"] = group_attributes(conditional, TEXT_GROUP, "without")
        if "unconditional" in names:
            nulls = [item.with_nulls() for item in conditional]
            if negatives is not None:
                nulls = self.provider.to_attributes([{**{k: None for k in m}, "prompt": n}
                                                     for m, n in zip(metadata, negatives)])
            out["unconditional"] = nulls
        return out

    @torch.no_grad()
    def decoder_inputs(self, branches: dict[str, list[ConditioningAttributes]], *,
                       together: bool = True) -> dict[str, DecoderInputs]:
        """Each branch's decoder inputs [B, ...]. ``together``: tokenized as one batch (one padded
        length for all branches, batched guidance); else each on its own (two-step guidance)."""
        names = list(branches)
        if together:
            tokens = self.provider.tokenize([item for name in names for item in branches[name]])
            size = len(branches[names[0]])
            split = {name: {key: _rows(value, slice(i * size, (i + 1) * size)) for key, value in tokens.items()}
                     for i, name in enumerate(names)}
        else:
            split = {name: self.provider.tokenize(branches[name]) for name in names}
        return {name: self._fuse(self.provider(split[name])) for name in names}

    def _fuse(self, conditions: dict[str, Any]) -> DecoderInputs:
        fused = self.fuser(conditions)
        if self.spec.melody:
            return DecoderInputs(prefix=fused.prepend_cond)
        return DecoderInputs(cross=fused.cross_attention_src, cross_mask=fused.cross_attention_mask)
