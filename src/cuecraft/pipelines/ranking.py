"""Rank generated candidates by CLAP text-audio similarity, each prompt among its own candidates.

Notation: B prompts, N candidates per prompt (the batch holds B * N waveforms, prompt by prompt),
K candidates kept per prompt, T samples, D CLAP's joint width.

diffusers' ``score_waveforms`` scores every prompt against every waveform of the batch, so with
several prompts a prompt can be handed another prompt's audio, twice. Here prompt b ranks only
candidates ``b * N .. b * N + N - 1``. CLAP sees at most one window of its own length: a longer
waveform is cropped at a start drawn from the caller's ``torch.Generator`` (CLAP's feature
extractor would draw it from NumPy's global random state, which no seed of the pipeline reaches),
so a seeded generation ranks the same way every time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cuecraft._optional import require

Generators = torch.Generator | Sequence[torch.Generator] | None


class Ranking(NamedTuple):
    """The kept candidates of every prompt, best first.

    indices: long [B, K], positions in the batch of B * N candidates.
    scores: float [B, K], cosine similarity between the prompt's and the candidate's CLAP embeddings.
    """

    indices: torch.Tensor
    scores: torch.Tensor


def crop_starts(lengths: int, window: int, count: int, generator: Generators) -> list[int]:
    """Start of a ``window``-sample crop in each of ``count`` waveforms of ``lengths`` samples.

    0 when the waveform fits in the window (no draw is made). Otherwise uniform in
    ``[0, lengths - window]``, drawn from ``generator`` (one generator, or one per waveform),
    or from torch's global generator when None.
    """
    overflow = lengths - window
    if overflow <= 0:
        return [0] * count

    def draw(size: int, source: torch.Generator | None) -> list[int]:
        device = source.device if source is not None else "cpu"
        return torch.randint(0, overflow + 1, (size,), generator=source, device=device).tolist()

    if isinstance(generator, Sequence):
        return [draw(1, generator[i])[0] for i in range(count)]
    return draw(count, generator)


def clap_audio_embeddings(clap: nn.Module, feature_extractor: Any, waveforms: torch.Tensor, sample_rate: int,
                          generator: Generators = None) -> torch.Tensor:
    """L2-normalised CLAP audio embeddings [M, D] of ``waveforms`` [M, T] at ``sample_rate`` Hz.

    ``clap`` is a transformers ``ClapModel`` (its ``audio_model`` and ``audio_projection`` are used,
    as ``get_audio_features`` does); ``feature_extractor`` its ``ClapFeatureExtractor``. Waveforms
    are resampled to the extractor's rate with librosa, then cropped to one window (see
    ``crop_starts``).
    """
    audio = waveforms.detach().to("cpu", torch.float32).numpy()
    target_rate = int(feature_extractor.sampling_rate)
    if sample_rate != target_rate:
        librosa = require("librosa", extra="audio", purpose="resampling generated audio to CLAP's rate for ranking")
        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=target_rate, axis=-1)
    window = int(feature_extractor.nb_max_samples)
    starts = crop_starts(audio.shape[-1], window, audio.shape[0], generator)
    windows = [np.ascontiguousarray(row[start: start + window]) for row, start in zip(audio, starts)]
    features = feature_extractor(windows, sampling_rate=target_rate, return_tensors="pt")
    projection = clap.audio_projection
    parameter = next(projection.parameters())
    inputs = {"input_features": features["input_features"].to(parameter.device, parameter.dtype)}
    if "is_longer" in features:
        inputs["is_longer"] = features["is_longer"].to(parameter.device)
    pooled = clap.audio_model(**inputs).pooler_output  # [M, hidden]
    return F.normalize(projection(pooled), dim=-1)


def rank_candidates(text_embeds: torch.Tensor, audio_embeds: torch.Tensor, keep: int) -> Ranking:
    """Keep the ``keep`` best of each prompt's own candidates.

    text_embeds: [B, D], one per prompt. audio_embeds: [B * N, D], prompt b's candidates at rows
    ``b * N .. b * N + N - 1``. Both are normalised here, so scores are cosine similarities
    (the order of CLAP's ``logits_per_text``, which only scales them). Ties keep the earlier
    candidate.
    """
    batch, width = text_embeds.shape
    count = audio_embeds.shape[0] // batch
    assert audio_embeds.shape == (batch * count, width), (tuple(text_embeds.shape), tuple(audio_embeds.shape))
    assert 1 <= keep <= count, (keep, count)
    text = F.normalize(text_embeds.float(), dim=-1)
    audio = F.normalize(audio_embeds.float().to(text.device), dim=-1).view(batch, count, width)
    similarity = torch.einsum("bd,bnd->bn", text, audio)  # [B, N]: each prompt against its own only
    scores, order = similarity.sort(dim=1, descending=True, stable=True)
    offsets = torch.arange(batch, device=order.device).unsqueeze(1) * count  # [B, 1]
    return Ranking((order[:, :keep] + offsets).cpu(), scores[:, :keep].cpu())
