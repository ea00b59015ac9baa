"""Training data: datasets (folder, manifest, WebDataset shards), sidecar metadata, collate,
beat-synchronous mixup and the labelled corpus.

Shapes: a waveform is float32 [C, T].
"""

from cuecraft.data.item import SELF_WAV, AudioItem

__all__ = ["SELF_WAV", "AudioItem"]
