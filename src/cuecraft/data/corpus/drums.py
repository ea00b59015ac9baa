"""Synthesised drums: a kick (a falling sine), a snare (a tone and noise) and a hi-hat (bright noise).

Each kind is rendered once per piece from the piece's noise generator, then scaled by velocity
at every hit, so a piece's hits of one kind are identical apart from level (as a drum machine's).
"""

from __future__ import annotations

import numpy as np


def _kick(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.35 * sample_rate)) / sample_rate
    frequency = 50.0 + 110.0 * np.exp(-t / 0.03)  # Hz, a fast fall from 160 to 50
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    click = 0.3 * rng.standard_normal(t.shape[0]) * np.exp(-t / 0.002)
    return (np.sin(phase) * np.exp(-t / 0.12) + click) * 1.0


def _snare(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.25 * sample_rate)) / sample_rate
    noise = rng.standard_normal(t.shape[0])
    noise = noise - np.concatenate([[0.0], noise[:-1]]) * 0.6  # tilt the noise towards the highs
    tone = np.sin(2 * np.pi * 185.0 * t) * np.exp(-t / 0.05)
    return 0.5 * tone + 0.45 * noise * np.exp(-t / 0.06)


def _hat(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.08 * sample_rate)) / sample_rate
    noise = rng.standard_normal(t.shape[0])
    bright = noise - np.concatenate([[0.0], noise[:-1]])  # a first difference: a high-pass
    return 0.35 * bright * np.exp(-t / 0.015)


_DRUMS = {"kick": _kick, "snare": _snare, "hat": _hat}
DRUM_GAIN = {"kick": 0.9, "snare": 0.6, "hat": 0.35}


def drum_sounds(sample_rate: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One waveform per drum kind, float64 [n], drawn from ``rng`` in a fixed order."""
    return {kind: DRUM_GAIN[kind] * make(sample_rate, rng) for kind, make in _DRUMS.items()}
