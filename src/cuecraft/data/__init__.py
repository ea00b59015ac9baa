"""Training data: datasets (folder, manifest, WebDataset shards), sidecar metadata, collate,
beat-synchronous mixup, pre-encoded datasets (frames stored once) and the labelled corpus.

Shapes: a waveform is float32 [C, T].
"""

from cuecraft.data.collate import AudioBatch, AudioCollate
from cuecraft.data.corpus import PieceSpec, make_corpus, render_piece, sample_piece
from cuecraft.data.dataset import AudioDataset, open_dataset
from cuecraft.data.encoded import EncodeReport, encode_dataset
from cuecraft.data.encoded_dataset import EncodedBatch, EncodedCollate, EncodedDataset, EncodedItem
from cuecraft.data.item import SELF_WAV, AudioItem
from cuecraft.data.mixup import BeatSyncMixup, LatentMix, MixupOptions, MixupPlan, MixPair
from cuecraft.data.options import DataOptions, DataReport
from cuecraft.data.shards import ShardDataset

__all__ = ["SELF_WAV", "AudioBatch", "AudioCollate", "AudioDataset", "AudioItem", "DataOptions", "DataReport",
           "ShardDataset", "open_dataset"]
__all__ += ["BeatSyncMixup", "LatentMix", "MixPair", "MixupOptions", "MixupPlan"]
__all__ += ["EncodeReport", "EncodedBatch", "EncodedCollate", "EncodedDataset", "EncodedItem", "encode_dataset"]
__all__ += ["PieceSpec", "make_corpus", "render_piece", "sample_piece"]
