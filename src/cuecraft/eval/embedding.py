"""Audio embeddings for novelty and diversity: the instrument classifier's, or aiSFX's.

Notation: N waveforms, T samples, E embedding width.

- ``"classifier"`` (default): the penultimate features [N, 64] of a cuecraft instrument classifier
  (``InstrumentClassifier.embed``), trained on the corpus itself, so it separates what the corpus
  varies (the lead instrument above all); offline, no extra.
- ``"aisfx"``: the 512-wide embedding of aiSFX (Ma and Lerch, ISMIR 2022; PyPI ``aisfx`` 0.1.2,
  a PyTorch CNN trained on sound-effects libraries, weights CC BY 4.0 inside the wheel). It works
  offline with torch and librosa only, but the package pins numpy 1.23 and librosa 0.9.2, so it
  is installed ``pip install --no-deps aisfx==0.1.2``; its checkpoint is read with
  ``torch.load(weights_only=True)`` and an allow-list of the two numpy types it holds. Its input
  is built here as its librosa path builds it: 44.1 kHz, peak-normalised, a 96-band HTK mel
  power spectrogram (window 2048, hop 1024, unit-area filters), ``log10(1 + 10^4 x)`` scaled by
  the paper's maximum 9.4578; 100-frame (2.3 s) blocks at a 50-frame hop, the last one
  zero-padded; the clip's embedding is the mean of its blocks' embeddings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cuecraft._optional import require
from cuecraft.errors import EvaluationInputError, MissingDependencyError, WeightsError

EMBEDDERS = ("classifier", "aisfx")
AISFX_RATE = 44100
AISFX_SPEC_MAX = 9.457798957824707  # the paper's min-max normalisation (minimum 0)
AISFX_BLOCK, AISFX_BLOCK_HOP = 100, 50  # frames


def mono_waveforms(wavs, sample_rate: int) -> list[np.ndarray]:
    """``wavs`` (a list of [T] or [1, T] arrays / tensors) checked as finite mono float32 arrays."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 1000 <= sample_rate <= 768000:
        raise EvaluationInputError(f"sample_rate: expected an int in Hz in [1000, 768000]; got {sample_rate!r}")
    if not isinstance(wavs, (list, tuple)):
        raise EvaluationInputError(f"wavs: expected a list of waveforms [T]; got {type(wavs).__name__}")
    out = []
    for number, wav in enumerate(wavs):
        x = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
        x = x[0] if x.ndim == 2 and x.shape[0] == 1 else x
        if x.ndim != 1 or x.shape[0] == 0 or not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
            raise EvaluationInputError(f"wavs[{number}]: expected a non-empty finite mono waveform [T]; got shape "
                                       f"{list(x.shape)} of {x.dtype}")
        out.append(x.astype(np.float32))
    return out


class AisfxEmbedder:
    """aiSFX's embedding network (see the module docstring): ``embed(wavs, sample_rate) -> [N, 512]``."""

    def __init__(self):
        try:
            cnn2d = require("aisfx.models.cnn2d", extra="aisfx", purpose="the aiSFX audio embedding")
        except MissingDependencyError as error:
            raise MissingDependencyError(
                "cuecraft needs the optional package 'aisfx' for the aiSFX audio embedding, and it is not installed "
                "(its pins conflict with cuecraft's numpy and librosa). Install it with: "
                "pip install --no-deps aisfx==0.1.2") from error
        self.librosa = require("librosa", extra="audio", purpose="the aiSFX spectrogram")
        path = Path(cnn2d.__file__).parent / "checkpoint.pth"
        numpy_scalar = require("numpy._core.multiarray", extra="audio", purpose="reading the aiSFX checkpoint").scalar
        allowed = [(numpy_scalar, "numpy.core.multiarray.scalar"), np.dtype,
                   (type(np.dtype("int64")), "numpy.dtype[int64]")]
        try:
            with torch.serialization.safe_globals(allowed):
                weights, datasets = torch.load(path, map_location="cpu", weights_only=True)
            model = cnn2d.CrossNet(cnn2d.EmbeddingNet("max", 3, 1, 64), datasets, "cpu")
            model.load_state_dict(weights)
        except Exception as error:  # noqa: BLE001  (unpickling and state-dict errors of a foreign checkpoint)
            raise WeightsError(f"{path}: not the aiSFX 0.1.2 checkpoint ({error})") from None
        self.net = model.embedding_net.eval()

    def _blocks(self, wav: np.ndarray) -> np.ndarray:
        peak = float(np.abs(wav).max())
        wav = wav / peak if peak > 0 else wav
        power = self.librosa.feature.melspectrogram(
            y=wav, sr=AISFX_RATE, n_fft=2048, win_length=2048, hop_length=1024, n_mels=96, fmin=0.0,
            fmax=AISFX_RATE / 2, htk=True, norm=1.0, power=2.0)  # [96, F]
        spec = (np.log10(power * 10000.0 + 1.0) / AISFX_SPEC_MAX).T  # [F, 96]
        count = max(1, int(np.ceil((spec.shape[0] - AISFX_BLOCK) / AISFX_BLOCK_HOP)) + 1)
        padded = np.concatenate([spec, np.zeros((AISFX_BLOCK, spec.shape[1]))], axis=0)
        return np.stack([padded[k * AISFX_BLOCK_HOP: k * AISFX_BLOCK_HOP + AISFX_BLOCK] for k in range(count)])

    @torch.no_grad()
    def embed(self, wavs, sample_rate: int) -> np.ndarray:
        """N mono waveforms [T_i] at ``sample_rate`` -> [N, 512] float32 (mean over the clip's blocks)."""
        from cuecraft.audio.resample import resample

        out = []
        for wav in mono_waveforms(wavs, sample_rate):
            wav = resample(torch.from_numpy(wav), sample_rate, AISFX_RATE).numpy()
            blocks = torch.from_numpy(self._blocks(wav).astype(np.float32))  # [n, 100, 96]
            out.append(self.net(blocks).mean(dim=0).numpy())
        return np.stack(out) if out else np.zeros((0, 512), dtype=np.float32)


def audio_embeddings(wavs, sample_rate: int, *, embedder: str = "classifier", classifier=None) -> np.ndarray:
    """Embeddings [N, E] of N waveforms [T_i]: ``embedder`` "classifier" (``classifier``, default the
    built-in one) or "aisfx"."""
    if embedder == "aisfx":
        return AisfxEmbedder().embed(wavs, sample_rate)
    if embedder != "classifier":
        raise EvaluationInputError(f"embedder: expected one of {', '.join(EMBEDDERS)}; got {embedder!r}")
    if classifier is None:
        from cuecraft.eval.instrument import builtin_classifier

        classifier = builtin_classifier()
        if classifier is None:
            raise EvaluationInputError("embedder 'classifier': this install ships no built-in instrument classifier; "
                                       "pass one (InstrumentClassifier.load(DIR)) or train one with "
                                       "`cuecraft eval train-classifier`")
    return classifier.embed(list(wavs), sample_rate)
