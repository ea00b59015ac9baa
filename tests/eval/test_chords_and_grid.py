"""Chord adherence and the asked beat grid, each on audio with a known answer: chords synthesised as
sine tones at known times, click tracks at a known tempo and phase."""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest

from cuecraft.errors import EvaluationInputError
from cuecraft.eval import chords
from cuecraft.eval.prompts import PromptRow, parse_row
from cuecraft.eval.rhythm import beat_f_measure, beat_grid
from cuecraft.eval.score import aggregate, score_item
from tests.eval.test_eval_cli import tiny_model  # noqa: F401 - a fixture

RATE = 16000
TRIADS = {"Am": (57, 60, 64), "F": (53, 57, 60), "C": (48, 52, 55), "G": (55, 59, 62), "Em": (52, 55, 59),
          "Dm": (50, 53, 57)}


def sines(midis, seconds: float) -> np.ndarray:
    t = np.arange(int(round(seconds * RATE))) / RATE
    fade = np.clip(np.minimum(t, seconds - t) / 0.01, 0.0, 1.0)
    return (fade * sum(np.sin(2 * np.pi * 440.0 * 2 ** ((m - 69) / 12) * t) for m in midis) / 4).astype(np.float32)


def progression(names, seconds_each: float, lead_in: float = 0.0) -> np.ndarray:
    silence = np.zeros(int(round(lead_in * RATE)), dtype=np.float32)
    return np.concatenate([silence] + [sines(TRIADS[name], seconds_each) for name in names])


AM_F_C_G = progression(["Am", "F", "C", "G"], 2.0)  # one chord per bar at 120 bpm 4/4


def test_the_template_matcher_hears_sine_triads():
    heard = chords.chord_frames(AM_F_C_G, RATE)
    assert heard.hop_seconds == pytest.approx(0.064)
    middle = [heard.classes[np.argmin(np.abs(heard.times - t))] for t in (1.0, 3.0, 5.0, 7.0)]
    assert [chords.class_name(c) for c in middle] == ["Am", "F", "C", "G"]
    assert chords.describe(heard).startswith("Am@0.00 F@")
    silent = chords.chord_frames(np.zeros(RATE, dtype=np.float32), RATE)
    assert set(silent.classes.tolist()) == {chords.NO_CHORD_CLASS}


def test_the_asked_progression_scores_high_and_another_scores_low():
    heard = chords.chord_frames(AM_F_C_G, RATE)
    asked = chords.asked_segments("Am F C G", seconds=8.0, bpm=120)
    assert [(s.symbol, s.start, s.end) for s in asked] == [("Am", 0, 2), ("F", 2, 4), ("C", 4, 6), ("G", 6, 8)]
    assert chords.chord_iou(asked, heard) > 0.85 and chords.chord_majmin(asked, heard) > 0.9
    timed = chords.asked_segments("Am@0 F@2 C@4 G@6", seconds=8.0)
    assert chords.chord_majmin(timed, heard) == chords.chord_majmin(asked, heard)
    wrong = chords.asked_segments("C G Am F", seconds=8.0, bpm=120)
    assert chords.chord_iou(wrong, heard) < 0.1 and chords.chord_majmin(wrong, heard) < 0.1
    # extended and inverted spellings reduce to the same triads (Am7 -> A:min, Fmaj7 -> F:maj, C/E -> C:maj)
    extended = chords.asked_segments("Am7 | Fmaj7 | C/E | G7", seconds=8.0, bpm=120)
    assert chords.chord_majmin(extended, heard) == chords.chord_majmin(asked, heard)


def test_majmin_is_mir_evals_evaluate_on_the_same_segments():
    audio = progression(["C", "Am", "Dm", "G", "Em"], 1.5, lead_in=0.5)
    heard = chords.chord_frames(audio, RATE)
    asked = chords.asked_segments("N@0 C@0.5 Am@2 Dm@3.5 G@5 Em@6.5", seconds=len(audio) / RATE)
    runs = chords.heard_segments(heard)
    expected = mir_eval.chord.evaluate(np.array([[s.start, s.end] for s in asked]),
                                       [chords.harte_label(s.chord_class) for s in asked],
                                       np.array([[a, b] for a, b, _ in runs]),
                                       [chords.harte_label(c) for _, _, c in runs])["majmin"]
    assert chords.chord_majmin(asked, heard) == pytest.approx(expected, abs=1e-9)
    assert expected > 0.85


def test_chord_iou_by_hand_and_chords_that_are_not_scored():
    times = np.arange(8) * 0.5
    heard = chords.ChordFrames(times, np.array([0, 0, 0, 1, 1, 1, 24, 24]), 0.5)  # C C C Cm Cm Cm N N
    asked = chords.asked_segments("C@0 Cm@1 N@3", seconds=4.0)  # C C Cm Cm Cm Cm N N
    # C: 2 / 3; Cm: 3 / 4; N: 2 / 2
    assert chords.chord_iou(asked, heard) == pytest.approx((2 / 3 + 3 / 4 + 1.0) / 3)
    assert chords.chord_majmin(asked, heard) == pytest.approx(7 / 8)
    sus = chords.asked_segments("Csus4@0 Cdim@2", seconds=4.0)  # no major / minor reduction: nothing scored
    assert chords.chord_iou(sus, heard) is None and chords.chord_majmin(sus, heard) is None
    half = chords.asked_segments("C@0 Caug@1.5", seconds=4.0)  # the aug frames (heard Cm, N) are left out
    assert chords.chord_iou(half, heard) == 1.0
    # majmin on segments: a frame spans its time +- half a hop, so Cm is heard from 1.25 s: 1.25 of 1.5 s
    assert chords.chord_majmin(half, heard) == pytest.approx(1.25 / 1.5)


def test_bars_follow_tempo_metre_and_downbeat_offset():
    asked = chords.asked_segments("Am, F", seconds=4.0, bpm=90, beats_per_bar=2, downbeat_offset=0.5)  # 6/8
    bar = 4 / 3  # two dotted-quarter beats at 90 bpm; the progression repeats until the clip ends
    assert [s.symbol for s in asked] == ["Am", "F", "Am"]
    assert [s.start for s in asked] == pytest.approx([0.5, 0.5 + bar, 0.5 + 2 * bar])
    assert asked[-1].end == 4.0
    with pytest.raises(EvaluationInputError, match="needs the row's bpm"):
        chords.asked_segments("Am F", seconds=8.0)
    for bad, message in (("Am Xq7", "cannot read the chord 'Xq7'"), ("Am@0 F", "give every chord a time"),
                         ("Am@2 F@1", "must increase"), ("Am@x", "seconds >= 0"), ("", "expected chords")):
        with pytest.raises(EvaluationInputError, match=message):
            chords.parse_progression(bad)


def test_beat_grid_numbers():
    grid = beat_grid(120, 4, 4.0)
    assert grid.beats.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5] and grid.downbeats.tolist() == [0.0, 2.0]
    grid = beat_grid(120, 3, 4.0, downbeat_offset=0.75)  # a pick-up beat at 0.25
    assert grid.beats.tolist() == [0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75]
    assert grid.downbeats.tolist() == [0.75, 2.25, 3.75]
    with pytest.raises(EvaluationInputError, match="bpm: expected a number > 0"):
        beat_grid(float("nan"), 4, 4.0)


def click_track(bpm: float, beats_per_bar: int, seconds: float, downbeat_offset: float) -> np.ndarray:
    """A high click on every beat and a low thump (60 Hz) on every downbeat of the grid."""
    wav = np.zeros(int(seconds * RATE), dtype=np.float32)
    burst = (np.random.default_rng(0).standard_normal(160) * np.hanning(160)).astype(np.float32)
    t = np.arange(int(0.12 * RATE)) / RATE
    thump = (np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.04)).astype(np.float32)
    grid = beat_grid(bpm, beats_per_bar, seconds - 0.15, downbeat_offset)
    for time in grid.beats:
        start = int(time * RATE)
        wav[start:start + 160] += burst
    for time in grid.downbeats:
        start = int(time * RATE)
        wav[start:start + len(thump)] += 2.0 * thump
    return wav


def test_grid_f_measures_on_a_click_track_need_the_right_phase():
    audio = click_track(100, 3, 10.0, downbeat_offset=0.4)
    right = PromptRow(bpm=100.0, time_signature="3/4", downbeat_offset=0.4)
    scores = score_item(audio, RATE, right)["scores"]
    assert scores["tempo_within_4pct"] and scores["grid_beat_f_measure"] > 0.9
    assert scores["grid_downbeat_f_measure"] > 0.9
    # the same tempo half a beat off: the tempo metrics pass, the grid does not
    shifted = score_item(audio, RATE, PromptRow(bpm=100.0, time_signature="3/4", downbeat_offset=0.7))["scores"]
    assert shifted["tempo_within_4pct"] and shifted["grid_beat_f_measure"] < 0.2
    # the right beats in the wrong metre: beats match, downbeats mostly do not
    four = score_item(audio, RATE, PromptRow(bpm=100.0, time_signature="4/4", downbeat_offset=0.4))["scores"]
    assert four["grid_beat_f_measure"] > 0.9 and four["grid_downbeat_f_measure"] < 0.6
    assert beat_f_measure(beat_grid(100, 3, 10.0, 0.4).beats, beat_grid(100, 3, 10.0, 0.4).beats) == 1.0


def test_score_item_and_aggregate_carry_the_chord_metrics():
    row = parse_row({"chords": "Am F C G", "bpm": 120, "time_signature": "4/4"}, "test")
    item = score_item(AM_F_C_G, RATE, row)
    assert item["asked"]["chords"] == "Am F C G" and item["measured"]["chords"].startswith("Am@0.00")
    assert item["scores"]["chord_iou"] > 0.85 and item["scores"]["chord_majmin"] > 0.9
    metrics = aggregate([item, score_item(AM_F_C_G, RATE, PromptRow(chords="C@0 G@4"))])
    assert 0.3 < metrics["chord_majmin"] < 0.8 and "grid_beat_f_measure" in metrics


@pytest.mark.parametrize("fields, message", [
    ({"chords": "Am Xq7", "bpm": 120}, "field 'chords': cannot read the chord 'Xq7'"),
    ({"chords": "Am F"}, "one chord per bar needs 'bpm'"),
    ({"chords": "Am@1 F@1"}, "chord times must increase"),
    ({"bpm": 120, "time_signature": "5/0"}, "field time_signature: got '5/0'"),
    ({"bpm": 120, "time_signature": "x/4"}, "field time_signature: got 'x/4'"),
    ({"prompt": "x", "downbeat_offset": 0.5}, "'downbeat_offset' needs 'bpm'"),
    ({"bpm": 120, "downbeat_offset": -1}, "field 'downbeat_offset' must be seconds >= 0"),
])
def test_prompt_rows_check_the_new_fields(fields, message):
    with pytest.raises(EvaluationInputError, match=message):
        parse_row(fields, "rows.jsonl line 1")


def test_prompt_rows_read_the_new_fields():
    row = parse_row({"chords": "Am@0 F@2", "time_signature": " 6/8", "bpm": 90, "downbeat_offset": 0}, "x")
    assert (row.time_signature, row.beats_per_bar, row.downbeat_offset) == ("6/8", 2, 0.0)
    assert row.asked() == {"bpm": 90.0, "chords": "Am@0 F@2", "time_signature": "6/8", "downbeat_offset": 0.0}
    assert parse_row(row.to_json(), "sidecar", sidecar=True) == row


def test_eval_audio_reports_chord_and_grid_metrics(tmp_path, capsys):
    import json

    import soundfile

    from cuecraft.cli import main

    folder = tmp_path / "audio"
    folder.mkdir()
    soundfile.write(folder / "chords.wav", AM_F_C_G, RATE)
    (folder / "chords.json").write_text(json.dumps({"chords": "Am F C G", "bpm": 120}))
    soundfile.write(folder / "clicks.wav", click_track(100, 3, 10.0, 0.4), RATE)
    (folder / "clicks.json").write_text(json.dumps({"bpm": 100, "time_signature": "3/4", "downbeat_offset": 0.4}))
    out = tmp_path / "out"
    assert main(["eval", "--audio", str(folder), "--out", str(out), "--no-progress", "--no-ceiling"]) == 0
    table = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    metrics = report["metrics"]
    assert metrics["chord_iou"] > 0.85 and metrics["chord_majmin"] > 0.9
    assert metrics["grid_beat_f_measure"] > 0.9 and metrics["grid_downbeat_f_measure"] > 0.9
    for name in ("chord_iou", "chord_majmin", "grid_beat_f_measure", "grid_downbeat_f_measure"):
        assert name in table


def test_eval_generate_scores_chords_a_model_lacks(tiny_model, tmp_path):
    import json

    from cuecraft.cli import main

    prompts = tmp_path / "rows.jsonl"
    prompts.write_text(json.dumps({"bpm": 120, "time_signature": "4/4", "chords": "Am F"}) + "\n")
    out = tmp_path / "out"
    assert main(["eval", "--model", str(tiny_model), "--prompts", str(prompts), "--out", str(out), "--steps", "1",
                 "--no-progress", "--no-ceiling"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["settings"]["controls_not_in_model"]) == {"chords", "time_signature"}
    for column in (report["metrics"], report["floor"]["dropped"], report["floor"]["shuffled"]):
        assert {"chord_iou", "chord_majmin", "grid_beat_f_measure", "grid_downbeat_f_measure"} <= set(column)
    assert json.loads((out / "audio" / "000.json").read_text())["chords"] == "Am F"
