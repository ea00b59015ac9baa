"""Audio signal code: reading files, resampling and down-mixing, stem separation, chroma.

Notation in this package: C channels, T samples, F frames, K frequency bins, N chroma bins.

- ``io``: ``load_audio`` (soundfile) and ``AudioReadError``.
- ``resample``: ``to_mono``, ``resample`` (soxr through librosa), ``prepare_waveform``.
- ``stems``: stem backends that keep the melodic part of a mix: ``hpss``, ``demucs``, ``none``.
- ``chroma``: ``ChromaExtractor``, batched chroma in PyTorch with librosa's filter bank.
- ``beats``: ``track_beats`` / ``estimate_tempo``: tempo, beats and downbeats (``BeatInfo``).

Importing this package imports neither librosa nor soundfile; they are imported where used.
"""

from cuecraft.audio.beats import BeatInfo, estimate_tempo, track_beats
from cuecraft.audio.chroma import ChromaExtractor, chroma_filter_bank
from cuecraft.audio.io import AUDIO_EXTENSIONS, AudioReadError, load_audio
from cuecraft.audio.resample import prepare_waveform, resample, to_mono
from cuecraft.audio.stems import STEM_BACKENDS, StemBackend, make_stem_backend

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioReadError",
    "BeatInfo",
    "ChromaExtractor",
    "STEM_BACKENDS",
    "StemBackend",
    "chroma_filter_bank",
    "estimate_tempo",
    "load_audio",
    "make_stem_backend",
    "prepare_waveform",
    "resample",
    "to_mono",
    "track_beats",
]
