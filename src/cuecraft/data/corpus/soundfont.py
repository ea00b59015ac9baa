"""Rendering a PieceSpec through a General MIDI soundfont: pretty_midi builds the MIDI, tinysoundfont
(MIT) plays it.

The synthesiser of a (soundfont, sample rate) pair is loaded once per process and reset before
every piece (all voices stopped, channels reset), so a piece renders the same whatever was
rendered before it. Events are sent at exact sample positions (note-offs before note-ons at the
same sample); release tails sound until the end of the piece.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from cuecraft._optional import require
from cuecraft.data.corpus.spec import BASS_INSTRUMENT, DRUM_KEYS, PALETTE, PieceSpec
from cuecraft.errors import ConditioningInputError

DRUM_CHANNEL = 9  # General MIDI percussion (channel 10, 0-based 9)
VOLUMES = {"lead": 105, "chord": 100, "bass": 90, "drums": 95}  # MIDI CC 7 per role


def build_midi(spec: PieceSpec):
    """The piece as a ``pretty_midi.PrettyMIDI``: one instrument per role (lead, chords, bass, drums)."""
    pretty_midi = require("pretty_midi", extra="data", purpose="building the MIDI of a corpus piece")
    midi = pretty_midi.PrettyMIDI(initial_tempo=float(spec.bpm))
    numerator, denominator = (int(x) for x in spec.time_signature.split("/"))
    midi.time_signature_changes.append(pretty_midi.TimeSignature(numerator, denominator, 0.0))
    parts: dict[str, object] = {}

    def part(role: str, instrument: str, is_drum: bool = False):
        if role not in parts:
            program = 0 if is_drum else PALETTE[instrument].gm_program
            parts[role] = pretty_midi.Instrument(program=program, is_drum=is_drum, name=f"{role}: {instrument}")
            midi.instruments.append(parts[role])
        return parts[role]

    for note in spec.melody:
        part("lead", note.instrument).notes.append(pretty_midi.Note(note.velocity, note.pitch, note.start, note.end))
    for note in spec.accompaniment:
        role = "bass" if note.instrument == BASS_INSTRUMENT else "chord"
        part(role, note.instrument).notes.append(pretty_midi.Note(note.velocity, note.pitch, note.start, note.end))
    for hit in spec.drum_hits:
        part("drums", "drums", is_drum=True).notes.append(
            pretty_midi.Note(hit.velocity, DRUM_KEYS[hit.kind], hit.time, hit.time + 0.1))
    return midi


@lru_cache(maxsize=4)
def _synth(path: str, sample_rate: int):
    tinysoundfont = require("tinysoundfont", extra="data", purpose="rendering the corpus through a soundfont")
    synth = tinysoundfont.Synth(samplerate=sample_rate)
    try:
        sfid = synth.sfload(path)
    except Exception as error:  # tinysoundfont raises a bare Exception / SoundFontException
        raise ConditioningInputError(f"{path}: cannot load the soundfont ({error})") from None
    return synth, sfid


def _silence(synth, sfid: int, sample_rate: int) -> None:
    """Reset every channel and let every voice die: tsf_reset only starts a quick release, so
    half a second is rendered and dropped (nothing sounds after it)."""
    synth.soundfonts[sfid].reset()
    synth.generate_simple(sample_rate // 2)


def check_soundfont(soundfont: str | os.PathLike[str]) -> str:
    path = Path(soundfont).expanduser()
    if not path.is_file():
        raise ConditioningInputError(f"soundfont {os.fspath(soundfont)!r}: no such file (give a General MIDI "
                                     f".sf2 or .sf3, e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2)")
    if path.suffix.lower() not in (".sf2", ".sf3", ".sfo"):
        raise ConditioningInputError(f"soundfont {os.fspath(soundfont)!r}: expected a .sf2, .sf3 or .sfo file")
    return str(path.resolve())


def render_soundfont(spec: PieceSpec, sample_rate: int, soundfont: str | os.PathLike[str]) -> np.ndarray:
    """``spec`` through ``soundfont``: float64 [T] (the stereo output averaged), not normalised."""
    synth, sfid = _synth(check_soundfont(soundfont), sample_rate)
    _silence(synth, sfid, sample_rate)
    midi = build_midi(spec)
    events = []  # (sample, 0 = off / 1 = on, channel, key, velocity)
    melodic = iter(c for c in range(16) if c != DRUM_CHANNEL)
    for instrument in midi.instruments:
        channel = DRUM_CHANNEL if instrument.is_drum else next(melodic)
        synth.program_select(channel, sfid, 0, 0 if instrument.is_drum else instrument.program,
                             is_drums=instrument.is_drum)
        role = instrument.name.split(":")[0]
        synth.control_change(channel, 7, VOLUMES[role])
        for note in instrument.notes:
            events.append((int(round(note.start * sample_rate)), 1, channel, note.pitch, note.velocity))
            events.append((int(round(note.end * sample_rate)), 0, channel, note.pitch, 0))
    events.sort()
    total = int(round(spec.seconds * sample_rate))
    out = np.zeros((total, 2), dtype=np.float32)
    position = 0
    for sample, on, channel, key, velocity in [*events, (total, 0, -1, 0, 0)]:
        sample = min(sample, total)
        if sample > position:
            block = synth.generate_simple(sample - position)
            out[position:sample] = np.frombuffer(block, dtype=np.float32).reshape(-1, 2)
            position = sample
        if channel < 0 or sample >= total:
            continue
        if on:
            synth.noteon(channel, key, velocity)
        else:
            synth.noteoff(channel, key)
    _silence(synth, sfid, sample_rate)
    return out.astype(np.float64).mean(axis=1)
