"""Sampling a corpus piece: tempo, key, metre, instruments, progression, melody, drums.

The music is written so that its labels can be heard (and measured):
- key: the progression starts on the tonic chord and returns to it (the chord before the last is
  the dominant; minor keys use the harmonic-minor major V, whose leading tone tells a minor key
  from its relative major); the bass plays chord roots; the melody starts and ends on the tonic
  and puts chord tones on beats, weighted to the tonic and the key's third; and a draw is kept
  only when the notes alone (a pitch-class histogram weighted by how long and how loud each note
  is heard) give the labelled key by at least ``KEY_MARGIN`` over any other key (else redrawn, up
  to ``MAX_ATTEMPTS`` times);
- tempo: every beat has an onset (bass on every beat, kick or re-struck chords on beats); notes
  between beats only come where a beat tracker does not take them for the beat
  (``SUBDIVIDE_MIN_BPM`` <= bpm <= ``FAST_BPM``) and are quieter (slow 6/8 keeps barely heard
  eighths); above ``FAST_BPM`` every beat sounds alike (the "driving" pattern, chords on every
  beat, melody on beats), so the tracker has less reason to halve the tempo.
"""

from __future__ import annotations

import math

import numpy as np

from cuecraft.audio.key import KEYS, key_index, key_of_pitch_classes
from cuecraft.data.corpus.describe import describe, genre_of, moods_of
from cuecraft.data.corpus.spec import (BASS_INSTRUMENT, CHORD_INSTRUMENTS, LEAD_INSTRUMENTS, Chord, DrumHit,
                                       Note, PieceSpec)
from cuecraft.errors import ConditioningInputError

BPM_RANGE = (60, 180)  # inclusive, integer tempos
SECONDS_RANGE = (1.0, 600.0)
# (name, beats per bar, subdivisions of a beat, probability, bpm range for this metre)
TIME_SIGNATURES = (("4/4", 4, 2, 0.6, BPM_RANGE), ("3/4", 3, 2, 0.25, BPM_RANGE), ("6/8", 2, 3, 0.15, (60, 100)))
SUBDIVIDE_MIN_BPM = 90  # below this, nothing sounds between beats (a tracker would count it as a beat)
FAST_BPM = 150  # above this, every beat sounds alike and nothing sounds between them (a tracker would halve it)
DRUM_PATTERNS = {  # per metre; every pattern puts a kick or a snare on every beat
    "4/4": ("rock", "four on the floor", "pop"),
    "3/4": ("waltz",),
    "6/8": ("six-eight",),
}
FAST_PATTERN = "driving"  # above FAST_BPM, in every metre: kick, snare and hat on every beat alike
DRUMS_PROBABILITY = 0.7
BASS_PROBABILITY = 0.85

_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor; the V chord raises the 7th
# (roman numeral, root in semitones above the tonic, quality)
_MAJOR_DEGREES = {"I": (0, "major"), "ii": (2, "minor"), "iii": (4, "minor"), "IV": (5, "major"),
                  "V": (7, "major"), "vi": (9, "minor")}
_MINOR_DEGREES = {"i": (0, "minor"), "III": (3, "major"), "iv": (5, "minor"), "V": (7, "major"),
                  "VI": (8, "major"), "VII": (10, "major")}
_MAJOR_MIDDLE = ("IV", "vi", "ii", "V", "IV", "vi", "iii")  # chords between the first and the last two
_MINOR_MIDDLE = ("iv", "VI", "III", "iv", "VI", "VII")
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_FLAT_KEYS = {"F major", "Bb major", "Eb major", "Ab major", "Db major",
              "D minor", "G minor", "C minor", "F minor", "Bb minor", "Eb minor"}
MAX_ATTEMPTS = 64
KEY_MARGIN = 0.2  # the notes' key must beat every other key's correlation by this much
# about how long a struck or plucked note of each instrument is heard (its decay); others sustain
SUSTAINING = ("organ", "string pad")
AUDIBLE_SECONDS = {"piano": 0.8, "electric piano": 0.7, "marimba": 0.25, "bell": 0.6, "guitar": 0.8, "harp": 1.0,
                   "bass": 0.5}


def _check_seed_and_seconds(seed: int, seconds: float) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConditioningInputError(f"seed must be an int >= 0; got {seed!r}")
    low, high = SECONDS_RANGE
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (low <= seconds <= high):
        raise ConditioningInputError(f"seconds must be a number in [{low:g}, {high:g}]; got {seconds!r}")


def _progression(rng: np.random.Generator, mode: str, slots: int) -> list[str]:
    """Tonic on every other slot, other chords between, the dominant before the final tonic."""
    tonic, middle = ("I", _MAJOR_MIDDLE) if mode == "major" else ("i", _MINOR_MIDDLE)
    if slots == 1:
        return [tonic]
    if slots == 2:
        return [tonic, "V"]
    romans = [tonic if i % 2 == 0 else str(middle[int(rng.integers(len(middle)))]) for i in range(slots - 2)]
    return [*romans, "V", tonic]


def _sample_chords(rng, fields: dict, key: str, slots: int, slot_seconds: float, seconds: float) -> list[Chord]:
    mode, tonic = fields["mode"], fields["tonic"]
    degrees = _MAJOR_DEGREES if mode == "major" else _MINOR_DEGREES
    names = _FLAT_NAMES if key in _FLAT_KEYS else _SHARP_NAMES
    chords = []
    for i, roman in enumerate(_progression(rng, mode, slots)):
        offset, quality = degrees[roman]
        root = (tonic + offset) % 12
        start, end = i * slot_seconds, min((i + 1) * slot_seconds, seconds)
        chords.append(Chord(names[root] + ("m" if quality == "minor" else ""), roman, root, quality,
                            round(start, 6), round(end, 6)))
    return chords


def symbolic_key(notes) -> tuple[str, float]:
    """The key (cuecraft.audio.key's profiles) of the notes' pitch-class histogram, each note weighted by its
    velocity (as amplitude) and by how long it is heard (struck and plucked notes fade: AUDIBLE_SECONDS);
    and the margin of its score over the runner-up's."""
    histogram = np.zeros(12)
    for note in notes:
        heard = min(note.end - note.start, AUDIBLE_SECONDS.get(note.instrument, 1e9))
        histogram[note.pitch % 12] += heard * (note.velocity / 127.0) ** 1.5  # the amplitude render gives it
    name, scores = key_of_pitch_classes(histogram)
    ranked = sorted(scores.values(), reverse=True)
    return name, ranked[0] - ranked[1]


def _chord_pitch_classes(chord: Chord) -> tuple[int, int, int]:
    third = 4 if chord.quality == "major" else 3
    return chord.root, (chord.root + third) % 12, (chord.root + 7) % 12


def _in_range(pitch_class: int, low: int) -> int:
    """The pitch of ``pitch_class`` in [low, low + 12)."""
    return low + (pitch_class - low) % 12


def _sample_melody(rng, spec_fields: dict, chords: list[Chord], end_time: float) -> list[Note]:
    beat = 60.0 / spec_fields["bpm"]
    tonic, mode, lead = spec_fields["tonic"], spec_fields["mode"], spec_fields["lead"]
    scale = _MAJOR_SCALE if mode == "major" else _MINOR_SCALE
    low = 62 if lead != "bell" else 67  # the melody's register: about D4-D6
    tonic_pitch = _in_range(tonic, low + 5)
    allowed = [p for p in range(low, low + 25) if (p - tonic) % 12 in scale]
    subdivisions = spec_fields["subdivisions"]
    step = beat / subdivisions if SUBDIVIDE_MIN_BPM <= spec_fields["bpm"] <= FAST_BPM else beat
    per_beat = round(beat / step)  # steps per beat: 1, 2 or 3
    total_steps = math.ceil(end_time / step - 1e-9)
    notes, index, pitch = [], 0, tonic_pitch
    while index < total_steps:
        time = index * step
        chord = next((c for c in chords if c.start <= time + 1e-9 < c.end), chords[-1])
        on_beat = index % per_beat == 0
        if not notes:
            pitch = tonic_pitch
        elif on_beat:  # a chord tone near the last pitch
            tones = [p for p in allowed if p % 12 in _chord_pitch_classes(chord)]
            weights = np.exp(-np.abs(np.array(tones) - pitch) / 3.0)
            # the tonic and the key's third (major or minor: what tells the mode), where the chord holds them
            third = (tonic + (4 if mode == "major" else 3)) % 12
            weights *= np.where(np.array(tones) % 12 == tonic, 3.0, np.where(np.array(tones) % 12 == third, 2.0, 1.0))
            pitch = int(rng.choice(tones, p=weights / weights.sum()))
        else:  # a scale step, up or down
            position = allowed.index(pitch) if pitch in allowed else 0
            pitch = allowed[int(np.clip(position + rng.choice([-1, 1]), 0, len(allowed) - 1))]
        if on_beat:
            choices = (per_beat, per_beat, 2 * per_beat) + ((1,) if per_beat > 1 else ())
            length = int(rng.choice(choices))
        else:  # an off-beat note lasts until the next beat
            length = per_beat - index % per_beat
        last = (total_steps - index) * step <= 2 * beat + 1e-9
        if last:  # the last note: the tonic, held to the end
            pitch, length = tonic_pitch, total_steps - index
        velocity = int(rng.integers(88, 104)) if on_beat else int(rng.integers(62, 74))
        notes.append(Note(int(pitch), round(time, 6), round(min((index + length) * step, end_time), 6), velocity, lead))
        index += length
    return notes


def _sample_accompaniment(rng, fields: dict, chords: list[Chord]) -> list[Note]:
    beat = 60.0 / fields["bpm"]
    notes = []
    chord_instrument = fields["chord_instrument"]
    # struck and plucked chords are re-struck on every beat, and so is every chord at fast tempos
    sustained = chord_instrument in SUSTAINING and fields["bpm"] <= FAST_BPM
    for chord in chords:
        pitches = sorted(_in_range(pc, 55) for pc in _chord_pitch_classes(chord))
        onsets = [chord.start] if sustained else list(np.arange(chord.start, chord.end - 1e-9, beat))
        for onset in onsets:
            end = chord.end if sustained else min(onset + 0.9 * beat, chord.end)
            for pitch in pitches:
                notes.append(Note(pitch, round(float(onset), 6), round(float(end), 6), 62, chord_instrument))
        if fields["bass"]:
            root = _in_range(chord.root, 40)  # E2-D#3
            for onset in np.arange(chord.start, chord.end - 1e-9, beat):
                notes.append(Note(root, round(float(onset), 6), round(float(min(onset + 0.8 * beat, chord.end)), 6),
                                  96, BASS_INSTRUMENT))
    return notes


def _sample_drums(rng, fields: dict, n_beats: int) -> list[DrumHit]:
    beat, per_bar, pattern = 60.0 / fields["bpm"], fields["beats_per_bar"], fields["drum_pattern"]
    subdivide = SUBDIVIDE_MIN_BPM <= fields["bpm"] <= FAST_BPM
    hits = []
    for b in range(n_beats):
        t, position = b * beat, b % per_bar
        if pattern == "driving":
            hits.extend([DrumHit("kick", t, 110), DrumHit("snare", t, 70)])
        elif pattern == "four on the floor" or pattern == "six-eight":
            hits.append(DrumHit("kick", t, 110))
            if position % 2 == 1:
                hits.append(DrumHit("snare", t, 100))
        elif pattern == "waltz":
            hits.append(DrumHit("kick" if position == 0 else "snare", t, 110 if position == 0 else 90))
        else:  # rock / pop: kick on 1 and 3, snare on 2 and 4 (pop adds a kick before 3)
            hits.append(DrumHit("kick" if position % 2 == 0 else "snare", t, 110 if position % 2 == 0 else 105))
        hits.append(DrumHit("hat", t, 80))
        if subdivide or fields["subdivisions"] == 3:  # slow 6/8 keeps its eighths, barely heard
            for s in range(1, fields["subdivisions"]):
                hits.append(DrumHit("hat", t + s * beat / fields["subdivisions"], 45 if subdivide else 25))
        if pattern == "pop" and position == 1 and fields["subdivisions"] == 2 and subdivide:
            hits.append(DrumHit("kick", t + beat / 2, 70))
    return [DrumHit(h.kind, round(h.time, 6), h.velocity) for h in hits]


def sample_piece(seed: int, *, seconds: float = 8.0) -> PieceSpec:
    """A random piece, deterministic from ``seed`` (an int >= 0), ``seconds`` long (1-600 s)."""
    _check_seed_and_seconds(seed, seconds)
    seconds = float(seconds)
    rng = np.random.default_rng(int(seed))
    probabilities = np.array([t[3] for t in TIME_SIGNATURES])
    ts_name, per_bar, subdivisions, _, (bpm_low, bpm_high) = TIME_SIGNATURES[
        int(rng.choice(len(TIME_SIGNATURES), p=probabilities / probabilities.sum()))]
    bpm = int(rng.integers(bpm_low, bpm_high + 1))
    key = KEYS[int(rng.integers(24))]
    tonic, mode = KEYS.index(key) % 12, ("major", "minor")[KEYS.index(key) // 12]
    assert KEYS[key_index(tonic, mode)] == key
    lead = str(rng.choice(LEAD_INSTRUMENTS))
    chord_instrument = str(rng.choice([c for c in CHORD_INSTRUMENTS if c != lead]))
    drums = bool(rng.random() < DRUMS_PROBABILITY)
    fields = dict(bpm=bpm, tonic=tonic, mode=mode, lead=lead, chord_instrument=chord_instrument, drums=drums,
                  bass=bool(rng.random() < BASS_PROBABILITY), beats_per_bar=per_bar, subdivisions=subdivisions,
                  drum_pattern=None)
    if drums:
        pattern = str(rng.choice(DRUM_PATTERNS[ts_name]))
        fields["drum_pattern"] = FAST_PATTERN if bpm > FAST_BPM else pattern
    beat = 60.0 / bpm
    n_beats = math.ceil(seconds / beat - 1e-9)
    n_bars = math.ceil(n_beats / per_bar)
    # one chord per bar; two per bar where that leaves fewer than four chords and the bar halves
    slot_beats = per_bar if n_bars >= 4 or per_bar % 2 else per_bar // 2
    slots = math.ceil(n_beats / slot_beats)
    for _ in range(MAX_ATTEMPTS):  # until the notes alone say the key clearly (else the last attempt is kept)
        chords = _sample_chords(rng, fields, key, slots, slot_beats * beat, seconds)
        melody = _sample_melody(rng, fields, chords, seconds)
        accompaniment = _sample_accompaniment(rng, fields, chords)
        name, margin = symbolic_key(melody + accompaniment)
        if name == key and margin >= KEY_MARGIN:
            break
    drum_hits = _sample_drums(rng, fields, n_beats) if drums else []
    beats = tuple(round(b * beat, 6) for b in range(n_beats))
    instruments = (lead, chord_instrument) + ((BASS_INSTRUMENT,) if fields["bass"] else ())
    moods = moods_of(bpm, mode)
    genre = genre_of(bpm, ts_name, drums, fields["drum_pattern"])
    description = describe(rng, bpm=bpm, key=key, time_signature=ts_name, lead=lead, instruments=instruments,
                           drums=drums, drum_pattern=fields["drum_pattern"], moods=moods, genre=genre)
    return PieceSpec(
        seed=int(seed), seconds=seconds, bpm=bpm, key=key, tonic=tonic, mode=mode, time_signature=ts_name,
        beats_per_bar=per_bar, subdivisions=subdivisions, instruments=instruments, lead=lead,
        chord_instrument=chord_instrument, bass=fields["bass"], drums=drums, drum_pattern=fields["drum_pattern"],
        chords=tuple(chords), melody=tuple(melody), accompaniment=tuple(accompaniment), drum_hits=tuple(drum_hits),
        beats=beats, downbeats=beats[::per_bar], genre=genre, moods=moods, description=description)
