"""``AudioItem``: one training segment as every part of ``cuecraft.data`` hands it on.

Shapes: a waveform is float32 [C, T] (C channels, T samples at ``sample_rate``).

A dataset yields AudioItems, mixup combines two of them into one, and the collate function turns
a list of them into a batch (waveforms, padding masks and the conditioners' tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from cuecraft.attributes import WavCondition

SELF_WAV = "self_wav"  # the metadata key holding the segment itself (melody conditioning)
SEEK_TIME = "seek_time"  # the metadata key of the segment's start in its file, in seconds


@dataclass
class AudioItem:
    """One segment of one audio file, with its metadata.

    wav: float32 [C, T], resampled and mixed to the dataset's rate and channels, zero-padded to
        the segment length.
    sample_rate: Hz of ``wav``.
    padding_mask: bool [T], True where ``wav`` holds real audio (False on padding).
    metadata: the item's fields (sidecar fields, ``seconds_start``, ``seconds_total``, ...);
        conditioners read it by name, as they read any metadata dict.
    path: the file the segment comes from. seek_time: where the segment starts in it (seconds).
    """

    wav: torch.Tensor
    sample_rate: int
    padding_mask: torch.Tensor
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    seek_time: float = 0.0

    @property
    def length(self) -> int:
        """Valid (unpadded) samples."""
        return int(self.padding_mask.sum())

    def to_metadata(self) -> dict[str, Any]:
        """The metadata dict the conditioning stack reads: ``metadata`` plus ``seek_time`` (where
        the segment starts in its file, so that the beats and chords conditioners place the
        sidecar's label times, which count from the file's start) and ``self_wav`` (this segment
        as a WavCondition, for melody / chroma conditioners and beat tracking)."""
        wav = WavCondition(self.wav, self.sample_rate, self.length, self.path, self.seek_time)
        return {**self.metadata, SEEK_TIME: self.seek_time, SELF_WAV: wav}
