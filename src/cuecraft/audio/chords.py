"""Chord symbols: a parser for the spellings people and datasets write, and their pitch classes.

A symbol is a root (a letter A-G, any case for the letter, then ``#``/``b``/``♯``/``♭``, each
any number of times), an optional ``:`` (Harte's ``A:min``), a quality and an optional ``/bass``
(a note name: its pitch class joins the chord's). ``N``, ``NC``, ``N.C.`` and ``X`` mean no
chord. Qualities (intervals in semitones above the root):

| quality | spellings | intervals |
|---|---|---|
| major | ``""``, ``maj``, ``M`` | 0 4 7 |
| minor | ``m``, ``min``, ``-`` | 0 3 7 |
| 7 (dominant) | ``7``, ``dom7`` | 0 4 7 10 |
| maj7 | ``maj7``, ``M7``, ``Δ``, ``Δ7`` | 0 4 7 11 |
| m7 | ``m7``, ``min7``, ``-7`` | 0 3 7 10 |
| mmaj7 | ``mmaj7``, ``minmaj7``, ``mM7`` | 0 3 7 11 |
| dim | ``dim``, ``°``, ``o`` | 0 3 6 |
| dim7 | ``dim7``, ``°7``, ``o7`` | 0 3 6 9 |
| m7b5 (half-diminished) | ``m7b5``, ``hdim7``, ``ø``, ``ø7`` | 0 3 6 10 |
| aug | ``aug``, ``+`` | 0 4 8 |
| sus2 | ``sus2`` | 0 2 7 |
| sus4 | ``sus4``, ``sus`` | 0 5 7 |
| 6, m6 | ``6``, ``maj6``; ``m6``, ``min6`` | 0 4 7 9; 0 3 7 9 |
| 9, maj9, m9 | ``9``; ``maj9``; ``m9``, ``min9`` | 0 4 7 10 2; 0 4 7 11 2; 0 3 7 10 2 |
| add9 | ``add9`` | 0 4 7 2 |
| 5 (power chord) | ``5`` | 0 7 |

Anything else is a ConditioningInputError naming the symbol and these qualities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from cuecraft._text import short_repr
from cuecraft.errors import ConditioningInputError

PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTALS = {"#": 1, "♯": 1, "b": -1, "♭": -1}
NO_CHORD = ("N", "NC", "N.C.", "X")

QUALITIES: dict[str, tuple[int, ...]] = {
    "major": (0, 4, 7), "minor": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "m7": (0, 3, 7, 10),
    "mmaj7": (0, 3, 7, 11), "dim": (0, 3, 6), "dim7": (0, 3, 6, 9), "m7b5": (0, 3, 6, 10), "aug": (0, 4, 8),
    "sus2": (0, 2, 7), "sus4": (0, 5, 7), "6": (0, 4, 7, 9), "m6": (0, 3, 7, 9), "9": (0, 4, 7, 10, 2),
    "maj9": (0, 4, 7, 11, 2), "m9": (0, 3, 7, 10, 2), "add9": (0, 4, 7, 2), "5": (0, 7),
}
_SPELLINGS = {
    "": "major", "maj": "major", "M": "major", "m": "minor", "min": "minor", "-": "minor",
    "7": "7", "dom7": "7", "maj7": "maj7", "M7": "maj7", "Δ": "maj7", "Δ7": "maj7",
    "m7": "m7", "min7": "m7", "-7": "m7", "mmaj7": "mmaj7", "minmaj7": "mmaj7", "mM7": "mmaj7",
    "dim": "dim", "°": "dim", "o": "dim", "dim7": "dim7", "°7": "dim7", "o7": "dim7",
    "m7b5": "m7b5", "hdim7": "m7b5", "ø": "m7b5", "ø7": "m7b5", "aug": "aug", "+": "aug",
    "sus2": "sus2", "sus4": "sus4", "sus": "sus4", "6": "6", "maj6": "6", "m6": "m6", "min6": "m6",
    "9": "9", "maj9": "maj9", "m9": "m9", "min9": "m9", "add9": "add9", "5": "5",
}
_SYMBOL = re.compile(r"^([A-Ga-g])([#♯b♭]*):?(.*?)(?:/([A-Ga-g])([#♯b♭]*))?$")
ALLOWED = ("a root A-G with optional # or b, then a quality (" + ", ".join(QUALITIES)
           + "; e.g. Am, F#7, Bbmaj7, C:min7, Ddim, Eaug, Gsus4, C/E) or N for no chord")


@dataclass(frozen=True)
class ChordSymbol:
    """A parsed chord: root pitch class (0 = C; None for no chord), quality name, its pitch
    classes (root first, then the quality's other intervals, then a slash bass) and the bass."""

    root: int | None
    quality: str
    pitch_classes: tuple[int, ...]
    bass: int | None = None

    @property
    def is_no_chord(self) -> bool:
        return self.root is None


NO_CHORD_SYMBOL = ChordSymbol(None, "N", ())


def _pitch_class(letter: str, accidentals: str) -> int:
    return (_LETTERS[letter.upper()] + sum(_ACCIDENTALS[a] for a in accidentals)) % 12


@lru_cache(maxsize=4096)
def parse_chord(symbol: str) -> ChordSymbol:
    """A chord symbol ("Am", "F#7", "Bbmaj7", "C:min", "C/E", "N") -> ChordSymbol.

    The root letter may be lower case ("am" is A minor); a quality is case-sensitive where case
    is its meaning (``M7`` maj7, ``m7`` minor 7). Unknown symbols are a ConditioningInputError.
    """
    if not isinstance(symbol, str):
        raise ConditioningInputError(f"a chord symbol must be a str; got {type(symbol).__name__} {short_repr(symbol)}")
    text = symbol.strip()
    if text.upper() in NO_CHORD:
        return NO_CHORD_SYMBOL
    match = _SYMBOL.match(text)
    quality = _SPELLINGS.get(match.group(3)) if match else None
    if match is None or quality is None:
        raise ConditioningInputError(f"cannot read the chord {short_repr(symbol)}; a chord is {ALLOWED}")
    root = _pitch_class(match.group(1), match.group(2))
    classes = [(root + step) % 12 for step in QUALITIES[quality]]
    bass = None
    if match.group(4):
        bass = _pitch_class(match.group(4), match.group(5))
        if bass not in classes:
            classes.append(bass)
    return ChordSymbol(root, quality, tuple(dict.fromkeys(classes)), bass)


def chord_name(chord: ChordSymbol) -> str:
    """A short name of a parsed chord: "A minor", "F# 7", "N"."""
    if chord.root is None:
        return "N"
    return f"{PITCH_CLASS_NAMES[chord.root]} {chord.quality}"
