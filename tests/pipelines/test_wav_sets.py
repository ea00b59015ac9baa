"""``--keep N`` outputs are written as a set: a kill never leaves a set mixing two runs once the
next run has tidied the folder, and no temporary file of a dead writer stays behind."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cuecraft.cli import main
from cuecraft.pipelines.wav import finish_interrupted_sets, write_wavs

soundfile = pytest.importorskip("soundfile")

RATE = 16000


def takes(level: float, count: int = 3) -> list[np.ndarray]:
    """``count`` waveforms [T] told apart by their level: take i is level + i / 100 throughout."""
    return [np.full(64, level + i / 100, dtype=np.float32) for i in range(count)]


def levels(folder, names) -> list[float]:
    return [round(float(soundfile.read(str(folder / name), dtype="float32")[0].mean()), 2) for name in names]


NAMES = ["out_0.wav", "out_1.wav", "out_2.wav"]


def killed_writer(folder, level: float, *, die_at: str, after: int) -> None:
    """Run ``write_wavs`` in a child process that dies (``os._exit``: no clean-up runs, as with
    SIGKILL) at the ``after``-th call of ``die_at`` (``write``: a WAV being written to its
    temporary; ``replace``: a rename, the first of which commits the journal)."""
    script = textwrap.dedent(f"""
        import os, sys
        import numpy as np, soundfile
        from cuecraft.pipelines import wav
        calls = [0]
        def dying(original):
            def call(*args, **kwargs):
                calls[0] += 1
                if calls[0] > {after}:
                    os._exit(137)
                return original(*args, **kwargs)
            return call
        if {die_at!r} == "write":
            soundfile.write = dying(soundfile.write)
        else:
            os.replace = dying(os.replace)
        waves = [np.full(64, {level} + i / 100, dtype=np.float32) for i in range(3)]
        wav.write_wavs(sys.argv[1], waves, {RATE})
        sys.exit(0)
    """)
    result = subprocess.run([sys.executable, "-c", script, str(folder / "out.wav")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 137, result.stderr


def hidden(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def test_a_set_is_written_whole_with_nothing_left_beside_it(tmp_path):
    paths = write_wavs(tmp_path / "out.wav", takes(0.5), RATE)
    assert paths == [tmp_path / name for name in NAMES]
    assert sorted(os.listdir(tmp_path)) == NAMES
    assert levels(tmp_path, NAMES) == [0.5, 0.51, 0.52]
    assert write_wavs(tmp_path / "one.wav", takes(0.25, 1), RATE) == [tmp_path / "one.wav"]


def test_an_error_while_writing_leaves_the_earlier_set_and_no_temporary(tmp_path, monkeypatch):
    write_wavs(tmp_path / "out.wav", takes(0.25), RATE)
    original, calls = soundfile.write, []

    def fail_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(*args, **kwargs)

    monkeypatch.setattr(soundfile, "write", fail_on_the_second)
    with pytest.raises(OSError, match="disk full"):
        write_wavs(tmp_path / "out.wav", takes(0.5), RATE)
    assert sorted(os.listdir(tmp_path)) == NAMES
    assert levels(tmp_path, NAMES) == [0.25, 0.26, 0.27]


def test_killed_while_writing_temporaries_the_earlier_set_stays_and_the_rerun_removes_them(tmp_path):
    write_wavs(tmp_path / "out.wav", takes(0.25), RATE)
    killed_writer(tmp_path, 0.5, die_at="write", after=2)  # two of three temporaries written
    assert len(hidden(tmp_path)) == 3  # two whole temporaries and the one being written
    assert levels(tmp_path, NAMES) == [0.25, 0.26, 0.27]  # nothing renamed: no commit happened
    assert finish_interrupted_sets(tmp_path) == 0
    assert sorted(os.listdir(tmp_path)) == NAMES and levels(tmp_path, NAMES) == [0.25, 0.26, 0.27]


@pytest.mark.parametrize("renamed", [0, 1, 2])
def test_killed_after_the_commit_the_rerun_finishes_the_set(tmp_path, renamed):
    write_wavs(tmp_path / "out.wav", takes(0.25), RATE)
    killed_writer(tmp_path, 0.5, die_at="replace", after=1 + renamed)  # the journal's rename, then `renamed`
    on_disk = levels(tmp_path, NAMES)
    assert on_disk == [0.5, 0.51, 0.52][:renamed] + [0.25, 0.26, 0.27][renamed:]  # mixed until tidied
    assert any(name.endswith(".wavset") for name in hidden(tmp_path))
    assert finish_interrupted_sets(tmp_path) == 3 - renamed
    assert sorted(os.listdir(tmp_path)) == NAMES  # no journal, no temporary
    assert levels(tmp_path, NAMES) == [0.5, 0.51, 0.52]  # the new set, whole


def test_a_live_writers_files_are_left_alone(tmp_path):
    write_wavs(tmp_path / "out.wav", takes(0.25), RATE)
    killed_writer(tmp_path, 0.5, die_at="replace", after=1)
    journal = next(name for name in hidden(tmp_path) if name.endswith(".wavset"))
    host, pid = journal[:-len(".wavset")].rsplit(".", 1)[1].split("~")
    live = journal.replace(f"~{pid}.wavset", f"~{os.getpid()}.wavset")  # as if this process had written it
    os.rename(tmp_path / journal, tmp_path / live)
    finish_interrupted_sets(tmp_path)
    assert live in hidden(tmp_path)  # not finished: its writer is running


def test_cli_rerun_finishes_a_killed_set_then_writes_its_own(musicldm_dir, tmp_path, capsys):
    write_wavs(tmp_path / "out.wav", takes(0.25), RATE)
    killed_writer(tmp_path, 0.5, die_at="replace", after=2)  # out_0 renamed, out_1 and out_2 pending
    code = main(["musicldm", "--model", str(musicldm_dir), "x", "--seconds", "0.016", "--steps", "2",
                 "--candidates", "2", "--keep", "2", "--no-progress", "--out", str(tmp_path / "out.wav")])
    assert code == 0, capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == NAMES  # no journal, no temporary of the dead writer
    assert levels(tmp_path, ["out_2.wav"]) == [0.52]  # the killed set was finished before this run wrote
    frames = [soundfile.info(str(tmp_path / name)).frames for name in NAMES[:2]]
    assert frames == [256, 256]  # this run's two takes (0.016 s at 16 kHz)


def test_cli_write_error_keeps_the_earlier_set(musicldm_dir, tmp_path, capsys, monkeypatch):
    write_wavs(tmp_path / "out.wav", takes(0.25, 2), RATE)
    original, calls = soundfile.write, []

    def fail_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(*args, **kwargs)

    monkeypatch.setattr(soundfile, "write", fail_on_the_second)
    out = tmp_path / "out.wav"
    code = main(["musicldm", "--model", str(musicldm_dir), "x", "--seconds", "0.016", "--steps", "2",
                 "--candidates", "2", "--keep", "2", "--no-progress", "--out", str(out)])
    assert code == 2 and capsys.readouterr().err == f"cuecraft musicldm: error: cannot write {out}: disk full\n"
    assert sorted(os.listdir(tmp_path)) == NAMES[:2] and levels(tmp_path, NAMES[:2]) == [0.25, 0.26]
