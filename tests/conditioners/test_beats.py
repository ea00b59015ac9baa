"""The ``beats`` conditioner: curves peak on the beats, phases are continuous, a tempo grid equals
the beat list of the same piece, clips are placed on the piece's clock, bad input is reported
all at once."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cuecraft.attributes import SymbolicCondition, WavCondition
from cuecraft.conditioners import BeatsConditioner, build_conditioner
from cuecraft.conditioners.timeline import parse_time_signature
from cuecraft.data.corpus.compose import sample_piece
from cuecraft.errors import ConditioningInputError, ConfigError
from cuecraft.provider import ConditionProvider

RATE = 50.0


def raw(values, **settings):
    conditioner = BeatsConditioner(**{"frame_rate": RATE, "duration": 8.0, **settings})
    return conditioner.condition(values)


def peaks(curve: torch.Tensor, threshold: float = 0.5) -> list[int]:
    """Frames before the last that are local maxima above ``threshold``."""
    c = curve.tolist()
    return [i for i in range(len(c) - 1) if c[i] > threshold and (i == 0 or c[i] >= c[i - 1]) and c[i] > c[i + 1]]


def assert_peaks_on(curve: torch.Tensor, times: np.ndarray, rate: float) -> None:
    """One peak within one frame of each time, and no other peak."""
    expected = [t * rate for t in times if t * rate < len(curve) - 1]
    found = peaks(curve)
    assert len(found) == len(expected), (found, expected)
    for frame, want in zip(found, expected):
        assert abs(frame - want) <= 1.0, (frame, want)


@pytest.mark.parametrize("bpm, signature, per_bar, rate", [(120, "4/4", 4, 50.0), (91, "6/8", 2, 50.0),
                                                           (91, "6/8", 2, 21.5), (100, "3/4", 3, 43.0)])
def test_curves_peak_within_one_frame_of_each_beat_and_downbeats_every_bar(bpm, signature, per_bar, rate):
    embedding, mask = raw([{"bpm": bpm, "time_signature": signature}], frame_rate=rate)
    beats = np.arange(0, 8.0, 60.0 / bpm)
    assert mask.all() and embedding.shape == (1, round(8 * rate), 6)
    assert_peaks_on(embedding[0, :, 0], beats, rate)
    assert_peaks_on(embedding[0, :, 1], beats[::per_bar], rate)  # a downbeat every bar
    assert embedding[0, :, 0].max() <= 1.0 and embedding[0, :, 0].min() >= 0.0


@pytest.mark.parametrize("bpm, signature, per_bar", [(120, "4/4", 4), (91, "6/8", 2)])
def test_phases_are_continuous_and_advance_at_the_tempo(bpm, signature, per_bar):
    embedding, _ = raw([{"bpm": bpm, "time_signature": signature, "downbeat_offset": 0.3}])
    for channel, cycles_per_second in ((2, bpm / 60), (4, bpm / 60 / per_bar)):
        sin, cos = embedding[0, :, channel].double(), embedding[0, :, channel + 1].double()
        torch.testing.assert_close(sin ** 2 + cos ** 2, torch.ones_like(sin), atol=1e-5, rtol=0)
        phase = torch.atan2(sin, cos) / (2 * math.pi)
        step = torch.remainder(phase.diff(), 1.0)  # the wrap from 1 back to 0 is the only jump
        torch.testing.assert_close(step, torch.full_like(step, cycles_per_second / RATE), atol=1e-4, rtol=0)
        assert (sin.diff().abs() <= 2 * math.pi * cycles_per_second / RATE + 1e-4).all()  # no jumps at all
    # beat phase 0 on a beat: at the offset sin = 0 and cos = 1
    frame = round(0.3 * RATE)
    assert embedding[0, frame, 2].abs() < 1e-4 and embedding[0, frame, 3] == pytest.approx(1.0, abs=1e-4)


def corpus_piece(signature: str):
    return next(spec for spec in (sample_piece(seed, seconds=9.0) for seed in range(200))
                if spec.time_signature == signature)


@pytest.mark.parametrize("signature", ["4/4", "3/4", "6/8"])
def test_a_tempo_grid_and_the_corpus_beat_list_give_the_same_tensor(signature):
    spec = corpus_piece(signature)  # its beats start on a downbeat at 0
    grid = {"bpm": spec.bpm, "time_signature": spec.time_signature, "duration": spec.seconds}
    labels = {"beats": list(spec.beats), "downbeats": list(spec.downbeats), "duration": spec.seconds}
    (a, mask_a), (b, mask_b) = raw([grid]), raw([labels])
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    assert torch.equal(mask_a, mask_b) and mask_a.all()  # 9 s pieces, 8 s clips
    # the same from a later segment of the file: labels count from the file's start
    (a, _), (b, _) = raw([{**grid, "seek_time": 0.7}]), raw([{**labels, "seek_time": 0.7}])
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_seek_time_places_the_clip_on_the_pieces_clock():
    beats, downbeats = [0.5 * k for k in range(40)], [2.0 * k for k in range(10)]
    segment, mask = raw([{"beats": beats, "downbeats": downbeats, "seek_time": 4.25, "duration": 10.0}])
    # the clip starts 0.25 s into a bar: its first downbeat is at 1.75 s on its own clock
    shifted, _ = raw([{"bpm": 120, "downbeat_offset": 1.75}])
    assert mask[0].sum() == round(5.75 * RATE)  # the piece ends 5.75 s into the clip
    valid = mask[0]
    torch.testing.assert_close(segment[0, valid], shifted[0, valid], atol=1e-4, rtol=0)
    assert torch.count_nonzero(segment[0, ~valid]) == 0


def test_beats_without_downbeats_count_bars_from_the_first_beat_and_one_beat_needs_a_bpm():
    (a, _), (b, _) = raw([{"beats": [0.5 * k for k in range(20)], "time_signature": "3/4"}]), \
        raw([{"bpm": 120, "time_signature": "3/4"}])
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    (a, _), (b, _) = raw([{"beats": [1.0], "downbeats": [1.0], "bpm": 120}]), raw([{"bpm": 120, "downbeat_offset": 1.0}])
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_items_without_rhythm_labels_are_null_and_frames_are_fixed():
    conditioner = BeatsConditioner(frame_rate=10.0, duration=3.0)
    embedding, mask = conditioner.condition([None, {"key": "A minor"}, SymbolicCondition(bpm=None), {"bpm": 60}])
    assert embedding.shape == (4, 30, 6) and conditioner.null_length == conditioner.output_length == 30
    assert not mask[:3].any() and torch.count_nonzero(embedding[:3]) == 0 and mask[3].all()


def test_provider_reads_the_fields_whatever_the_id_and_nulls_share_one_path():
    provider = ConditionProvider({"rhythm": BeatsConditioner(frame_rate=RATE, duration=8.0)})
    assert provider.routes[0].keys == BeatsConditioner.fields
    grid = {"bpm": 120, "time_signature": "4/4", "prompt": "ignored"}
    embedding = provider.condition([grid])["rhythm"].embedding
    torch.testing.assert_close(embedding, raw([{"bpm": 120, "time_signature": "4/4"}])[0])
    with pytest.raises(ConditioningInputError, match=r"unknown symbolic fields \['prompt'\]"):
        raw([grid])  # a conditioner called directly takes its own fields only
    attributes = provider.to_attributes([grid])
    dropped = provider.condition([attributes[0].with_nulls({"symbolic": ["rhythm"]})])["rhythm"]
    assert not dropped.mask.any() and torch.count_nonzero(dropped.embedding) == 0
    with pytest.raises(ConditioningInputError, match="missing keys for condition 'rhythm': it reads 'bpm'"):
        provider.condition([{"prompt": "no rhythm fields"}])
    with pytest.raises(ConfigError, match="takes no default key"):
        ConditionProvider({"rhythm": BeatsConditioner()}, default_keys={"rhythm": "tempo"})


def test_project_out_and_output_dim():
    assert BeatsConditioner().output_dim == 6
    projected = BeatsConditioner(output_dim=16, project_out=True, frame_rate=10, duration=2)
    embedding, mask = projected.condition([{"bpm": 90}, None])
    assert embedding.shape == (2, 20, 16) and torch.count_nonzero(embedding[1]) == 0
    with pytest.raises(ConfigError, match="output_dim: without project_out the output is the 6 raw channels"):
        BeatsConditioner(output_dim=16)
    with pytest.raises(ConfigError) as error:
        build_conditioner("beats", {"frame_rate": 0, "duration": -1, "time_signature": "4/3", "beat_width": 0,
                                    "tracker": "aubio"})
    assert [p.split(":")[0] for p in error.value.problems] == [
        "frame_rate", "duration", "time_signature", "beat_width", "tracker"]


def test_bad_input_is_every_problem_at_once_naming_field_value_and_allowed():
    conditioner = BeatsConditioner(min_bpm=40, max_bpm=240)
    values = [{"bpm": float("nan")}, {"bpm": 500, "time_signature": "5/0"}, {"bpm": 120, "time_signature": "x/4"},
              {"beats": [0.0, float("nan")], "downbeats": [-1.0]}, {"bpm": float("inf")},
              {"beats": [0.0, 1.0, 0.5]}, {"downbeats": [0.0, 2.0]}, {"bpm": 120}]
    with pytest.raises(ConditioningInputError) as error:
        conditioner.tokenize(values)
    problems = error.value.problems
    assert problems == [
        "item 0, bpm: got nan; allowed: a finite number of beats per minute in [40, 240] (the config's min_bpm, max_bpm)",
        "item 1, bpm: got 500; allowed: a finite number of beats per minute in [40, 240] (the config's min_bpm, max_bpm)",
        "item 1, time_signature: got '5/0'; allowed: \"N/D\" with N in 1..32 and D in 1, 2, 4, 8, 16, 32, 64 "
        "(e.g. \"4/4\", \"3/4\", \"6/8\")",
        "item 2, time_signature: got 'x/4'; allowed: \"N/D\" with N in 1..32 and D in 1, 2, 4, 8, 16, 32, 64 "
        "(e.g. \"4/4\", \"3/4\", \"6/8\")",
        "item 3, beats: time 1 is nan; allowed: a list of finite times in seconds, >= 0, increasing",
        "item 3, downbeats: time 0 is -1.0; allowed: a list of finite times in seconds, >= 0, increasing",
        "item 4, bpm: got inf; allowed: a finite number of beats per minute in [40, 240] (the config's min_bpm, max_bpm)",
        "item 5, beats: time 2 (0.5 s) does not come after time 1 (1 s); allowed: a list of finite times in "
        "seconds, >= 0, increasing",
        "item 6, beats: got None with downbeats; allowed: the beat times that go with the downbeats",
    ]
    assert str(error.value).startswith("9 problems with the conditioning input:\n  item 0, bpm: got nan")
    provider = ConditionProvider({"beats": conditioner})
    with pytest.raises(ConditioningInputError) as error:
        provider.tokenize([{"bpm": -3}, {"bpm": 120, "time_signature": "x/4"}])
    assert [p.split(":")[0] for p in error.value.problems] == [
        "condition 'beats', item 0, bpm", "condition 'beats', item 1, time_signature"]


def test_time_signatures():
    assert [(m.beats_per_bar, m.compound) for m in map(parse_time_signature, ("4/4", "3/4", "6/8", "12/8", "2/2"))] \
        == [(4, False), (3, False), (2, True), (4, True), (2, False)]
    for bad in ("5/0", "x/4", "4/3", "0/4", "4", "", 44, "4/4/4"):
        with pytest.raises(ConditioningInputError, match="allowed"):
            parse_time_signature(bad)


def test_beats_are_tracked_from_the_audio_when_asked_and_labels_are_missing():
    pytest.importorskip("librosa")
    from tests.audio.synth import drums

    rate = 16000
    wav = torch.from_numpy(drums(8 * rate, rate, beat_seconds=0.5))[None]  # 120 bpm
    tracking = BeatsConditioner(frame_rate=RATE, duration=8.0, track=True)
    assert "self_wav" in tracking.metadata_keys
    item = SymbolicCondition(wav=WavCondition(wav, rate))
    embedding, mask = tracking.condition([item, SymbolicCondition(bpm=120, wav=WavCondition(wav, rate))])
    assert mask.all()
    tracked = np.array(peaks(embedding[0, :, 0])) / RATE
    assert len(tracked) >= 13
    assert np.median(np.diff(tracked)) == pytest.approx(0.5, abs=0.03)  # the drums' tempo
    assert not BeatsConditioner(duration=8.0).condition([item])[1].any()  # tracking off: null
