"""Tempo, metre, first downbeat and chords in GenerationPipeline and `cuecraft generate`, for a model whose
config has ``beats`` and ``chords`` conditioners (found by type, whatever their ids)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cuecraft.cli import main
from cuecraft.conditioners.chords import key_row
from cuecraft.errors import GenerationInputError
from cuecraft.pipelines.generate import GenerationPipeline, GenerationRequest
from tests.pipelines.generation_model import export_tiny_model
from tests.pipelines.time_model import export_time_model

A_MINOR, F_MAJOR, C_MAJOR = {9, 0, 4}, {5, 9, 0}, {0, 4, 7}  # pitch classes, C = 0


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return export_time_model(tmp_path_factory.mktemp("time") / "model")


@pytest.fixture(scope="module")
def pipe(model_dir):
    torch.set_num_threads(1)
    return GenerationPipeline.from_dir(model_dir)


def frames_of(pipe, request):
    """(beats [T, 6], chords [T, 24], chords mask [T]) that the model receives for ``request``."""
    _, metadata = pipe._check(request)
    conditions = pipe.stack.condition([metadata])
    return conditions["rhythm"].embedding[0], conditions["harmony"].embedding[0], conditions["harmony"].mask[0]


def chord_frames(chords: torch.Tensor, pitch_classes: set[int], root: int) -> bool:
    """Whether every row of ``chords`` [N, 24] is that chord: its pitch classes, then its root one-hot."""
    row = torch.zeros(24)
    row[list(pitch_classes)] = 1.0
    row[12 + root] = 1.0
    return bool(torch.equal(chords, row.expand_as(chords)))


def test_controls_come_from_the_conditioner_types(pipe, tmp_path):
    c = pipe.controls
    assert set(c) == {"bpm", "time_signature", "downbeat_offset", "chords", "key"}
    assert c["bpm"].range == (30.0, 300.0)  # the conditioners' min_bpm, max_bpm
    assert (c["time_signature"].kind, c["chords"].kind, c["key"].kind) == ("metre", "chords", "key")
    assert c["downbeat_offset"].range == (0.0, 4.0)  # the conditioners' duration
    with_number = GenerationPipeline.from_dir(export_time_model(tmp_path / "n", bpm_number=True))
    assert with_number.controls["bpm"].range == (60.0, 180.0)  # the global number's range is narrower
    plain = GenerationPipeline.from_dir(export_tiny_model(tmp_path / "plain", melody=False, prompt=False))
    assert not {"time_signature", "downbeat_offset", "chords"} & set(plain.controls)


def test_a_progression_at_120_bpm_is_one_chord_per_bar(pipe):
    beats, chords, mask = frames_of(pipe, GenerationRequest(bpm=120, chords="Am F C G"))
    assert chords.shape == (100, 24) and bool(mask.all())  # 4 s at 25 frames per second
    assert chord_frames(chords[:50], A_MINOR, 9)  # bar 1 (0-2 s): A, C, E with root A
    assert chord_frames(chords[50:], F_MAJOR, 5)  # bar 2 (2-4 s): F, A, C with root F
    assert beats[[0, 25, 50, 75], 0].tolist() == [1.0] * 4  # a beat every 0.5 s = 12.5 frames
    assert beats[[0, 50], 1].tolist() == [1.0, 1.0] and beats[25, 1] < 1e-3  # a downbeat every 4 beats


def test_three_four_with_a_downbeat_offset(pipe):
    request = GenerationRequest(bpm=100, time_signature="3/4", downbeat_offset=0.6, chords="Am F C G")
    beats, chords, mask = frames_of(pipe, request)
    # 100 bpm: a beat every 0.6 s (15 frames); 3/4: a bar every 45 frames, the first at 0.6 s (frame 15)
    assert beats[list(range(0, 100, 15)), 0].tolist() == [1.0] * 7
    peaks = (beats[:, 1] > 0.999).nonzero().flatten().tolist()
    assert peaks == [15, 60]
    assert bool(mask.all()) and torch.count_nonzero(chords[:15]) == 0  # before the first bar: no chord
    assert chord_frames(chords[15:60], A_MINOR, 9) and chord_frames(chords[60:], F_MAJOR, 5)
    timed = frames_of(pipe, GenerationRequest(chords="C@0 Am@1.5"))[1]  # timed chords need no bpm
    assert chord_frames(timed[:37], C_MAJOR, 0) and chord_frames(timed[38:], A_MINOR, 9)


def test_a_key_alone_is_its_profile_on_every_frame(pipe):
    normal, _ = pipe._check(GenerationRequest(key="am"))
    assert normal.key == "A minor"
    chords = frames_of(pipe, GenerationRequest(key="am"))[1]
    assert torch.equal(chords, key_row("A minor").expand(100, 24)) and int(chords[0, :12].argmax()) == 9


def test_generate_hands_the_conditions_to_the_sampler(pipe, monkeypatch):
    import cuecraft.sampling

    seen = []
    original = cuecraft.sampling.sample

    def recording(dit, objective, conditional, **options):
        seen.append((conditional, options["negative"]))
        return original(dit, objective, conditional, **options)

    monkeypatch.setattr(cuecraft.sampling, "sample", recording)
    request = GenerationRequest(bpm=120, time_signature="4/4", chords="Am F C G", seconds=1.0)
    [result] = pipe.generate([request], steps=1, measured=False)
    assert result.asked == {"bpm": 120.0, "seconds": 1.0, "time_signature": "4/4", "chords": "Am F C G"}
    assert result.audio[0].shape == (16000,)
    [(conditional, unconditional)] = seen
    beats, chords, _ = frames_of(pipe, request)
    # input_concat: the rhythm's 6 channels, then the harmony's 24, per frame (config order)
    torch.testing.assert_close(conditional.input_concat[0], torch.cat([beats, chords], dim=1))
    assert torch.count_nonzero(unconditional.input_concat) == 0  # the null branch of guidance
    other = pipe.generate([GenerationRequest(bpm=120, chords="C G Am F", seconds=1.0)], steps=1, measured=False)
    assert np.abs(other[0].audio[0] - result.audio[0]).max() > 1e-4  # other chords, other audio


def test_every_bad_value_is_reported_at_once(pipe):
    request = GenerationRequest(bpm=float("nan"), time_signature="x/4", downbeat_offset=-1.0, chords="Am Xq7 C")
    with pytest.raises(GenerationInputError) as error:
        pipe.generate([request], steps=1)
    problems = error.value.problems
    assert [line.split(":")[0] for line in problems] == ["bpm", "time_signature", "downbeat_offset", "chords"]
    assert problems[0] == "bpm: expected a number in [30, 300] (the range this model knows); got nan"
    assert problems[1].startswith("time_signature: got 'x/4'; allowed: \"N/D\" with N in 1..32")
    assert problems[3].startswith("chords: got the chord 'Xq7', which cannot be read; allowed:")
    with pytest.raises(GenerationInputError) as error:
        pipe._check(GenerationRequest(time_signature="5/0", chords="Am@0 F@2 C@1", key="H major"))
    assert [line.split(":")[0] for line in error.value.problems] == ["key", "time_signature", "chords"]
    assert "got the time 1 after 2; allowed: times that increase" in error.value.problems[2]
    with pytest.raises(GenerationInputError) as error:  # a grid without a tempo
        pipe._check(GenerationRequest(time_signature="3/4", downbeat_offset=0.5, chords="Am F"))
    assert error.value.problems == [
        "time_signature: got '3/4' without a bpm; it places beats and bars on a tempo grid, so give bpm too "
        "(or leave it out)",
        "downbeat_offset: got 0.5 without a bpm; it places beats and bars on a tempo grid, so give bpm too "
        "(or leave it out)",
        "chords: got 'Am F', one chord per bar, but no bpm; allowed: a bpm with it, or timed chords (\"Am@0 F@2\")"]
    with pytest.raises(GenerationInputError, match="chords: got int 5; allowed: text"):
        pipe._check(GenerationRequest(chords=5))  # type: ignore[arg-type]
    with pytest.raises(GenerationInputError, match="extra.chords: give chords as its own argument"):
        pipe._check(GenerationRequest(extra={"chords": "Am"}))


def test_a_model_without_the_conditioners_has_no_such_controls(tmp_path):
    plain = GenerationPipeline.from_dir(export_tiny_model(tmp_path / "m", melody=False, prompt=False))
    with pytest.raises(GenerationInputError) as error:
        plain._check(GenerationRequest(bpm=120, time_signature="3/4", chords="Am F"))
    assert error.value.problems == [
        "time_signature: this model has no time_signature control; its controls: bpm, drums, instrument, key",
        "chords: this model has no chords control; its controls: bpm, drums, instrument, key"]


def test_cli_passes_them_and_reports_them_in_json(model_dir, tmp_path, capsys):
    out = tmp_path / "clip.wav"
    code = main(["generate", "--model", str(model_dir), "--bpm", "90", "--time-signature", "3/4", "--chords",
                 "Am F C G", "--downbeat-offset", "0.25", "--seconds", "0.5", "--steps", "1", "--out", str(out),
                 "--json", "--no-progress"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["asked"] == {"bpm": 90.0, "seconds": 0.5, "time_signature": "3/4", "downbeat_offset": 0.25,
                               "chords": "Am F C G"}
    assert out.exists()


def test_cli_bad_values_are_one_line_each_and_write_nothing(model_dir, tmp_path, capsys):
    out = tmp_path / "x.wav"
    code = main(["generate", "--model", str(model_dir), "--bpm", "500", "--time-signature", "5/0", "--chords",
                 "Am Xq7", "--out", str(out), "--no-progress"])
    assert code == 2 and not out.exists()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "cuecraft generate: error: invalid generation arguments (3 problems):"
    assert [line.strip().split(":")[0] for line in lines[1:]] == ["bpm", "time_signature", "chords"]
