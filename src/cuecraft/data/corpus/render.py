"""Rendering a PieceSpec to a waveform: cuecraft's own synthesis, or a General MIDI soundfont.

Both are deterministic: the synthesis draws its noise (plucks, breath, drums) from a generator
seeded by the spec's seed; the soundfont renderer has no randomness.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from cuecraft.data.corpus.drums import drum_sounds
from cuecraft.data.corpus.spec import BASS_INSTRUMENT, PieceSpec
from cuecraft.data.corpus.synth import render_note
from cuecraft.errors import ConditioningInputError

SAMPLE_RATE_RANGE = (8000, 96000)
PEAK = 0.89  # -1 dBFS: the peak of every rendered piece
GAINS = {"lead": 0.5, "chord": 0.4, "bass": 0.3, "drums": 0.7}  # mix levels per role (chord: per note)
END_FADE = 0.02  # seconds: the piece fades out over its last 20 ms (it is cut mid-note)


def check_sample_rate(sample_rate: int) -> int:
    low, high = SAMPLE_RATE_RANGE
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool) or not low <= sample_rate <= high:
        raise ConditioningInputError(f"sample_rate must be an int in [{low}, {high}] Hz; got {sample_rate!r}")
    return int(sample_rate)


def _role_gain(instrument: str, is_melody: bool) -> float:
    if is_melody:
        return GAINS["lead"]
    return GAINS["bass"] if instrument == BASS_INSTRUMENT else GAINS["chord"]


def synthesize(spec: PieceSpec, sample_rate: int) -> np.ndarray:
    """cuecraft's synthesis of ``spec``: float64 [T], T = round(seconds * sample_rate), not normalised."""
    total = int(round(spec.seconds * sample_rate))
    out = np.zeros(total)
    rng = np.random.default_rng([spec.seed, 1])  # the rendering's own stream, apart from the sampling's
    cache: dict = {}
    for is_melody, notes in ((True, spec.melody), (False, spec.accompaniment)):
        for note in notes:
            start = int(round(note.start * sample_rate))
            if start >= total:
                continue
            tone = render_note(note.instrument, note.pitch, note.end - note.start, note.velocity, sample_rate, rng,
                               max_samples=total - start, cache=cache)
            out[start:start + tone.shape[0]] += _role_gain(note.instrument, is_melody) * tone
    if spec.drum_hits:
        sounds = drum_sounds(sample_rate, rng)
        for hit in spec.drum_hits:
            start = int(round(hit.time * sample_rate))
            sound = sounds[hit.kind][: max(total - start, 0)]
            out[start:start + sound.shape[0]] += GAINS["drums"] * (hit.velocity / 127.0) * sound
    return out


def _finish(wav: np.ndarray, sample_rate: int) -> torch.Tensor:
    """Fade the last END_FADE seconds, peak-normalise to PEAK: float32 [1, T]."""
    wav = np.nan_to_num(np.asarray(wav, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    fade = min(int(END_FADE * sample_rate), wav.shape[0])
    if fade:
        wav[-fade:] *= np.linspace(1.0, 0.0, fade)
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak > 1e-9:
        wav = wav * (PEAK / peak)
    return torch.from_numpy(wav.astype(np.float32)).unsqueeze(0)


def render_piece(spec: PieceSpec, *, sample_rate: int = 16000, soundfont: str | os.PathLike[str] | None = None
                 ) -> torch.Tensor:
    """The audio of ``spec``: float32 [1, T], T = round(spec.seconds * sample_rate), peak -1 dBFS.

    ``soundfont``: a General MIDI .sf2/.sf3 file to render through (tinysoundfont, the MIDI
    built with pretty_midi); None: cuecraft's own synthesis. Silence stays zeros (never NaN).
    """
    if not isinstance(spec, PieceSpec):
        raise ConditioningInputError(f"render_piece takes a PieceSpec (from sample_piece); got {type(spec).__name__}")
    sample_rate = check_sample_rate(sample_rate)
    if soundfont is None:
        return _finish(synthesize(spec, sample_rate), sample_rate)
    from cuecraft.data.corpus.soundfont import render_soundfont

    return _finish(render_soundfont(spec, sample_rate, soundfont), sample_rate)
