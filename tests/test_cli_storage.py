"""Storage errors and interruptions are one line, not a traceback (issue 23).

An output under ``/proc``, a name too long, an output that is a regular file where a folder is
needed, a disk that fills while a file is written: one line on stderr, exit status 2, nothing
half-written. Ctrl-C before a command handles it itself: one line, status 130; a training run
stopped by a signal exits 130 too, not 0 like a finished one.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from cuecraft.cli import main
from tests.data.wavs import write_wav


def _one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"cuecraft {command}: error: "), err
    return err


@pytest.mark.parametrize("out", ["/proc/cuecraft-test/corpus", "x" * 5000])
def test_corpus_make_into_an_unwritable_place_is_one_line(out, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["corpus", "make", "--out", out, "--items", "1", "--seconds", "1"]) == 2
    assert len(_one_line(capsys, "corpus make")) < 600  # a 5,000-character name is shortened


def test_an_out_folder_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "taken").write_text("mine")
    assert main(["corpus", "make", "--out", os.fspath(tmp_path / "taken"), "--items", "1", "--seconds", "1"]) == 2
    _one_line(capsys, "corpus make")
    assert (tmp_path / "taken").read_text() == "mine"


def test_a_full_disk_during_an_atomic_write_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import cuecraft._files as files

    def full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    assert main(["corpus", "make", "--out", os.fspath(tmp_path / "c"), "--items", "1", "--seconds", "1"]) == 2
    assert "No space left on device" in _one_line(capsys, "corpus make")
    assert [p.name for p in (tmp_path / "c").iterdir()] == []  # no torn file, no temporary


def test_data_encode_and_eval_into_proc_are_one_line(tmp_path, capsys):
    from cuecraft.models.representation import MelRepresentation

    MelRepresentation().save(tmp_path / "rep")
    write_wav(tmp_path / "data" / "a.wav", 0.5, 16000, sidecar={"bpm": 120})
    assert main(["data", "encode", os.fspath(tmp_path / "data"), "--representation", os.fspath(tmp_path / "rep"),
                 "--out", "/proc/cuecraft-test/encoded", "--no-progress"]) == 2
    _one_line(capsys, "data encode")
    assert main(["eval", "--audio", os.fspath(tmp_path / "data"), "--out", "/proc/cuecraft-test/eval",
                 "--no-ceiling", "--no-progress"]) == 2
    _one_line(capsys, "eval")


def test_ctrl_c_during_set_up_is_one_line_with_status_130(tmp_path, capsys, monkeypatch):
    import cuecraft.train.loop as loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train", interrupted)
    argv = ["train", "--config", "c.json", "--data", "d", "--out", os.fspath(tmp_path / "run")]
    assert main(argv) == 130
    assert capsys.readouterr().err.strip() == "cuecraft train: interrupted"


def test_a_run_stopped_by_a_signal_exits_130_not_0(tmp_path, capsys, monkeypatch):
    import cuecraft.train.loop as loop

    stopped = loop.TrainResult(Path(tmp_path), 3, True, "float32", [0.5], model_dir=tmp_path / "model")
    monkeypatch.setattr(loop, "train", lambda *args, **kwargs: stopped)
    assert main(["train", "--config", "c.json", "--data", "d", "--out", os.fspath(tmp_path / "run")]) == 130
    assert "stopped (resume with --resume) to step 3" in capsys.readouterr().out
