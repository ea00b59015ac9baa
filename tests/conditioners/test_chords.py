"""The ``chords`` conditioner: pitch classes and roots per frame from bar, timed and sidecar
progressions; a key's profile peaks on its tonic; chord symbols; bad input all at once."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from cuecraft.attributes import SymbolicCondition
from cuecraft.audio.chords import QUALITIES, parse_chord
from cuecraft.audio.key import KEYS, key_parts
from cuecraft.conditioners import ChordsConditioner
from cuecraft.data.corpus.compose import sample_piece
from cuecraft.errors import ConditioningInputError, ConfigError

RATE = 50.0
A, C, E, F, G, B, D = 9, 0, 4, 5, 7, 11, 2


def raw(values, **settings):
    return ChordsConditioner(**{"frame_rate": RATE, "duration": 10.0, **settings}).condition(values)


def pitch_classes(frame: torch.Tensor) -> set[int]:
    return set(frame[:12].nonzero().flatten().tolist())


def root(frame: torch.Tensor) -> int | None:
    found = frame[12:].nonzero().flatten().tolist()
    assert len(found) <= 1
    return found[0] if found else None


def test_am_f_c_g_at_120_bpm_gives_a_chord_per_bar_and_repeats():
    embedding, mask = raw([{"chords": "Am F C G", "bpm": 120, "time_signature": "4/4"}])
    assert embedding.shape == (1, 500, 24) and mask.all()
    bar = 100  # 2 s at 50 frames per second
    for number, (classes, bass) in enumerate([({A, C, E}, A), ({F, A, C}, F), ({C, E, G}, C), ({G, B, D}, G),
                                              ({A, C, E}, A)]):  # bar 5: the progression again
        for frame in range(number * bar, (number + 1) * bar):
            assert pitch_classes(embedding[0, frame]) == classes and root(embedding[0, frame]) == bass, frame
    assert embedding[0, 0].sum() == 4.0  # three chord tones and one root, each 1


def test_bar_chords_follow_the_metre_and_the_offset_and_timed_chords_agree():
    waltz, _ = raw([{"chords": "C | G | Am, F", "bpm": 90, "time_signature": "3/4", "downbeat_offset": 0.5}])
    bar = 3 * 60 / 90  # seconds
    assert torch.count_nonzero(waltz[0, :round(0.5 * RATE)]) == 0  # before the first bar: no chord
    assert root(waltz[0, round((0.5 + 1.5 * bar) * RATE)]) == G
    timed, _ = raw([{"chords": "Am@0 F@2 C@4 G@6 Am@8"}])
    bars, _ = raw([{"chords": ["Am", "F", "C", "G"], "bpm": 120}])
    torch.testing.assert_close(timed, bars)
    late, _ = raw([{"chords": "N@0 Bb7@1.5"}])
    assert torch.count_nonzero(late[0, :75]) == 0 and pitch_classes(late[0, -1]) == {10, 2, 5, 8}


def test_the_corpus_sidecar_chords_and_a_later_segment():
    spec = sample_piece(7, seconds=12.0)
    chords = [asdict(c) for c in spec.chords]
    embedding, mask = raw([{"chords": chords, "duration": spec.seconds, "seek_time": 3.0}])
    assert mask[0].sum() == 450  # 9 s of the piece after 3 s
    for chord in spec.chords:
        for time in (chord.start + 0.05, chord.end - 0.05):
            frame = round((time - 3.0) * RATE)
            if 0 <= frame < 450:
                third = 4 if chord.quality == "major" else 3
                assert root(embedding[0, frame]) == chord.root
                assert pitch_classes(embedding[0, frame]) == {chord.root, (chord.root + third) % 12, (chord.root + 7) % 12}
    gap, _ = raw([{"chords": [{"symbol": "C", "start": 0.0, "end": 1.0}, {"symbol": "G", "start": 2.0}]}])
    assert torch.count_nonzero(gap[0, 50:100]) == 0 and root(gap[0, 120]) == G and root(gap[0, -1]) == G


@pytest.mark.parametrize("key", KEYS)
def test_a_key_alone_gives_its_profile_peaking_on_the_tonic(key):
    embedding, mask = raw([{"key": key}])
    tonic, _ = key_parts(key)
    assert mask.all() and torch.equal(embedding[0, 0], embedding[0, -1])  # the same on every frame
    profile = embedding[0, 0, :12]
    assert int(profile.argmax()) == tonic and profile[tonic] == 1.0 and profile.min() == 0.0
    assert sorted(profile.tolist())[-2] < 1.0  # a single peak
    assert root(embedding[0, 0]) == tonic
    both, _ = raw([{"key": key, "chords": "D@0"}])  # chords win over the key
    assert pitch_classes(both[0, 0]) == {2, 6, 9}


def test_no_chord_is_zeros_on_unmasked_frames_and_null_is_masked():
    embedding, mask = raw([{"chords": "N C", "bpm": 120}, None, {"chords": "", "key": None}, {"bpm": 120}])
    assert mask[0].all() and torch.count_nonzero(embedding[0, :100]) == 0 and root(embedding[0, 100]) == C
    assert not mask[1:].any() and torch.count_nonzero(embedding[1:]) == 0


@pytest.mark.parametrize("symbol, classes, bass", [
    ("C", {0, 4, 7}, 0), ("Cm", {0, 3, 7}, 0), ("C7", {0, 4, 7, 10}, 0), ("Cmaj7", {0, 4, 7, 11}, 0),
    ("Cm7", {0, 3, 7, 10}, 0), ("Cdim", {0, 3, 6}, 0), ("Caug", {0, 4, 8}, 0), ("Csus2", {0, 2, 7}, 0),
    ("Csus4", {0, 5, 7}, 0), ("F#m", {6, 9, 1}, 6), ("Bb7", {10, 2, 5, 8}, 10), ("Db", {1, 5, 8}, 1),
    ("C#", {1, 5, 8}, 1), ("Ebmaj7", {3, 7, 10, 2}, 3), ("A:min7", {9, 0, 4, 7}, 9), ("G/B", {7, 11, 2}, 7),
    ("D/F#", {2, 6, 9}, 2), ("C/Bb", {0, 4, 7, 10}, 0), ("Bø", {11, 2, 5, 9}, 11), ("am", {9, 0, 4}, 9),
])
def test_chord_symbols(symbol, classes, bass):
    chord = parse_chord(symbol)
    assert set(chord.pitch_classes) == classes and chord.root == bass
    embedding, _ = raw([{"chords": f"{symbol}@0"}])
    assert pitch_classes(embedding[0, 0]) == classes and root(embedding[0, 0]) == bass
    assert {"major", "minor", "7", "maj7", "m7", "dim", "aug", "sus2", "sus4"} <= set(QUALITIES)
    for nothing in ("N", "NC", "N.C.", "X"):
        assert parse_chord(nothing).root is None and parse_chord(nothing).pitch_classes == ()


def test_bad_input_is_every_problem_at_once_naming_field_value_and_allowed():
    conditioner = ChordsConditioner(duration=4.0)
    values = [{"chords": "Am Xq7 C", "bpm": 120}, {"chords": "Am@2 F@1"}, {"chords": "Am F"},
              {"chords": "Am@0 F"}, {"key": "H minor"}, {"chords": "C@x"},
              {"chords": [{"symbol": "C", "start": 1.0}, {"symbol": "G", "start": 0.5}]},
              {"chords": "Am F", "bpm": float("nan"), "time_signature": "x/4"}, {"chords": 3}]
    with pytest.raises(ConditioningInputError) as error:
        conditioner.tokenize(values)
    heads = [p.split(";")[0] for p in error.value.problems]
    assert heads == [
        "item 0, chords: got the chord 'Xq7', which cannot be read",
        "item 1, chords: got the time 1 after 2",
        "item 2, chords: got 'Am F', one chord per bar, but no bpm",
        "item 3, chords: got 'Am@0 F', some chords timed and some not",
        "item 4, key: got 'H minor'",
        "item 5, chords: got the time 'x'",
        "item 6, chords[1].start: got 0.5",
        "item 7, bpm: got nan",
        "item 7, time_signature: got 'x/4'",
        "item 8, chords: got int 3",
    ]
    assert all("allowed: " in p for p in error.value.problems)
    assert "allowed: a root A-G with optional # or b, then a quality (major, minor, 7, maj7" in error.value.problems[0]


def test_project_out_and_settings():
    assert ChordsConditioner().output_dim == 24 and ChordsConditioner().frames == 1500
    projected = ChordsConditioner(output_dim=32, project_out=True, frame_rate=8, duration=2)
    embedding, mask = projected.condition([SymbolicCondition(key="C major"), None])
    assert embedding.shape == (2, 16, 32) and torch.count_nonzero(embedding[1]) == 0
    with pytest.raises(ConfigError, match="output_dim: without project_out the output is the 24 raw channels"):
        ChordsConditioner(output_dim=32)
    with pytest.raises(ConfigError, match="max_bpm: must be above min_bpm"):
        ChordsConditioner(min_bpm=200, max_bpm=100)


def test_progression_dropout_reads_some_training_items_from_their_key_alone():
    conditioner = ChordsConditioner(frame_rate=RATE, duration=4.0, progression_dropout=0.5)
    values = [SymbolicCondition(chords="D@0", key="A minor")] * 400
    features = conditioner.tokenize(values, train=True, generator=torch.Generator().manual_seed(0)).features
    from_key = sum(root(row[0]) == A for row in features)
    assert 170 <= from_key <= 230  # about half, drawn from the caller's generator
    assert all(root(row[0]) in (A, D) for row in features)
    again = conditioner.tokenize(values, train=True, generator=torch.Generator().manual_seed(0)).features
    assert torch.equal(features, again)
    inference = conditioner.tokenize(values[:5]).features  # never at inference
    assert all(root(row[0]) == D for row in inference)
    with pytest.raises(ConfigError, match="progression_dropout"):
        ChordsConditioner(progression_dropout=1.5)
