"""Each adherence metric on audio with a known answer, and against mir_eval where it defines the number."""

from __future__ import annotations

import math

import mir_eval
import numpy as np
import pytest
import torch

from cuecraft.audio.beats import estimate_tempo
from cuecraft.audio.key import estimate_key
from cuecraft.errors import EvaluationInputError
from cuecraft.eval.key import key_scores, relative_key
from cuecraft.eval.melody import chroma_cosine, notes_f0, pitch_accuracy, pitch_track
from cuecraft.eval.rhythm import beat_f_measure, onset_f1, onset_times
from cuecraft.eval.tempo import tempo_bin, tempo_scores, within_tolerance

RATE = 16000


def clicks(bpm: float, seconds: float = 8.0) -> np.ndarray:
    wav = np.zeros(int(seconds * RATE), dtype=np.float32)
    burst = (np.random.default_rng(0).standard_normal(160) * np.hanning(160)).astype(np.float32)
    for t in np.arange(0.1, seconds - 0.05, 60.0 / bpm):
        start = int(t * RATE)
        wav[start:start + 160] += burst
    return wav


def tones(midi_notes, seconds_each: float = 0.4, harmonics: int = 3) -> np.ndarray:
    t = np.arange(int(seconds_each * RATE)) / RATE
    envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    parts = []
    for note in midi_notes:
        f = 440.0 * 2 ** ((note - 69) / 12)
        parts.append(sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, harmonics + 1)) * envelope)
    return (0.3 * np.concatenate(parts)).astype(np.float32)


def test_click_track_at_120_bpm_measures_120_and_passes_every_tempo_test():
    measured = estimate_tempo(torch.from_numpy(clicks(120)), RATE)
    assert abs(measured - 120) <= 2
    assert tempo_scores(120, measured) == {"tempo_within_4pct": True, "tempo_within_4pct_octave": True,
                                           "tempo_bin": True, "tempo_bin_tolerant": True}


def test_tempo_bins_follow_mustangos_edge_rule():
    assert [tempo_bin(b) for b in (0, 40, 40.5, 60, 60.5, 110, 139.9, 210, 211)] == [0, 0, 1, 1, 2, 4, 5, 7, 8]
    half = tempo_scores(120, 60)  # half tempo: only the octave-tolerant test passes
    assert half == {"tempo_within_4pct": False, "tempo_within_4pct_octave": True, "tempo_bin": False,
                    "tempo_bin_tolerant": False}
    assert tempo_scores(100, 115) == {"tempo_within_4pct": False, "tempo_within_4pct_octave": False,
                                      "tempo_bin": False, "tempo_bin_tolerant": True}
    assert within_tolerance(100, 104) and not within_tolerance(100, 104.5)
    assert tempo_scores(120, 0.0)["tempo_bin_tolerant"] is False  # no beat found: defined, fails
    with pytest.raises(EvaluationInputError, match="asked"):
        within_tolerance(0, 100)
    with pytest.raises(EvaluationInputError, match="finite"):
        tempo_bin(math.nan)


def test_c_major_scale_and_cadence_reads_c_major():
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    cadence = [48, 53, 55, 48, 60, 64, 67, 72]  # C, F, G bass, then the C triad
    key, _ = estimate_key(torch.from_numpy(tones(scale + cadence)), RATE)
    assert key == "C major"
    assert key_scores("C major", key) == {"key_exact": True, "key_with_relative": True, "key_mirex": 1.0}


@pytest.mark.parametrize("asked, measured", [("C major", "A minor"), ("C major", "G major"), ("C major", "C minor"),
                                              ("A minor", "C major"), ("F# minor", "C# minor"), ("Bb major", "E major"),
                                              ("Eb minor", "F# major")])
def test_key_scores_match_mir_eval(asked, measured):
    scores = key_scores(asked, measured)
    assert scores["key_mirex"] == mir_eval.key.weighted_score(asked, measured)
    assert scores["key_exact"] is False
    assert scores["key_with_relative"] == (measured == relative_key(asked))


def test_relative_keys():
    assert relative_key("C major") == "A minor" and relative_key("A minor") == "C major"
    assert relative_key("Eb minor") == "F# major" and relative_key("Am") == "C major"
    assert key_scores("Eb minor", "F# major")["key_with_relative"] is True


def test_chroma_cosine_itself_transposed_and_silence():
    melody = tones([60, 64, 67, 72, 67, 64, 60, 62, 65, 69] * 2)
    transposed = tones([n + 3 for n in [60, 64, 67, 72, 67, 64, 60, 62, 65, 69] * 2])
    itself = chroma_cosine(melody, melody, RATE)
    shifted = chroma_cosine(melody, transposed, RATE)
    assert itself == pytest.approx(1.0, abs=1e-6)
    assert shifted < 0.8
    silence = np.zeros_like(melody)
    assert chroma_cosine(melody, silence, RATE) == 0.0
    assert chroma_cosine(silence, silence, RATE) == 0.0
    # different lengths: cut to the shorter; stereo is mixed down
    assert chroma_cosine(melody, np.stack([melody[:RATE * 4]] * 2), RATE) == pytest.approx(1.0, abs=1e-6)


def test_pitch_accuracy_of_a_sine_melody_against_its_notes():
    class N:
        def __init__(self, pitch, start, end):
            self.pitch, self.start, self.end = pitch, start, end

    pitches = [69, 71, 72, 74]
    wav = tones(pitches, seconds_each=0.5, harmonics=1)
    notes = [N(p, 0.5 * i + 0.05, 0.5 * (i + 1) - 0.05) for i, p in enumerate(pitches)]  # away from the joins
    times, f0 = pitch_track(wav, RATE)
    assert pitch_accuracy(times, notes_f0(notes, times), times, f0) > 0.9
    wrong = notes_f0([N(p + 2, n.start, n.end) for p, n in zip(pitches, notes)], times)
    assert pitch_accuracy(times, wrong, times, f0) < 0.1
    silent_times, silent_f0 = pitch_track(np.zeros(RATE, dtype=np.float32), RATE)
    assert not silent_f0.any()
    assert pitch_accuracy(times, notes_f0(notes, times), silent_times, silent_f0) == 0.0
    assert pitch_accuracy(times, np.zeros_like(times), times, f0) == 0.0  # no voiced reference: defined


def test_onset_and_beat_f_measures_match_mir_eval_and_are_defined_at_the_edges():
    reference = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    estimated = np.array([0.51, 1.04, 1.7, 2.0])
    assert onset_f1(reference, estimated) == mir_eval.onset.f_measure(reference, estimated)[0]
    assert beat_f_measure(reference, estimated) == mir_eval.beat.f_measure(reference, estimated)
    assert onset_f1(reference, reference) == 1.0 and beat_f_measure(reference, reference) == 1.0
    assert onset_f1([], []) == 0.0 and beat_f_measure([], []) == 0.0
    assert onset_f1(reference, []) == 0.0 and beat_f_measure([], reference) == 0.0
    single = np.zeros(RATE * 2, dtype=np.float32)
    single[RATE // 2:RATE // 2 + 160] = 0.8
    found = onset_times(single, RATE)
    assert len(found) == 1 and abs(found[0] - 0.5) < 0.03
    assert onset_f1([0.5], found) == 1.0
    assert len(onset_times(np.zeros(RATE, dtype=np.float32), RATE)) == 0
    with pytest.raises(EvaluationInputError):
        onset_f1([math.nan], [0.5])
