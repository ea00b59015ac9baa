"""Key names, the key parser and the chroma key estimate."""

import numpy as np
import pytest
import torch

from cuecraft.audio.key import (KEYS, estimate_key, key_chroma, key_index, key_of_pitch_classes, key_parts,
                                key_profiles, parse_key)
from cuecraft.errors import ConditioningInputError

SR = 16000


def test_24_canonical_keys():
    assert len(KEYS) == 24 and len(set(KEYS)) == 24
    assert KEYS[0] == "C major" and KEYS[9] == "A major" and KEYS[12 + 9] == "A minor"
    assert all(parse_key(k) == k for k in KEYS)
    assert key_index(1, "major") == KEYS.index("Db major") and key_index(1, "minor") == KEYS.index("C# minor")


@pytest.mark.parametrize("text, expected", [
    ("Am", "A minor"), ("A min", "A minor"), ("a minor", "A minor"), ("A:minor", "A minor"), ("A_min", "A minor"),
    ("Bb major", "Bb major"), ("Bb", "Bb major"), ("A# major", "Bb major"), ("A#m", "Bb minor"),
    ("F# maj", "F# major"), ("Gb major", "F# major"), ("E♭ minor", "Eb minor"), ("D#m", "Eb minor"),
    ("Db minor", "C# minor"), ("Cb", "B major"), ("B#m", "C minor"), ("  c  ", "C major"), ("AM", "A major"),
    ("G sharp minor", "G# minor"), ("E flat", "Eb major"),
])
def test_parse_key_spellings(text, expected):
    assert parse_key(text) == expected


@pytest.mark.parametrize("text", ["H", "Am7", "A dorian", "", "major", "A##", 7, None])
def test_parse_key_rejects_with_allowed_forms(text):
    with pytest.raises(ConditioningInputError) as error:
        parse_key(text)
    message = str(error.value)
    assert "A minor" in message and (isinstance(text, str) is False or repr(text) in message)


def test_key_parts():
    assert key_parts("F#m") == (6, "minor") and key_parts("Eb") == (3, "major")


def test_profiles_rotate_onto_their_tonics():
    for name in ("temperley", "krumhansl"):
        table = key_profiles(name)
        assert table.shape == (24, 12)
        assert torch.equal(table[2], torch.roll(table[0], 2)) and torch.equal(table[12 + 9], torch.roll(table[12], 9))
    with pytest.raises(ConditioningInputError, match="krumhansl"):
        key_profiles("shepard")


def _tone(midi: int, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum(np.sin(2 * np.pi * f * k * t) / k**2 for k in range(1, 5))
    return amplitude * wave * np.exp(-1.5 * t)


def _cadence(tonic: int, mode: str) -> np.ndarray:
    """I-IV-V-I (minor: i-iv-V-i with the leading tone), bass on roots, 0.75 s per chord."""
    third = 4 if mode == "major" else 3
    chords = [(0, third), (5, 4 if mode == "major" else 3), (7, 4), (0, third)]
    parts = []
    for root, chord_third in chords:
        r = 48 + (tonic + root) % 12
        chord = _tone(r - 12, 0.75, 0.5) + sum(_tone(r + i, 0.75) for i in (0, chord_third, 7)) + _tone(r + 12, 0.75)
        parts.append(chord)
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("key", ["C major", "A minor", "Eb major", "F# minor", "G major", "Bb minor", "E major",
                                 "C# minor"])
def test_estimate_key_on_cadences(key):
    tonic, mode = key_parts(key)
    wav = torch.from_numpy(_cadence(tonic, mode))
    name, scores = estimate_key(wav, SR)
    assert name == key
    assert list(scores) == list(KEYS) and scores[key] == max(scores.values()) and scores[key] > 0.6
    stereo, _ = estimate_key(torch.stack([wav, wav]), SR)  # [C, T]
    assert stereo == key


def test_key_chroma_finds_the_played_pitch_class():
    chroma = key_chroma(torch.from_numpy(_tone(69, 1.0).astype(np.float32)), SR)  # an A
    assert chroma.shape == (12,) and int(chroma.argmax()) == 9 and float(chroma.max()) == 1.0


def test_silence_and_bad_input():
    name, scores = estimate_key(torch.zeros(SR), SR)
    assert name == KEYS[0] and set(scores.values()) == {0.0}
    with pytest.raises(ConditioningInputError):
        estimate_key(torch.zeros(2, 2, 10), SR)
    with pytest.raises(ConditioningInputError):
        estimate_key(torch.zeros(100, dtype=torch.int16), SR)
    with pytest.raises(ConditioningInputError):
        estimate_key(torch.full((SR,), float("nan")), SR)
    with pytest.raises(ConditioningInputError):
        estimate_key(torch.zeros(SR), 0)


def test_symbolic_key():
    histogram = np.zeros(12)
    histogram[[9, 0, 4]] = [3.0, 2.0, 2.0]  # an A minor triad, tonic strongest
    histogram[[2, 11, 5, 8]] = 0.5  # D, B, F, G#: harmonic minor
    name, scores = key_of_pitch_classes(histogram)
    assert name == "A minor" and scores["A minor"] > scores["C major"] > 0
