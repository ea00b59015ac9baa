"""What a corpus piece is: frozen dataclasses holding every label and every note of one piece.

A ``PieceSpec`` is the whole score (notes with their instruments, drum hits) plus the labels
written from it (tempo, key, time signature, chords, melody, beats, description). Rendering is a
pure function of the spec and the sample rate, so the labels are true by construction; the
sampling that makes a spec lives in ``compose.py``.

Times are in seconds from the start of the piece; pitches are MIDI note numbers (60 = middle C).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timbre:
    """One instrument of the palette: how cuecraft synthesises it and its General MIDI program."""

    name: str  # as written in descriptions and sidecars, e.g. "electric piano"
    method: str  # cuecraft's synthesis: "additive", "fm" or "karplus-strong" (see synth.py)
    gm_program: int  # General MIDI program (0-based) used with --soundfont


PALETTE: dict[str, Timbre] = {t.name: t for t in (
    Timbre("piano", "additive", 0),
    Timbre("electric piano", "fm", 4),
    Timbre("marimba", "additive", 12),
    Timbre("bell", "fm", 14),  # tubular bells
    Timbre("organ", "additive", 16),  # drawbar organ
    Timbre("guitar", "karplus-strong", 24),  # nylon-string guitar
    Timbre("bass", "additive", 33),  # finger bass
    Timbre("harp", "karplus-strong", 46),
    Timbre("string pad", "additive", 48),  # string ensemble
    Timbre("flute", "additive", 73),
    Timbre("lead synth", "additive", 80),  # square lead
)}
LEAD_INSTRUMENTS = ("piano", "electric piano", "marimba", "bell", "organ", "guitar", "harp", "flute", "lead synth")
CHORD_INSTRUMENTS = ("piano", "electric piano", "organ", "guitar", "harp", "string pad", "marimba")
BASS_INSTRUMENT = "bass"

# General MIDI percussion keys (channel 10) of the three synthesised drums.
DRUM_KEYS = {"kick": 36, "snare": 38, "hat": 42}


@dataclass(frozen=True)
class Note:
    """A pitched note of one instrument."""

    pitch: int  # MIDI note number
    start: float  # seconds
    end: float  # seconds (release tails sound after it)
    velocity: int  # 1-127
    instrument: str  # a PALETTE name


@dataclass(frozen=True)
class DrumHit:
    kind: str  # "kick", "snare" or "hat"
    time: float  # seconds
    velocity: int  # 1-127


@dataclass(frozen=True)
class Chord:
    """One chord of the progression, in the key of the piece."""

    symbol: str  # e.g. "Am", "E", "F#m"
    roman: str  # scale degree: "I", "vi", "V", ... (minor keys: "i", "iv", "V", "VI", ...)
    root: int  # pitch class 0-11 (0 = C)
    quality: str  # "major" or "minor"
    start: float
    end: float


@dataclass(frozen=True)
class PieceSpec:
    """Everything about one corpus piece. ``beats`` and ``downbeats`` are the labelled beat grid."""

    seed: int  # what sample_piece was given; the rendering noise is drawn from it too
    seconds: float  # duration of the rendered audio
    bpm: int  # beats per minute (the beat of the time signature: a dotted quarter in 6/8)
    key: str  # canonical, as in cuecraft.audio.key.KEYS, e.g. "A minor"
    tonic: int  # pitch class of the tonic, 0 = C
    mode: str  # "major" or "minor"
    time_signature: str  # "4/4", "3/4" or "6/8"
    beats_per_bar: int  # 4, 3 or 2 (6/8 counts two dotted-quarter beats)
    subdivisions: int  # 2 (simple metre) or 3 (compound metre: 6/8)
    instruments: tuple[str, ...]  # every pitched instrument that plays, lead first
    lead: str  # the melody's instrument
    chord_instrument: str
    bass: bool  # whether the bass plays the chord roots
    drums: bool
    drum_pattern: str | None  # a name from compose.DRUM_PATTERNS, None without drums
    chords: tuple[Chord, ...]
    melody: tuple[Note, ...]
    accompaniment: tuple[Note, ...]  # chord and bass notes
    drum_hits: tuple[DrumHit, ...]
    beats: tuple[float, ...]
    downbeats: tuple[float, ...]
    genre: str
    moods: tuple[str, ...]
    description: str

    @property
    def notes(self) -> tuple[Note, ...]:
        """Every pitched note, melody first."""
        return self.melody + self.accompaniment

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.bpm


def derive_seed(seed: int, index: int) -> int:
    """The seed of corpus item ``index`` of a corpus made with ``seed``: independent of how many
    items are made and of the number of workers (numpy's SeedSequence of the pair)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint32)[0])
