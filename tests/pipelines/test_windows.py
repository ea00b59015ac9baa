"""Longer pieces, --continue and --inpaint by windows, on a tiny random model with ``backbone.inpaint``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch

import cuecraft.sampling
from cuecraft.cli import main
from cuecraft.errors import GenerationInputError
from cuecraft.pipelines.generate import GenerationPipeline, GenerationRequest
from cuecraft.pipelines.recording import CROSSFADE_SECONDS, Recording, parse_region
from cuecraft.pipelines.windows import next_window, plan_windows, window_metadata
from tests.pipelines.generation_model import export_tiny_model
from tests.pipelines.inpaint_model import HOP, WINDOW_FRAMES, export_inpaint_model

RATE = 16000
OVERLAP = 16  # frames: the default overlap, a quarter of 1 s, round(0.25 * 16000 / 256)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return export_inpaint_model(tmp_path_factory.mktemp("inpaint") / "model")


@pytest.fixture(scope="module")
def pipe(model_dir):
    torch.set_num_threads(1)
    return GenerationPipeline.from_dir(model_dir)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """1.5 s of a decaying tone train, as a file and as samples."""
    t = np.arange(int(1.5 * RATE)) / RATE
    wav = (0.4 * np.sin(2 * np.pi * 330 * t) * np.exp(-3 * (t % 0.25))).astype(np.float32)
    path = tmp_path_factory.mktemp("audio") / "take.wav"
    soundfile.write(path, wav, RATE, subtype="FLOAT")
    return path, wav


@pytest.fixture
def windows(monkeypatch):
    """Every sample() call of the windowed path: (known latent, known mask, result)."""
    calls = []
    original = cuecraft.sampling.sample

    def spy(*args, known=None, **kwargs):
        out = original(*args, known=known, **kwargs)
        calls.append((known[0].clone(), known[1].clone(), out.clone()))
        return out

    monkeypatch.setattr(cuecraft.sampling, "sample", spy)
    return calls


def test_window_plans():
    F, O = WINDOW_FRAMES, OVERLAP
    nothing = lambda n: torch.zeros(n, dtype=torch.bool)
    assert plan_windows(nothing(2 * F - O), F, O) == [(0, F), (F - O, 2 * F - O)]
    long = plan_windows(nothing(400), F, O)
    assert [s for s, _ in long[:-1]] == list(range(0, (F - O) * (len(long) - 1), F - O))  # every F - O frames
    assert long[-1][1] == 400 and long[-2][1] - long[-1][0] >= O  # the last ends at the end, overlapping >= O
    interior = torch.ones(200, dtype=torch.bool)
    interior[40:50] = False
    assert plan_windows(interior, F, O) == [(14, 77)]  # a short region is centred: context on both sides
    wide = torch.ones(300, dtype=torch.bool)
    wide[50:200] = False
    spans = plan_windows(wide, F, O)
    assert spans[0] == (50 - O, 50 - O + F) and all(e - s == F for s, e in spans)
    filled = wide.clone()
    for start, end in spans:
        assert filled[start: start + O].all()  # each window starts on >= O known frames
        filled[start:end] = True
    assert filled.all() and next_window(filled, F, O) is None


def test_a_two_window_piece_has_the_exact_length_and_overlaps_by_the_overlap(pipe, windows):
    samples = (2 * WINDOW_FRAMES - OVERLAP) * HOP  # two windows exactly: 110 frames
    [result] = pipe.generate([GenerationRequest(bpm=100, seconds=samples / RATE)], steps=2, measured=False)
    assert result.audio[0].shape == (samples,) and np.isfinite(result.audio[0]).all()
    assert result.asked["overlap"] == 0.25
    assert len(windows) == 2
    (_, first_mask, first), (second_latent, second_mask, second) = windows
    assert not first_mask.any() and first.shape[-1] == WINDOW_FRAMES  # nothing known: plain generation
    assert second_mask[0, :OVERLAP].all() and not second_mask[0, OVERLAP:].any()
    # the second window's known prefix is the first window's last OVERLAP frames, and stays exactly that
    assert torch.equal(second_latent[..., :OVERLAP], first[..., WINDOW_FRAMES - OVERLAP:])
    assert torch.equal(second[..., :OVERLAP], first[..., WINDOW_FRAMES - OVERLAP:])


def test_a_continuation_keeps_the_recording_and_adds_the_seconds(pipe, recording, windows):
    path, wav = recording
    [result] = pipe.generate([GenerationRequest(bpm=100, seconds=0.5, context=Recording.continued(path))],
                             steps=2, candidates=2, keep=2, measured=False)
    assert [a.shape for a in result.audio] == [(len(wav) + RATE // 2,)] * 2
    assert result.asked["continue"] == str(path) and result.request.seconds == pytest.approx(2.0)
    join = (len(wav) // HOP - 1) * HOP  # the last frame's analysis window (n_fft 512) reaches past the end
    untouched = join - round(CROSSFADE_SECONDS * RATE)
    for audio in result.audio:
        np.testing.assert_array_equal(audio[:untouched], wav[:untouched])  # the original, sample for sample
        assert np.abs(audio[untouched:join] - wav[untouched:join]).max() > 0  # the crossfade into decoded audio
    assert not np.array_equal(result.audio[0][join:], result.audio[1][join:])  # candidates differ after it
    _, mask, _ = windows[0]
    known = int(mask[0].sum())
    assert known >= OVERLAP and mask[0, :known].all()


def test_an_inpainting_regenerates_the_region_and_keeps_the_rest(pipe, recording, windows):
    path, wav = recording
    [result] = pipe.generate([GenerationRequest(context=Recording.inpainted(path, "0.6:0.9"))], steps=2,
                             measured=False)
    audio = result.audio[0]
    assert audio.shape == wav.shape and result.asked["region"] == [0.6, 0.9]
    fade = round(CROSSFADE_SECONDS * RATE)
    start, end = round(0.6 * RATE), round(0.9 * RATE)
    np.testing.assert_array_equal(audio[: start - fade], wav[: start - fade])
    np.testing.assert_array_equal(audio[end + fade:], wav[end + fade:])
    assert np.abs(audio[start:end] - wav[start:end]).max() > 1e-3
    [(_, mask, _)] = windows  # one window, the region inside it with known frames on both sides
    assert mask[0, 0] and mask[0, -1] and not mask[0].all()


def test_the_beat_grid_and_the_melody_run_on_across_windows():
    from cuecraft.attributes import WavCondition
    from cuecraft.config.build import build_stack

    config = {"cond_dim": 8, "backbone": {"input_concat_dim": 6}, "conditioners": [
        {"id": "beats", "type": "beats", "roles": ["input_concat"], "config": {"frame_rate": 25, "duration": 4.0}}]}
    stack = build_stack(config, seed=0)
    melody = WavCondition(torch.arange(8000.0)[None] / 8000, 1000)
    fake = SimpleNamespace(controls={"melody": SimpleNamespace(conditioner="tune")})
    metadata = {"bpm": 100.0, "time_signature": "3/4", "seek_time": None, "tune": melody}
    shifted = window_metadata(fake, metadata, 1.0, 4.0)
    assert shifted["seek_time"] == 1.0 and metadata["seek_time"] is None
    assert torch.equal(shifted["tune"].wav, melody.wav[..., 1000:5000])  # the melody from the window's start
    whole = stack.condition([metadata])["beats"].embedding[0]  # [100, 6] from 0 s
    window = stack.condition([shifted])["beats"].embedding[0]  # from 1 s
    torch.testing.assert_close(window[:75], whole[25:], atol=1e-5, rtol=0)  # the same grid, moved by 1 s
    assert window_metadata(fake, metadata, 9.0, 4.0)["tune"] is None  # past the melody's end: its null


def test_a_model_without_inpaint_refuses_windows(tmp_path):
    plain = GenerationPipeline.from_dir(export_tiny_model(tmp_path / "m"))
    assert plain.inpaint is False
    wav = (np.zeros(RATE, np.float32), RATE)
    with pytest.raises(GenerationInputError) as error:
        plain.generate([GenerationRequest(context=Recording.continued(wav), overlap=0.2)], steps=1)
    assert error.value.problems == [
        "continue: this model cannot continue a recording: it was trained without inpainting channels "
        "(backbone.inpaint false); use a model trained with backbone.inpaint true",
        "overlap: only for a model trained with backbone.inpaint true (windows that continue each other); this "
        "one generates one window of its training length (1 s)"]
    with pytest.raises(GenerationInputError, match="inpaint: this model cannot regenerate a region"):
        plain.generate([GenerationRequest(context=Recording.inpainted(wav, (0.1, 0.2)))], steps=1)
    with pytest.raises(GenerationInputError, match=r"seconds: expected a number in \(0, 1\] \(the length this "
                                                    r"model was trained on\); got 3"):
        plain.generate([GenerationRequest(seconds=3)], steps=1)


def test_every_bad_input_is_reported_at_once(pipe, recording, tmp_path):
    path, _ = recording
    with pytest.raises(GenerationInputError) as error:
        pipe.generate([GenerationRequest(context=Recording.inpainted(tmp_path / "absent.wav", "4.5:2.0"),
                                         seconds=2, overlap=1.0)], steps=1)
    text = "\n".join(error.value.problems)
    for expected in ("overlap: expected a number of seconds in (0, 1); got 1.0", "inpaint: ", "absent.wav",
                     "region: start 4.5 s is not before end 2 s",
                     "seconds: an inpainting keeps the recording's length; leave seconds out"):
        assert expected in text, expected
    with pytest.raises(GenerationInputError, match=r"region: ends at 3 s, past the end of .*take.wav \(1.500 s\)"):
        pipe.generate([GenerationRequest(context=Recording.inpainted(path, (1.0, 3.0)))], steps=1)
    nan = np.zeros(RATE, np.float32)
    nan[10] = np.nan
    with pytest.raises(GenerationInputError, match="continue: .*NaN"):
        pipe.generate([GenerationRequest(context=Recording.continued((nan, RATE)))], steps=1)
    with pytest.raises(GenerationInputError, match=r"seconds: expected a number of seconds in \(0, 3600\]"):
        pipe.generate([GenerationRequest(seconds=float("nan"))], steps=1)
    assert parse_region("nan:2")[1] == ["region: start and end must be finite seconds; got 'nan:2'"]
    assert parse_region("2")[1] == ["region: expected START:END in seconds (e.g. 2.0:4.5); got '2'"]
    assert parse_region((-1, 2))[1] == ["region: starts at -1 s, before the recording's start (0 s)"]
    assert parse_region("0.5:1.25") == ((0.5, 1.25), [])


def test_cli_windows_continue_and_inpaint(model_dir, recording, tmp_path, capsys):
    path, wav = recording
    common = ["generate", "--model", str(model_dir), "--steps", "1", "--no-progress"]
    out = tmp_path / "long.wav"
    assert main([*common, "--seconds", "1.76", "--overlap", "0.25", "--out", str(out)]) == 0
    assert soundfile.info(out).frames == round(1.76 * RATE)
    out = tmp_path / "more.wav"
    assert main([*common, "--continue", str(path), "--seconds", "0.5", "--out", str(out)]) == 0
    assert soundfile.info(out).frames == len(wav) + RATE // 2
    out = tmp_path / "fixed.wav"
    assert main([*common, "--inpaint", str(path), "--region", "0.2:0.4", "--out", str(out), "--json"]) == 0
    assert soundfile.info(out).frames == len(wav)
    assert '"region": [\n      0.2,\n      0.4\n    ]' in capsys.readouterr().out


def test_cli_errors_exit_2_and_write_nothing(model_dir, recording, tmp_path, capsys):
    path, _ = recording
    out = tmp_path / "x.wav"
    common = ["generate", "--model", str(model_dir), "--steps", "1", "--no-progress", "--out", str(out)]
    assert main([*common, "--inpaint", str(tmp_path / "absent.wav"), "--region", "2:1"]) == 2
    err = capsys.readouterr().err
    assert "absent.wav" in err and "region: start 2 s is not before end 1 s" in err and not out.exists()
    assert main([*common, "--region", "0:1"]) == 2
    assert "--region: only with --inpaint FILE" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit) as exit_:
        main([*common, "--continue", str(path), "--inpaint", str(path)])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    plain = export_tiny_model(tmp_path / "plain")
    assert main(["generate", "--model", str(plain), "--continue", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "continue: this model cannot continue a recording" in err and not out.exists()
