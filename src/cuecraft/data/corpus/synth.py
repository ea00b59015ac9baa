"""cuecraft's own instruments: one note -> a numpy waveform, vectorised over samples.

Three methods (``Timbre.method``):
- additive: a sum of (nearly) harmonic partials, each with its own exponential decay;
- fm: frequency modulation (Chowning), a sine carrier whose phase is modulated by a sine at a
  ratio of its frequency, with a decaying modulation index (the bright attack of a struck tine);
- karplus-strong: a noise burst in a damped delay loop (the plucked string), run as one IIR filter
  (scipy's lfilter) whose loop holds an averaging low-pass and a first-order all-pass for the
  fractional part of the period, so the pitch is exact.

Every note is ``duration`` seconds of sound plus a release tail (``RELEASE`` or ``TAILS`` seconds).
"""

from __future__ import annotations

import numpy as np

from cuecraft._optional import require

RELEASE = 0.25  # seconds of tail rendered after a note ends (struck and plucked voices: TAILS)
TAILS = {"marimba": 0.6, "bell": 1.0, "harp": 0.8, "guitar": 0.4}
FADE = 0.01  # seconds: the last of a tail fades out linearly, so cutting it never clicks


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def _envelope(t: np.ndarray, duration: float, attack: float, release: float) -> np.ndarray:
    """Linear attack, sustain, exponential release after ``duration``: [n]."""
    rise = np.minimum(t / attack, 1.0)
    fall = np.exp(-np.maximum(t - duration, 0.0) / release)
    return rise * fall


def _partials(t: np.ndarray, f0: float, sample_rate: int, ratios, amplitudes, decays, phases=None) -> np.ndarray:
    """Sum of sines at f0 * ratio with exp(-decay * t) envelopes, skipping those above Nyquist."""
    out = np.zeros_like(t)
    for i, (ratio, amplitude, decay) in enumerate(zip(ratios, amplitudes, decays)):
        frequency = f0 * ratio
        if frequency >= 0.45 * sample_rate:
            continue
        phase = 0.0 if phases is None else phases[i]
        # only where the partial is above -60 dB (exp(-6.9) = 0.001)
        n = t.shape[0] if decay <= 0 else min(t.shape[0], int(6.9 / decay * sample_rate) + 1)
        span = t[:n]
        out[:n] += amplitude * np.exp(-decay * span) * np.sin(2 * np.pi * frequency * span + phase)
    return out


def _piano(t, f0, duration, sample_rate, rng):
    k = np.arange(1, 11)
    ratios = k * np.sqrt(1 + 0.0004 * k**2)  # stiff-string inharmonicity
    tone = _partials(t, f0, sample_rate, ratios, 1.0 / k**1.3, 1.0 + 0.7 * k)
    return tone * _envelope(t, duration, 0.003, 0.08)


def _organ(t, f0, duration, sample_rate, rng):
    ratios = (1, 2, 3, 4, 6, 8)
    tone = _partials(t, f0, sample_rate, ratios, (1.0, 0.7, 0.45, 0.35, 0.2, 0.12), (0.0,) * 6)
    return tone * _envelope(t, duration, 0.012, 0.05)


def _string_pad(t, f0, duration, sample_rate, rng):
    k = np.arange(1, 13)
    tone = np.zeros_like(t)
    for cents, phase in ((-7.0, 0.0), (0.0, 1.3), (7.0, 2.6)):  # three detuned sawtooths
        tone += _partials(t, f0 * 2 ** (cents / 1200), sample_rate, k, 1.0 / k, np.zeros(12), phase * k)
    return 0.45 * tone * _envelope(t, duration, 0.12, 0.25)


def _bass(t, f0, duration, sample_rate, rng):
    k = np.arange(1, 7)
    tone = _partials(t, f0, sample_rate, k, 1.0 / k**1.6, 2.0 + 1.5 * k)
    return tone * _envelope(t, duration, 0.004, 0.05)


def _flute(t, f0, duration, sample_rate, rng):
    vibrato = 0.004 * np.minimum(t / 0.3, 1.0) * np.sin(2 * np.pi * 5.0 * t)
    phase = 2 * np.pi * f0 * (t + np.cumsum(vibrato) / sample_rate)
    tone = np.sin(phase) + 0.25 * np.sin(2 * phase) + 0.08 * np.sin(3 * phase)
    breath = 0.03 * rng.standard_normal(t.shape[0])
    return (tone + breath) * _envelope(t, duration, 0.04, 0.06)


def _lead_synth(t, f0, duration, sample_rate, rng):
    vibrato = 0.003 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * f0 * (t + np.cumsum(vibrato) / sample_rate)
    tone = np.zeros_like(t)
    for k in range(1, 16, 2):  # a band-limited square wave
        if f0 * k < 0.45 * sample_rate:
            tone += np.sin(k * phase) / k
    return 0.7 * tone * _envelope(t, duration, 0.008, 0.06)


def _marimba(t, f0, duration, sample_rate, rng):
    tone = _partials(t, f0, sample_rate, (1.0, 3.93, 9.2), (1.0, 0.25, 0.06), (5.0, 18.0, 40.0))
    return tone * _envelope(t, duration + 1.0, 0.002, 0.1)  # struck: rings past the note's end


def _fm(t, f0, sample_rate, ratio, index, index_decay):
    modulator = (index * np.exp(-index_decay * t)) * np.sin(2 * np.pi * f0 * ratio * t)
    return np.sin(2 * np.pi * f0 * t + modulator)


def _electric_piano(t, f0, duration, sample_rate, rng):
    tone = _fm(t, f0, sample_rate, 1.0, 2.2, 5.0) * np.exp(-1.2 * t)
    return tone * _envelope(t, duration, 0.002, 0.1)


def _bell(t, f0, duration, sample_rate, rng):
    tone = _fm(t, f0, sample_rate, 2.0, 1.6, 3.0) * np.exp(-1.5 * t)
    return tone * _envelope(t, duration + 0.5, 0.002, 0.2)


def _karplus_strong(t, f0, duration, sample_rate, rng, *, loop_gain: float, brightness: float):
    signal = require("scipy.signal", extra="data", purpose="the plucked-string synthesis of the corpus")
    delay = sample_rate / f0 - 0.5  # the two-point average delays by half a sample
    period = int(np.floor(delay - 0.1))
    fraction = delay - period  # in [0.1, 1.1): the all-pass's delay
    c = (1.0 - fraction) / (1.0 + fraction)
    # y = x + g * z^-P * (1 + z^-1) / 2 * A(z) y, A(z) = (c + z^-1) / (1 + c z^-1)
    a = np.zeros(period + 3)
    a[0], a[1] = 1.0, c
    a[period] -= loop_gain * c / 2
    a[period + 1] -= loop_gain * (1 + c) / 2
    a[period + 2] -= loop_gain / 2
    b = np.array([1.0, c])
    burst = rng.uniform(-1.0, 1.0, period)
    burst = brightness * burst + (1 - brightness) * np.concatenate([[0.0], burst[:-1]])  # duller for low brightness
    excitation = np.zeros(t.shape[0])
    excitation[:period] = burst[: t.shape[0]]
    tone = signal.lfilter(b, a, excitation)
    return tone * _envelope(t, duration, 0.001, 0.06)


def _guitar(t, f0, duration, sample_rate, rng):
    return 0.8 * _karplus_strong(t, f0, duration, sample_rate, rng, loop_gain=0.995, brightness=0.6)


def _harp(t, f0, duration, sample_rate, rng):
    return 0.8 * _karplus_strong(t, f0, duration + 0.6, sample_rate, rng, loop_gain=0.998, brightness=0.9)


_VOICES = {
    "piano": _piano, "electric piano": _electric_piano, "marimba": _marimba, "bell": _bell, "organ": _organ,
    "guitar": _guitar, "bass": _bass, "harp": _harp, "string pad": _string_pad, "flute": _flute,
    "lead synth": _lead_synth,
}


# voices that draw no noise: a note of theirs is a function of (pitch, duration, length) alone
DETERMINISTIC = ("piano", "electric piano", "marimba", "bell", "organ", "bass", "string pad", "lead synth")


def render_note(instrument: str, pitch: int, duration: float, velocity: int, sample_rate: int,
                rng: np.random.Generator, *, max_samples: int, cache: dict | None = None) -> np.ndarray:
    """One note of ``instrument``: float64 [n], n = min(samples of duration + its tail, max_samples).

    ``cache``: a dict kept across the notes of one piece; repeated notes of DETERMINISTIC voices
    are rendered once (velocity only scales them).
    """
    full = int(round((duration + TAILS.get(instrument, RELEASE)) * sample_rate))
    n = min(full, max_samples)
    if n <= 0:
        return np.zeros(0)
    gain = (velocity / 127.0) ** 1.5
    key = (instrument, pitch, round(duration * sample_rate), n)
    if cache is not None and instrument in DETERMINISTIC:
        if key not in cache:
            cache[key] = _shape(instrument, pitch, duration, sample_rate, rng, n, full)
        return gain * cache[key]
    return gain * _shape(instrument, pitch, duration, sample_rate, rng, n, full)


def _shape(instrument: str, pitch: int, duration: float, sample_rate: int, rng, n: int, full: int) -> np.ndarray:
    t = np.arange(n) / sample_rate
    tone = _VOICES[instrument](t, midi_to_hz(pitch), duration, sample_rate, rng)
    fade = min(int(FADE * sample_rate), full)
    if full - fade < n:  # the fade of the full tail falls inside what is kept
        tone *= np.clip((full - np.arange(n)) / fade, 0.0, 1.0)
    return tone

