"""CLAP score: cosine similarity between the CLAP embeddings of a piece of audio and of its text.

Notation: N (waveform, text) pairs, T samples, W samples of one CLAP window, D CLAP's joint width.

The model is a local transformers ``ClapModel`` directory with its ``ClapProcessor`` (loaded
offline; a hub name is looked up in the Hugging Face cache only). Each waveform is resampled to
the processor's rate and cut into consecutive windows of CLAP's length W (the last one padded as
the feature extractor pads); the audio embedding is the mean of the windows' normalised
``get_audio_features`` re-normalised, so every part of a long waveform counts and no crop is
drawn at random (the extractor's ``rand_trunc`` would draw it from NumPy's global state). The text
embedding is the normalised ``get_text_features``. The score is their dot product, in [-1, 1].
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cuecraft._optional import require
from cuecraft.errors import EvaluationInputError


def _features(output) -> torch.Tensor:
    """get_*_features' result: a tensor (transformers 4) or an output whose pooler_output it is (5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def windows(wav: np.ndarray, window: int) -> list[np.ndarray]:
    """Consecutive ``window``-sample pieces of wav [T] (the last one shorter, never empty)."""
    return [wav[start: start + window] for start in range(0, max(1, len(wav)), window)]


@torch.no_grad()
def clap_audio_embedding(model, feature_extractor, wav: np.ndarray) -> torch.Tensor:
    """Normalised [D] embedding of wav [T] at the extractor's rate: the re-normalised mean over windows."""
    rate = int(feature_extractor.sampling_rate)
    pieces = [np.ascontiguousarray(p, dtype=np.float32) for p in windows(wav, int(feature_extractor.nb_max_samples))]
    inputs = feature_extractor(pieces, sampling_rate=rate, return_tensors="pt")
    arguments = {"input_features": inputs["input_features"]}
    if "is_longer" in inputs:
        arguments["is_longer"] = inputs["is_longer"]
    per_window = F.normalize(_features(model.get_audio_features(**arguments)), dim=-1)  # [windows, D]
    return F.normalize(per_window.mean(dim=0), dim=-1)


@torch.no_grad()
def clap_text_embeddings(model, tokenizer, texts: Sequence[str]) -> torch.Tensor:
    """Normalised [N, D] text embeddings."""
    tokens = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
    return F.normalize(_features(model.get_text_features(input_ids=tokens["input_ids"],
                                                          attention_mask=tokens["attention_mask"])), dim=-1)


def _check(wavs, sample_rate, texts) -> list[np.ndarray]:
    from cuecraft.eval.embedding import mono_waveforms

    if not isinstance(texts, (list, tuple)):
        raise EvaluationInputError(f"texts: expected a list of strings; got {type(texts).__name__}")
    arrays = mono_waveforms(wavs, sample_rate)
    if len(arrays) != len(texts):
        raise EvaluationInputError(f"wavs and texts: {len(arrays)} waveforms and {len(texts)} texts; give one text "
                                   "per waveform")
    for number, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise EvaluationInputError(f"texts[{number}]: expected a non-empty string; got {text!r}")
    return arrays


def clap_score(model_dir: str | os.PathLike[str], wavs: Sequence, sample_rate: int,
               texts: Sequence[str]) -> list[float]:
    """CLAP score of each (waveform [T] at ``sample_rate``, text) pair, in [-1, 1].

    ``model_dir``: a local ClapModel + ClapProcessor directory (or a hub name in the Hugging Face
    cache); a missing one is a PretrainedModelNotFoundError. Needs the ``text`` extra (transformers).
    """
    from cuecraft.audio.resample import resample
    from cuecraft.conditioners.clap import load_clap

    arrays = _check(wavs, sample_rate, texts)
    require("transformers", extra="text", purpose="the CLAP score")
    model, processor = load_clap(os.fspath(model_dir), False, "the CLAP score")
    model.eval()
    extractor = processor.feature_extractor
    rate = int(extractor.sampling_rate)
    if not arrays:
        return []
    audio = torch.stack([clap_audio_embedding(model, extractor, resample(torch.from_numpy(x), sample_rate, rate).numpy())
                         for x in arrays])  # [N, D]
    text = clap_text_embeddings(model, processor.tokenizer, texts)  # [N, D]
    return [float(v) for v in (audio * text).sum(dim=-1).clamp(-1.0, 1.0)]
