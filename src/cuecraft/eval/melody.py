"""Melody adherence: chroma cosine similarity (MusicGen's) and frame pitch accuracy (monophonic).

``chroma_cosine`` follows AudioCraft's ``ChromaCosineSimilarityMetric`` (audiocraft/metrics/
chroma_cosinesim.py, as MusicGen's evaluation configures it): both waveforms mono at
``CHROMA_RATE`` = 32 kHz, chroma from ``ChromaExtractor`` with radix2_exp 14 (16384-sample
windows, hop 4096), argmax off and AudioCraft's extractor options (reflect padding, normalised
power, no silence threshold); per frame the cosine similarity of reference and output chroma
(``torch.nn.functional.cosine_similarity``, eps 1e-8), over the first ceil(T / hop) frames (the
valid frames of T samples), averaged. A frame where either side is silent has cosine 0, so
silence against anything scores 0.0, never NaN. The two waveforms are cut to the shorter one.
Over a set, AudioCraft averages frames, not items: ``chroma_cosine_frames`` gives the per-frame
values for that.

``pitch_accuracy``: the raw pitch accuracy of ``mir_eval.melody`` (the share of the reference's
voiced frames whose estimated f0 is within 50 cents), the estimate's f0 tracked by
``librosa.pyin``. Only meaningful where the audio is one melodic line (a monophonic recording);
the reference is an f0 track (``pitch_track`` of a monophonic reference, or ``notes_f0`` of known
notes).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from cuecraft._optional import require
from cuecraft.audio.resample import resample, to_mono
from cuecraft.errors import EvaluationInputError

CHROMA_RATE = 32000  # Hz, MusicGen's rate, at which its chroma metric runs
CHROMA_RADIX2_EXP = 14  # n_fft 16384, hop 4096: 7.8 frames/s
COSINE_EPS = 1e-8
PYIN_FMIN, PYIN_FMAX = 65.0, 2093.0  # Hz: C2 .. C7
PYIN_FRAME, PYIN_HOP = 2048, 256  # samples at 22050 Hz (librosa's pyin defaults, hop 11.6 ms)
PYIN_RATE = 22050


def _mono(wav: np.ndarray | torch.Tensor, sample_rate: int, rate: int) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(wav, dtype=np.float32) if not isinstance(wav, torch.Tensor) else wav)
    if tensor.dim() not in (1, 2) or tensor.numel() == 0:
        raise EvaluationInputError(f"a waveform must be a non-empty [T] or [C, T] array; got shape {tuple(tensor.shape)}")
    return resample(to_mono(tensor.detach().cpu().float()), sample_rate, rate).reshape(-1)


def _extractor():
    from cuecraft.audio.chroma import ChromaExtractor

    return ChromaExtractor(CHROMA_RATE, 12, CHROMA_RADIX2_EXP, argmax=False, pad_mode="reflect", normalized=True,
                           silent_frames="c")


def chroma_cosine_frames(reference: np.ndarray | torch.Tensor, audio: np.ndarray | torch.Tensor,
                         sample_rate: int) -> np.ndarray:
    """Per-frame chroma cosine similarity of ``audio`` to ``reference`` (both [T] or [C, T] at
    ``sample_rate``): float64 [F], F = ceil(T / hop) at 32 kHz, T the shorter length."""
    ref = _mono(reference, sample_rate, CHROMA_RATE)
    est = _mono(audio, sample_rate, CHROMA_RATE)
    length = min(ref.numel(), est.numel())
    extractor = _extractor()
    chroma = extractor(torch.stack([ref[:length], est[:length]]).double())  # [2, F, 12]
    valid = math.ceil(length / extractor.hop_length)
    cosine = torch.nn.functional.cosine_similarity(chroma[0, :valid], chroma[1, :valid], dim=1, eps=COSINE_EPS)
    return cosine.numpy()


def chroma_cosine(reference: np.ndarray | torch.Tensor, audio: np.ndarray | torch.Tensor, sample_rate: int) -> float:
    """MusicGen's chroma cosine similarity of one pair: the mean of ``chroma_cosine_frames`` (0-1)."""
    return float(chroma_cosine_frames(reference, audio, sample_rate).mean())


def pitch_track(wav: np.ndarray | torch.Tensor, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(times [F] seconds, f0 [F] Hz with 0 where unvoiced) of a monophonic ``wav``, by librosa.pyin
    (C2-C7, at 22050 Hz, hop 256)."""
    librosa = require("librosa", extra="audio", purpose="pitch tracking (pyin)")
    mono = _mono(wav, sample_rate, PYIN_RATE).numpy()
    if len(mono) < PYIN_FRAME or not np.any(mono):
        frames = 1 + len(mono) // PYIN_HOP
        return np.arange(frames) * PYIN_HOP / PYIN_RATE, np.zeros(frames)
    f0, voiced, _ = librosa.pyin(mono, fmin=PYIN_FMIN, fmax=PYIN_FMAX, sr=PYIN_RATE, frame_length=PYIN_FRAME,
                                 hop_length=PYIN_HOP)
    f0 = np.where(voiced & np.isfinite(f0), f0, 0.0)
    return librosa.times_like(f0, sr=PYIN_RATE, hop_length=PYIN_HOP), f0


def notes_f0(notes: Sequence, times: np.ndarray) -> np.ndarray:
    """An f0 track [F] (Hz, 0 where no note sounds) at ``times`` from notes with ``pitch`` (MIDI),
    ``start`` and ``end`` (seconds), e.g. a corpus piece's ``melody``; a later note wins an overlap."""
    f0 = np.zeros(len(times))
    for note in notes:
        f0[(times >= note.start) & (times < note.end)] = 440.0 * 2.0 ** ((note.pitch - 69) / 12)
    return f0


def pitch_accuracy(ref_times: np.ndarray, ref_f0: np.ndarray, est_times: np.ndarray, est_f0: np.ndarray) -> float:
    """mir_eval.melody's raw pitch accuracy (50 cents) of the estimate against the reference f0
    tracks (Hz, 0 = unvoiced); 0.0 when the reference has no voiced frame."""
    melody = require("mir_eval.melody", extra="eval", purpose="melody pitch accuracy")
    ref_f0, est_f0 = np.asarray(ref_f0, dtype=np.float64), np.asarray(est_f0, dtype=np.float64)
    if not np.any(ref_f0 > 0):
        return 0.0
    with warnings.catch_warnings():  # mir_eval warns on an all-unvoiced estimate; the score is defined (0)
        warnings.simplefilter("ignore")
        ref_v, ref_c, est_v, est_c = melody.to_cent_voicing(np.asarray(ref_times, dtype=np.float64), ref_f0,
                                                            np.asarray(est_times, dtype=np.float64), est_f0)
        return float(melody.raw_pitch_accuracy(ref_v, ref_c, est_v, est_c))
