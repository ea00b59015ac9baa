"""Test signals synthesised in code: tones, chords, melodies of known notes, a drum loop.

All return float32 NumPy arrays [T] at the sample rate given; pitches are MIDI numbers
(60 = C4 = 261.63 Hz); pitch class = midi % 12 (0 = C).
"""

from __future__ import annotations

import numpy as np

C_MAJOR = (60, 64, 67)  # C4, E4, G4
SCALE = (60, 62, 64, 65, 67, 69, 71, 72)  # C major, C4 to C5


def hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def tone(midi: float, seconds: float, sample_rate: int, partials=(1.0, 0.5, 0.25)) -> np.ndarray:
    """A harmonic tone with 10 ms fades: partial k (from 1) at k times the pitch, amplitude a_k."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    fade = np.clip(np.minimum(t, seconds - t) / 0.01, 0.0, 1.0)
    wave = sum(a * np.sin(2 * np.pi * hz(midi) * (k + 1) * t) for k, a in enumerate(partials))
    return (fade * wave).astype(np.float32)


def chord(midis, seconds: float, sample_rate: int) -> np.ndarray:
    """Pure sines at the given pitches, summed."""
    return sum(tone(m, seconds, sample_rate, partials=(1.0,)) for m in midis).astype(np.float32)


def melody(midis, note_seconds: float, sample_rate: int, level: float = 1.0) -> np.ndarray:
    """The notes one after another, ``note_seconds`` each."""
    return (level * np.concatenate([tone(m, note_seconds, sample_rate) for m in midis])).astype(np.float32)


def drums(n_samples: int, sample_rate: int, beat_seconds: float = 0.25, seed: int = 0) -> np.ndarray:
    """A drum loop: a kick (150 -> 50 Hz sweep) and a snare (noise burst) alternating on the
    beats, a hi-hat (differentiated noise, 30 ms) on every beat."""
    rng = np.random.default_rng(seed)
    out = np.zeros(n_samples)
    for i, start in enumerate(range(0, n_samples, int(beat_seconds * sample_rate))):
        t = np.arange(min(int(0.15 * sample_rate), n_samples - start)) / sample_rate
        if i % 2 == 0:
            frequency = 50 + 100 * np.exp(-t / 0.03)
            out[start: start + len(t)] += 1.5 * np.sin(2 * np.pi * np.cumsum(frequency) / sample_rate) * np.exp(-t / 0.08)
        else:
            out[start: start + len(t)] += rng.standard_normal(len(t)) * np.exp(-t / 0.04)
        h = np.arange(min(int(0.03 * sample_rate), n_samples - start)) / sample_rate
        out[start: start + len(h)] += 0.5 * np.diff(rng.standard_normal(len(h) + 1)) * np.exp(-h / 0.01)
    return out.astype(np.float32)
