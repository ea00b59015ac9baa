"""GenerationPipeline and `cuecraft generate` on a tiny random model with every built-in control."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cuecraft.cli import main
from cuecraft.errors import GenerationInputError
from cuecraft.pipelines import generate as generate_module
from cuecraft.pipelines.generate import GenerationPipeline, GenerationRequest, adherence_score
from tests.pipelines.generation_model import INSTRUMENTS, KEYS, export_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return export_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def pipe(model_dir):
    torch.set_num_threads(1)
    return GenerationPipeline.from_dir(model_dir)


def test_controls_come_from_the_model_config(pipe):
    c = pipe.controls
    assert set(c) == {"prompt", "negative_prompt", "bpm", "key", "instrument", "drums", "melody"}
    assert c["bpm"].range == (60.0, 180.0) and c["key"].options == tuple(KEYS)
    assert c["instrument"].options == tuple(INSTRUMENTS) and c["melody"].conditioner == "self_wav"
    assert pipe.sample_rate == 16000 and pipe.max_seconds == 1.0


def test_exact_length_and_normalised_request(pipe):
    [result] = pipe.generate([GenerationRequest(prompt="  a tune ", bpm=90, key="am", instrument="Piano", drums=True,
                                                seconds=0.7)], steps=2, measured=False)
    assert [a.shape for a in result.audio] == [(11200,)] and result.audio[0].dtype == np.float32
    assert np.isfinite(result.audio[0]).all() and np.abs(result.audio[0]).max() <= 1.0
    assert result.asked == {"prompt": "a tune", "bpm": 90.0, "key": "A minor", "instrument": "piano",
                            "drums": "on", "seconds": 0.7}


def test_same_seed_same_audio_and_independent_of_the_batch(pipe):
    a = GenerationRequest(bpm=100, key="C major")
    b = GenerationRequest(bpm=150, instrument="flute", drums="off")
    together = pipe.generate([a, b], steps=3, seed=5, measured=False, batch_size=2)
    apart = pipe.generate([a, b], steps=3, seed=5, measured=False, batch_size=1)
    repeat = pipe.generate([a, b], steps=3, seed=5, measured=False, batch_size=1)
    for x, y, z in zip(together, apart, repeat):
        np.testing.assert_array_equal(y.audio[0], z.audio[0])  # the same call: bit-exact
        # another batching: the same noise and conditions; only float rounding differs (Griffin-Lim
        # amplifies it a little), so the waveforms agree closely
        assert np.corrcoef(x.audio[0], y.audio[0])[0, 1] > 0.98
    other_seed = pipe.generate([a], steps=3, seed=6, measured=False)[0].audio[0]
    assert np.corrcoef(other_seed, apart[0].audio[0])[0, 1] < 0.5


def test_conditions_change_the_output(pipe):
    base = pipe.generate([GenerationRequest(key="C major")], steps=2, measured=False)[0].audio[0]
    for change in ({"key": "E minor"}, {"bpm": 170.0}, {"instrument": "flute"}, {"drums": "off"},
                   {"melody": (np.sin(np.linspace(0, 800 * np.pi, 16000)).astype(np.float32), 16000)},
                   {"negative_prompt": "noise"}):
        request = GenerationRequest(**{"key": "C major", **change})
        other = pipe.generate([request], steps=2, measured=False)[0].audio[0]
        assert np.abs(other - base).max() > 1e-4, change


def test_guidance_one_samples_the_conditional_branch_alone(pipe):
    request = GenerationRequest(key="G major", negative_prompt="noise")
    plain = pipe.generate([request], steps=2, guidance=1.0, measured=False)[0].audio[0]
    guided = pipe.generate([request], steps=2, guidance=2.0, measured=False)[0].audio[0]
    assert plain.shape == guided.shape and np.abs(plain - guided).max() > 1e-4
    # the conditional branch alone is what guidance_inputs would pair with the negative one
    _, metadata = pipe._check(request)
    conditional, _ = pipe.stack.guidance_inputs([metadata], [{**pipe._null_metadata(), "prompt": "noise"}])
    alone = pipe.stack.fuse(pipe.stack.condition([metadata]))
    torch.testing.assert_close(alone.global_cond, conditional.global_cond)
    torch.testing.assert_close(alone.cross_attention_src, conditional.cross_attention_src)


def test_candidates_are_ranked_by_adherence(pipe, monkeypatch):
    tempos = iter([90.0, 120.0, 118.0, 60.0])
    monkeypatch.setattr(generate_module, "measure", lambda wav, rate: {"tempo": next(tempos), "key": "C major"})
    [result] = pipe.generate([GenerationRequest(bpm=120, key="C major")], steps=1, candidates=4, keep=2)
    assert [m["tempo"] for m in result.measured] == [120.0, 118.0]
    # the key, plus 1 - (relative tempo error / 4 %): 2 for 120 bpm, 1 + (1 - 0.0167 / 0.04) for 118
    assert result.scores == pytest.approx([2.0, 1 + (1 - (2 / 120) / 0.04)])
    assert len(result.audio) == 2


def test_adherence_score():
    request = GenerationRequest(bpm=100, key="A minor")
    assert adherence_score(request, {"tempo": 100.0, "key": "A minor"}) == 2.0
    assert adherence_score(request, {"tempo": 102.0, "key": "C major"}) == pytest.approx(0.5)
    assert adherence_score(GenerationRequest(), {"tempo": 50.0, "key": "C major"}) == 0.0


def test_every_bad_value_is_reported_at_once(pipe):
    request = GenerationRequest(bpm=300, key="H major", instrument="kazoo", drums="maybe", seconds=3.0,
                                melody=("not audio", 16000))
    with pytest.raises(GenerationInputError) as error:
        pipe.generate([request], steps=1)
    text = str(error.value)
    for expected in ("bpm: expected a number in [60, 180]", "key: cannot read 'H major'",
                     "instrument: unknown value 'kazoo'; this model knows: piano, marimba, flute",
                     "drums: unknown value 'maybe'; this model knows: on, off", "seconds: expected a number in (0, 1]",
                     "melody:"):
        assert expected in text, expected
    with pytest.raises(GenerationInputError, match="keep: expected an int in \\[1, candidates = 2\\]"):
        pipe.generate([GenerationRequest()], steps=1, candidates=2, keep=3)
    with pytest.raises(GenerationInputError, match="steps: expected an int >= 1"):
        pipe.generate([GenerationRequest()], steps=0)


def test_a_control_the_model_lacks_is_an_error(tmp_path):
    plain = GenerationPipeline.from_dir(export_tiny_model(tmp_path / "m", melody=False, prompt=False))
    assert "melody" not in plain.controls and "prompt" not in plain.controls
    with pytest.raises(GenerationInputError, match="melody: this model has no melody control; its controls: bpm, "
                                                   "drums, instrument, key"):
        plain.generate([GenerationRequest(melody=(np.zeros(100, np.float32), 16000))], steps=1)
    with pytest.raises(GenerationInputError, match="prompt: this model has no prompt control"):
        plain("hello", steps=1)


def test_timing_numbers_are_set_from_the_length_not_asked(tmp_path):
    timed = GenerationPipeline.from_dir(export_tiny_model(tmp_path / "m", melody=False, prompt=False, timing=True))
    assert "seconds_total" not in timed.controls and "seconds_start" not in timed.controls
    _, metadata = timed._check(GenerationRequest(bpm=90, seconds=0.5))
    assert metadata["seconds_total"] == 1.0 and metadata["seconds_start"] == 0.0  # made at 1 s, then cut
    with pytest.raises(GenerationInputError, match="give seconds as its own argument"):
        timed._check(GenerationRequest(extra={"seconds": 3}))


def test_conditions_rows_show_what_the_model_receives(pipe):
    rows = {r["name"]: r for r in pipe.conditions(GenerationRequest(prompt="a tune", key="G major"))}
    assert rows["key"]["mask_coverage"] == 1.0 and rows["instrument"]["mask_coverage"] == 0.0
    assert rows["prompt"]["roles"] == ["cross"] and rows["self_wav"]["roles"] == ["input_concat"]
    assert rows["key"]["shape"] == [1, 1, 16]


def test_measure_reads_tempo_and_key_of_a_click_track():
    rate = 16000
    wav = np.zeros(rate * 6, np.float32)
    for beat in np.arange(0, 6, 0.5):  # 120 bpm
        start = int(beat * rate)
        wav[start:start + 400] += np.hanning(400).astype(np.float32) * np.sin(np.arange(400) * 0.9)
    measured = generate_module.measure(wav, rate)
    assert measured["tempo"] == pytest.approx(120, rel=0.04)


def test_cli_writes_wav_png_and_json(model_dir, tmp_path, capsys):
    out = tmp_path / "clip.wav"
    code = main(["generate", "a tune", "--model", str(model_dir), "--bpm", "100", "--key", "C major", "--drums",
                 "off", "--seconds", "0.5", "--steps", "2", "--candidates", "2", "--keep", "2", "--out", str(out),
                 "--json", "--no-progress"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["asked"] == {"prompt": "a tune", "bpm": 100.0, "key": "C major", "drums": "off", "seconds": 0.5}
    assert report["settings"]["guidance"] == 2.0 and len(report["outputs"]) == 2
    import soundfile

    for output in report["outputs"]:
        assert soundfile.info(output["path"]).frames == 8000
        assert open(output["spectrogram"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        assert set(output["measured"]) == {"tempo", "key"}


def test_cli_errors_are_one_line_and_write_nothing(model_dir, tmp_path, capsys):
    out = tmp_path / "x.wav"
    code = main(["generate", "--model", str(model_dir), "--instrument", "kazoo", "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "instrument: unknown value 'kazoo'" in capsys.readouterr().err
    assert main(["generate", "--model", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "not a readable exported model" in capsys.readouterr().err


def test_cli_measures_tempo_and_key_only_when_asked(model_dir, tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(generate_module, "measure", lambda wav, rate: calls.append(rate) or {"tempo": 99.0,
                                                                                              "key": "C major"})
    args = ["generate", "a tune", "--model", str(model_dir), "--seconds", "0.5", "--steps", "2", "--no-progress",
            "--out", str(tmp_path / "clip.wav")]
    assert main(args) == 0
    assert calls == [] and "measured" not in capsys.readouterr().out  # librosa's tracker is not paid by default
    assert main([*args, "--measure"]) == 0
    assert calls == [16000] and "measured tempo 99.0 bpm, key C major" in capsys.readouterr().out


def test_cli_prints_no_progress_bar_of_model_loading(model_dir, tmp_path, capfd):
    from transformers.utils import logging as transformers_logging

    before = transformers_logging.is_progress_bar_enabled()  # other CLI commands in this process may have set it
    transformers_logging.enable_progress_bar()
    try:
        assert main(["generate", "a tune", "--model", str(model_dir), "--seconds", "0.5", "--steps", "1",
                     "--no-progress", "--out", str(tmp_path / "clip.wav")]) == 0
        assert capfd.readouterr().err == ""  # no "Loading weights" bar
        assert transformers_logging.is_progress_bar_enabled()  # and the user's setting is left as it was
    finally:
        (transformers_logging.enable_progress_bar if before else transformers_logging.disable_progress_bar)()


def test_generate_command_imports_nothing_it_does_not_use():
    import subprocess
    import sys

    code = ("import sys, cuecraft.cli, cuecraft.cli.generate, cuecraft.pipelines.generate, cuecraft.pipelines.wav, "
            "cuecraft.train.media; print(sorted(m for m in ('transformers', 'librosa', 'numba', 'matplotlib', "
            "'scipy.signal', 'diffusers') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
    code = ("import sys, cuecraft; cuecraft.load_builtin(); print(sorted(m for m in ('transformers', 'librosa', "
            "'numba') if m in sys.modules))")  # the shipped MiniLM is read without transformers
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
