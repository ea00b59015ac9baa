"""Stem backends: keep the melodic part of a mix before its chroma is taken.

Every backend maps a mono waveform float32 [T] at ``sample_rate`` to a mono waveform [T] at the
same rate, and describes itself with ``settings()`` (a JSON-able dict that goes into cache keys,
so a different backend or setting never shares an entry).

- ``hpss`` (default; needs no weights): librosa's harmonic-percussive source separation keeps the
  harmonic part (sustained partials: voices, leads, chords) and drops the percussive part
  (broadband onsets: drums); then the bass register (below ``bass_cutoff_hz``, C3 by default:
  bass lines and kick drums) is removed. One STFT round trip; its geometry is set in seconds and
  hertz, so it behaves alike at every sample rate.
- ``demucs``: a Demucs model from a local file (the ``demucs`` package must be installed; nothing
  is downloaded). Keeps ``vocals`` + ``other``, drops ``drums`` and ``bass``, as MusicGen-Melody.
- ``none``: the mix as it is.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from cuecraft._optional import require
from cuecraft.audio._checks import check_positive
from cuecraft.audio.resample import resample
from cuecraft.errors import ConditioningInputError, ConfigError, MissingDependencyError

STEM_BACKENDS = ("hpss", "demucs", "none")
MAX_AMPLITUDE = 64.0  # as cuecraft.attributes and cuecraft.audio.io check it


def check_samples(wav: torch.Tensor) -> torch.Tensor:
    """``wav`` when every sample is finite and within +-MAX_AMPLITUDE; else a ConditioningInputError.

    WavCondition checks its samples when made; this catches a tensor changed after that (a NaN
    would otherwise reach librosa, whose own error names no item, or give NaN chroma).
    """
    if wav.numel():
        peak = float(wav.detach().abs().amax())
        if not peak <= MAX_AMPLITUDE:
            what = "not finite (NaN or infinity)" if not math.isfinite(peak) else f"up to {peak:.3g}"
            raise ConditioningInputError(f"waveform samples are {what}; expected finite samples within "
                                         f"+-{MAX_AMPLITUDE:g}")
    return wav


class StemBackend(Protocol):
    """Mono waveform float32 [T] at ``sample_rate`` -> its melodic part, float32 [T]."""

    name: str

    def __call__(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor: ...

    def settings(self) -> dict[str, Any]: ...

    def context_samples(self, sample_rate: int) -> int | None:
        """Samples past a span's end that its output depends on (None: the whole input)."""
        ...


class NoStems:
    """The ``none`` backend: the mix as it is."""

    name = "none"

    def __call__(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        return check_samples(wav)

    def context_samples(self, sample_rate: int) -> int:
        return 0

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return "NoStems()"


def _odd(x: float) -> int:
    """The odd integer nearest to x, at least 3 (median filters need a centre)."""
    return max(3, 2 * int(round((x - 1) / 2)) + 1)


class HPSSStems:
    """The ``hpss`` backend: harmonic part of librosa's HPSS, without the bass register.

    Args:
        window_s: STFT window, in seconds (rounded to a power of two of samples); hop = window / 4.
        harmonic_kernel_s: length of the median filter along time: a partial sustained for about
            half of it or more counts as harmonic (0.2 s keeps notes of 0.1 s and longer).
        percussive_kernel_hz: height of the median filter along frequency: energy spread over
            such a band in one frame counts as percussive.
        margin: librosa's HPSS margin (1: soft Wiener masks; larger is stricter about harmonic).
        bass_cutoff_hz: everything below is removed, with a half-octave raised-cosine ramp below
            the cutoff (gain 0 at cutoff / sqrt(2), 1 from the cutoff up).
    """

    name = "hpss"

    def __init__(self, window_s: float = 0.064, harmonic_kernel_s: float = 0.2,
                 percussive_kernel_hz: float = 500.0, margin: float = 1.0, bass_cutoff_hz: float = 130.0):
        problems = [*check_positive("window_s", window_s), *check_positive("harmonic_kernel_s", harmonic_kernel_s),
                    *check_positive("percussive_kernel_hz", percussive_kernel_hz),
                    *check_positive("bass_cutoff_hz", bass_cutoff_hz), *check_positive("margin", margin)]
        if not problems and margin < 1:
            problems.append(f"margin: must be >= 1 (librosa's HPSS); got {margin}")
        if problems:
            raise ConfigError(problems)
        self.window_s = float(window_s)
        self.harmonic_kernel_s = float(harmonic_kernel_s)
        self.percussive_kernel_hz = float(percussive_kernel_hz)
        self.margin = float(margin)
        self.bass_cutoff_hz = float(bass_cutoff_hz)

    def geometry(self, sample_rate: int) -> tuple[int, int, tuple[int, int]]:
        """(n_fft, hop, (harmonic kernel in frames, percussive kernel in bins)) at ``sample_rate``."""
        n_fft = 2 ** max(6, round(math.log2(sample_rate * self.window_s)))
        hop = n_fft // 4
        harmonic = _odd(self.harmonic_kernel_s * sample_rate / hop)
        percussive = _odd(self.percussive_kernel_hz * n_fft / sample_rate)
        return n_fft, hop, (harmonic, percussive)

    def context_samples(self, sample_rate: int) -> int:
        """Samples past a span's end that its first samples' output depends on: an output sample
        comes from the frames whose windows cover it (n_fft), whose masks come from the spectra
        half a harmonic kernel away, whose own windows reach n_fft / 2 further (and the cut's
        edge padding, n_fft / 2): 2 n_fft + (kernel // 2 + 1) hop. So separating a span plus this
        margin gives the span exactly what separating the whole waveform gives it."""
        n_fft, hop, (harmonic, _) = self.geometry(sample_rate)
        return 2 * n_fft + (harmonic // 2 + 1) * hop

    def bass_gain(self, frequencies: np.ndarray) -> np.ndarray:
        """Gain per frequency [K]: 0 below cutoff / sqrt(2), 1 from the cutoff, a cosine between."""
        octaves = np.log2(np.maximum(frequencies, 1e-3) / self.bass_cutoff_hz)  # <= 0 below the cutoff
        ramp = np.clip(octaves / 0.5 + 1.0, 0.0, 1.0)  # 0 at -1/2 octave, 1 at the cutoff
        return (0.5 - 0.5 * np.cos(np.pi * ramp)).astype(np.float32)

    def __call__(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        librosa = require("librosa", extra="audio", purpose="the 'hpss' stem backend")
        if check_samples(wav).shape[-1] == 0:
            return wav
        n_fft, hop, kernel = self.geometry(sample_rate)
        array = wav.detach().to("cpu", torch.float32).numpy()
        spectrum = librosa.stft(array, n_fft=n_fft, hop_length=hop)  # [K, F] complex
        harmonic = librosa.decompose.hpss(spectrum, kernel_size=kernel, margin=self.margin)[0]
        harmonic *= self.bass_gain(librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft))[:, None]
        out = librosa.istft(harmonic, hop_length=hop, n_fft=n_fft, length=array.shape[-1])
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "window_s": self.window_s, "harmonic_kernel_s": self.harmonic_kernel_s,
                "percussive_kernel_hz": self.percussive_kernel_hz, "margin": self.margin,
                "bass_cutoff_hz": self.bass_cutoff_hz}

    def __repr__(self) -> str:
        return "HPSSStems(" + ", ".join(f"{k}={v}" for k, v in self.settings().items() if k != "name") + ")"


def _demucs_installed() -> bool:
    if "demucs" in sys.modules:
        return sys.modules["demucs"] is not None
    try:
        return importlib.util.find_spec("demucs") is not None
    except (ImportError, ValueError):
        return False


def _missing_demucs(detail: str = "") -> MissingDependencyError:
    return MissingDependencyError(
        "cuecraft needs the optional package 'demucs' for the 'demucs' stem backend, and it is not "
        f"installed{detail}. Install it with: pip install 'cuecraft[stems]' (with a torchaudio build for your torch), "
        "and give a local model file as stems_model; or use stems='hpss', which needs no weights."
    )


class DemucsStems:
    """The ``demucs`` backend: vocals + other of a local Demucs model; drums and bass dropped.

    Args:
        model_path: a Demucs model file (``<signature>[-<checksum>].th``, e.g. htdemucs'
            ``955717e8-8726e21a.th`` as found in ``~/.cache/torch/hub/checkpoints``). It is loaded
            on first use with ``demucs.pretrained.get_model(signature, repo=its folder)``, which
            unpickles it: point it only at files you trust.

    The mix is resampled to the model's rate, copied to its channels and normalised as
    ``demucs.separate`` does (zero mean, unit std; the std is restored after, the mean, a DC
    offset chroma ignores, is not); the kept stems are summed, down-mixed and resampled back.
    """

    name = "demucs"
    keep = ("vocals", "other")

    def __init__(self, model_path: str | os.PathLike[str] | None):
        if not _demucs_installed():
            raise _missing_demucs()
        if model_path is None:
            raise ConfigError("stems_model: the 'demucs' stem backend needs a local Demucs model file (.th); "
                              "none given (nothing is downloaded)")
        path = Path(model_path)
        if not path.is_file() or path.suffix != ".th":
            raise ConfigError(f"stems_model: expected an existing Demucs model file (.th); got {os.fspath(model_path)!r}")
        self.model_path = path.resolve()
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                pretrained = importlib.import_module("demucs.pretrained")
            except ImportError as error:
                raise _missing_demucs(f" ({error})") from error
            signature = self.model_path.stem.split("-")[0]
            model = pretrained.get_model(signature, repo=self.model_path.parent)
            missing = [s for s in self.keep if s not in model.sources]
            if missing:
                raise ConfigError(f"stems_model: {self.model_path} separates {list(model.sources)}; "
                                  f"the melody needs {list(self.keep)}")
            self._model = model.eval()
        return self._model

    def __call__(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        if check_samples(wav).shape[-1] == 0:
            return wav
        model = self._load()
        apply = importlib.import_module("demucs.apply")
        mix = resample(wav.to(torch.float32), sample_rate, model.samplerate)  # [T']
        mix = mix.unsqueeze(0).expand(model.audio_channels, -1)  # [channels, T']
        mean, std = mix.mean(), mix.std().clamp_min(1e-8)
        with torch.no_grad():
            sources = apply.apply_model(model, ((mix - mean) / std)[None], device="cpu")[0]  # [S, channels, T']
        sources = sources * std  # the level back; the mean (DC) is dropped: chroma ignores it
        kept = sources[[list(model.sources).index(s) for s in self.keep]].sum(dim=0).mean(dim=0)  # [T']
        out = resample(kept.contiguous(), model.samplerate, sample_rate)
        n = wav.shape[-1]
        return torch.nn.functional.pad(out[:n], (0, max(0, n - out.shape[-1])))

    def context_samples(self, sample_rate: int) -> None:
        return None  # Demucs' overlapping segments and normalisation see the whole input

    def settings(self) -> dict[str, Any]:
        stat = self.model_path.stat()
        return {"name": self.name, "model": str(self.model_path), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns, "keep": list(self.keep)}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}  # workers load their own copy

    def __repr__(self) -> str:
        return f"DemucsStems(model_path={str(self.model_path)!r})"


def make_stem_backend(name: str, model_path: str | os.PathLike[str] | None = None) -> StemBackend:
    """The stem backend called ``name`` (hpss, demucs or none); ``model_path`` is for demucs only."""
    if name == "hpss" or name == "none":
        if model_path is not None:
            raise ConfigError(f"stems_model: only the 'demucs' stem backend takes a model file; stems is {name!r}")
        return HPSSStems() if name == "hpss" else NoStems()
    if name == "demucs":
        return DemucsStems(model_path)
    raise ConfigError(f"stems: unknown stem backend {name!r}; valid backends: {', '.join(STEM_BACKENDS)}")
