"""``cuecraft generate`` and ``GenerationPipeline`` on hostile input (issue 23).

Unbounded settings, devices this build lacks, model folders whose model.json is not what training
writes, output paths the file system refuses and journals planted in a shared output folder: each
is a typed error (one line from the CLI, status 2) in bounded time and memory, and nothing is renamed
or half-written.
"""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch

from cuecraft.cli import main
from cuecraft.errors import CheckpointError, ConfigError, GenerationError, GenerationInputError
from cuecraft.pipelines.generate import GenerationPipeline, GenerationRequest
from tests.pipelines.generation_model import export_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return export_tiny_model(tmp_path_factory.mktemp("tiny") / "model", melody=False, prompt=False)


@pytest.fixture(scope="module")
def pipe(model_dir):
    torch.set_num_threads(1)
    return GenerationPipeline.from_dir(model_dir)


@pytest.mark.parametrize("settings, message", [
    (dict(steps=10**9), "steps: expected an int >= 1, at most 1,000"),
    (dict(steps=2**63), "steps: expected an int >= 1, at most 1,000"),
    (dict(candidates=10**9), "candidates: expected an int >= 1, at most 64"),
    (dict(batch_size=10**12), "batch_size: expected an int >= 1, at most 1,024"),
    (dict(seed=2**70), "seed: expected an int >= 0"),
    (dict(guidance=1e10), "guidance: expected a number >= 0, at most 100"),
    (dict(guidance=float("nan")), "guidance: expected a number >= 0, at most 100"),
])
def test_unbounded_settings_are_refused_before_any_work(pipe, settings, message):
    with pytest.raises(GenerationInputError, match=message):
        pipe.generate([GenerationRequest()], **settings)


def test_a_clip_shorter_than_the_shortest_is_refused_up_front(pipe):
    with pytest.raises(GenerationInputError, match="seconds: 1e-09 is shorter than the shortest clip, 0.1 s"):
        pipe.generate([GenerationRequest(seconds=1e-9)], steps=1)


def test_non_finite_audio_is_a_generation_error_not_a_failure_in_measuring(model_dir):
    broken = GenerationPipeline.from_dir(model_dir)
    with torch.no_grad():
        next(broken.dit.parameters()).fill_(float("nan"))  # as a model exported with NaN weights
    with pytest.raises(GenerationError, match="request 0: the sampled audio is not finite"):
        broken.generate([GenerationRequest()], steps=1)


@pytest.mark.parametrize("device", ["cuda", "mps", "xpu", "meta", "garbage", "cuda:99"])
def test_cli_device_this_build_lacks_is_one_line(device, tmp_path, capsys):
    if torch.cuda.is_available() and device == "cuda":
        pytest.skip("this machine has CUDA")
    assert main(["generate", "--device", device, "--out", str(tmp_path / "x.wav"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cuecraft generate: error: --device: ") and "devices here: cpu" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "x.wav").exists()


def test_cli_a_100_kb_key_is_not_echoed_in_full(model_dir, tmp_path, capsys):
    assert main(["generate", "--model", str(model_dir), "--key", "Z" * 100_000, "--steps", "1",
                 "--out", str(tmp_path / "x.wav"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot read 'ZZZ" in err and len(err) < 2000


def test_cli_steps_and_candidates_past_their_bounds_are_one_line(model_dir, tmp_path, capsys):
    for flag, value in (("--steps", str(2**63)), ("--candidates", "1000000000"), ("--guidance", "1e10")):
        assert main(["generate", "--model", str(model_dir), flag, value, "--out", str(tmp_path / "x.wav"),
                     "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("cuecraft generate: error: invalid generation arguments") and "Traceback" not in err


def _model_copy(model_dir, tmp_path, info) -> str:
    import shutil

    folder = shutil.copytree(model_dir, tmp_path / "copy")
    (folder / "model.json").unlink()
    if isinstance(info, str):
        (folder / "model.json").write_text(info)
    else:
        (folder / "model.json").write_text(json.dumps(info))
    return str(folder)


def test_model_json_without_a_config_or_with_a_string_config_is_a_checkpoint_error(model_dir, tmp_path,
                                                                                  monkeypatch):
    info = json.loads((model_dir / "model.json").read_text())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "planted.json").write_text("{}")  # a string config must not open files from the working folder
    for config in ("missing", "planted.json"):
        changed = {k: v for k, v in info.items() if k != "config"}
        if config != "missing":
            changed["config"] = config
        folder = _model_copy(model_dir, tmp_path / f"case-{config}", changed)
        with pytest.raises(CheckpointError, match="its 'config' must be the model config"):
            GenerationPipeline.from_dir(folder)


def test_model_json_deep_or_a_fifo_or_with_an_infinite_segment_is_typed(model_dir, tmp_path):
    folder = _model_copy(model_dir, tmp_path / "deep", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="nested deeper"):
        GenerationPipeline.from_dir(folder)
    os.unlink(os.path.join(folder, "model.json"))
    os.mkfifo(os.path.join(folder, "model.json"))
    signal.alarm(10)
    try:
        with pytest.raises(CheckpointError, match="it is a FIFO, not a regular file"):
            GenerationPipeline.from_dir(folder)
    finally:
        signal.alarm(0)
    info = json.loads((model_dir / "model.json").read_text())
    info["config"]["training"]["segment_seconds"] = float("inf")
    folder = _model_copy(model_dir, tmp_path / "inf", json.dumps(info))
    with pytest.raises(ConfigError, match="training.segment_seconds"):
        GenerationPipeline.from_dir(folder)


def test_cli_out_under_proc_is_one_line(model_dir, capsys):
    assert main(["generate", "--model", str(model_dir), "--steps", "1", "--out", "/proc/cuecraft-test.wav",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cuecraft generate: error: /proc/") and len(err.splitlines()) == 1, err[:2000]


def test_a_full_disk_leaves_neither_a_wav_without_its_png_nor_a_temporary(model_dir, tmp_path, capsys,
                                                                          monkeypatch):
    import cuecraft.pipelines.wav as wav

    real, calls = wav.os.fsync, []

    def full_at_the_second(descriptor):  # the WAV's temporary is synced, the PNG's finds the disk full
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(descriptor)

    monkeypatch.setattr(wav.os, "fsync", full_at_the_second)
    out = tmp_path / "out" / "x.wav"
    out.parent.mkdir()
    assert main(["generate", "--model", str(model_dir), "--steps", "1", "--out", str(out), "--no-progress"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert os.listdir(out.parent) == []
    monkeypatch.setattr(wav.os, "fsync", real)
    assert main(["generate", "--model", str(model_dir), "--steps", "1", "--out", str(out), "--no-progress"]) == 0
    assert sorted(os.listdir(out.parent)) == ["x.png", "x.wav"]


def _planted(folder, pid: int, renames, *, owner: int | None = None) -> str:
    from cuecraft._files import _HOST

    journal = folder / f".out.wav.{_HOST}~{pid}.wavset"
    journal.write_text(json.dumps({"format": "cuecraft-wav-set", "version": 1, "renames": renames}))
    if owner is not None:
        os.chown(journal, owner, owner)
    return journal.name


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_planted_journal_renames_nothing_outside_its_set(tmp_path):
    from cuecraft.pipelines.wav import finish_interrupted_sets

    (tmp_path / "mine.txt").write_text("my notes")
    (tmp_path / "victim.wav").write_text("my take")
    pid = _dead_pid()
    _planted(tmp_path, pid, [["mine.txt", "victim.wav"], ["victim.wav", "out.wav"], ["../x", "out_0.wav"]])
    assert finish_interrupted_sets(tmp_path) == 0
    assert (tmp_path / "victim.wav").read_text() == "my take" and (tmp_path / "mine.txt").read_text() == "my notes"
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="planting another user's journal needs chown")
def test_another_users_journal_is_not_replayed(tmp_path):
    from cuecraft._files import _HOST
    from cuecraft.pipelines.wav import finish_interrupted_sets

    pid = _dead_pid()
    temporary = tmp_path / f".out.wav.{_HOST}~{pid}~abc.tmp"
    temporary.write_text("theirs")
    os.chown(temporary, 4242, 4242)
    _planted(tmp_path, pid, [[temporary.name, "out.wav"]], owner=4242)
    (tmp_path / "out.wav").write_text("mine")
    finish_interrupted_sets(tmp_path)
    assert (tmp_path / "out.wav").read_text() == "mine"


def test_a_journal_whose_rename_fails_does_not_break_later_runs(tmp_path):
    from cuecraft._files import _HOST
    from cuecraft.pipelines.wav import finish_interrupted_sets, write_wavs

    pid = _dead_pid()
    temporary = tmp_path / f".out.wav.{_HOST}~{pid}~abc.tmp"
    temporary.write_text("x")
    (tmp_path / "out.wav").mkdir()  # the rename target is a folder now: os.replace refuses it
    _planted(tmp_path, pid, [[temporary.name, "out.wav"]])
    assert finish_interrupted_sets(tmp_path) == 0
    assert not any(name.endswith(".wavset") for name in os.listdir(tmp_path))  # the journal is gone
    write_wavs(tmp_path / "next.wav", [np.zeros(64, np.float32)] * 2, 16000)  # and later sets are written
    assert {"next_0.wav", "next_1.wav"} <= set(os.listdir(tmp_path))


def test_a_melody_longer_than_the_bound_is_refused_from_its_header(tmp_path):
    import soundfile

    from cuecraft.errors import AudioReadError
    from cuecraft.pipelines.generate import _melody_waveform

    soundfile.write(tmp_path / "hour.wav", np.zeros(3600 * 1000, np.float32), 1000, subtype="PCM_16")
    with pytest.raises(AudioReadError, match=r"the limit is 600.0 s \(a melody recording is at most 600 s\)"):
        _melody_waveform(tmp_path / "hour.wav")
    with pytest.raises(GenerationInputError, match=r"expected a rate in \[1,000, 768,000\] Hz"):
        _melody_waveform((np.zeros(100, np.float32), 10**12))
