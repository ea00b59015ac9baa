"""``cuecraft musicldm``: WAV files written atomically, progress on stderr, one-line errors."""

import os
import shutil

import numpy as np
import pytest
import torch

from cuecraft.cli import main

soundfile = pytest.importorskip("soundfile")

FAST = ["--seconds", "0.016", "--steps", "2"]


def run(capsys, *argv):
    code = main(["musicldm", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_writes_the_pipelines_audio_as_16_bit_wav(musicldm_dir, pipe, tmp_path, capsys):
    out = tmp_path / "techno.wav"
    code, stdout, stderr = run(capsys, "--model", musicldm_dir, "fast techno", *FAST, "--seed", 3,
                               "--negative", "slow piano", "--out", out)
    assert code == 0
    assert stdout == f"wrote {out}  0.02 s at 16000 Hz\n"
    assert "musicldm: [" in stderr and stderr.rstrip().endswith("2/2 steps")
    info = soundfile.info(str(out))
    assert (info.samplerate, info.frames, info.channels, info.subtype) == (16000, 256, 1, "PCM_16")
    written, _ = soundfile.read(str(out), dtype="float32")
    expected = pipe("fast techno", negative_prompt="slow piano", audio_length_in_s=0.016, num_inference_steps=2,
                    generator=torch.Generator().manual_seed(3), clip_output=True).audios[0]
    assert np.abs(written - expected).max() <= 1 / 32768  # 16-bit quantisation
    assert sorted(os.listdir(tmp_path)) == ["techno.wav"]  # no temporary file left behind


def test_keep_writes_numbered_files_best_first(musicldm_dir, tmp_path, capsys):
    code, stdout, stderr = run(capsys, "--model", musicldm_dir, "fast techno", *FAST, "--candidates", 3, "--keep", 2,
                               "--scheduler", "unipc", "--no-progress", "--out", tmp_path / "out.wav")
    assert code == 0 and stderr == ""
    assert sorted(os.listdir(tmp_path)) == ["out_0.wav", "out_1.wav"]
    scores = [float(line.rsplit(" ", 1)[1]) for line in stdout.splitlines()]
    assert len(scores) == 2 and scores[0] >= scores[1]
    assert stdout.splitlines()[0].startswith(f"wrote {tmp_path / 'out_0.wav'}  0.02 s at 16000 Hz  CLAP similarity")


def test_original_preset(musicldm_dir, tmp_path, capsys):
    code, stdout, _ = run(capsys, "--model", musicldm_dir, "fast techno", "--preset", "original", *FAST,
                          "--out", tmp_path / "out.wav")
    assert code == 0 and len(stdout.splitlines()) == 1 and "CLAP similarity" in stdout  # best of 5
    assert sorted(os.listdir(tmp_path)) == ["out.wav"]


@pytest.mark.parametrize("argv, message", [
    (["--keep", "3"], "--keep must be between 1 and --candidates (1); got 3"),
    (["--seconds", "0"], "--seconds must be a positive number; got 0.0"),
    (["--steps", "0", "--candidates", "0"],
     "--steps must be at least 1; got 0; --candidates must be at least 1; got 0"),
    (["--scheduler", "dpm"], "--scheduler must be one of ddim, pndm, lms, euler, euler-ancestral, dpm-solver++, unipc; "
                             "got 'dpm'"),
    (["--eta", "-1"], "--eta must be a number >= 0; got -1.0"),
], ids=["keep", "seconds", "steps-candidates", "scheduler", "eta"])
def test_bad_options_fail_before_loading_the_model(tmp_path, capsys, argv, message):
    code, stdout, stderr = run(capsys, "--model", tmp_path / "absent", "x", *argv, "--out", tmp_path / "o.wav")
    assert code == 2 and stdout == ""
    assert stderr == f"cuecraft musicldm: error: {message}\n"


def test_output_path_is_checked(tmp_path, capsys):
    _, _, stderr = run(capsys, "--model", tmp_path, "x", "--out", tmp_path / "o.mp3")
    assert stderr == f"cuecraft musicldm: error: --out must name a .wav file; got '{tmp_path / 'o.mp3'}'\n"
    _, _, stderr = run(capsys, "--model", tmp_path, "x", "--out", tmp_path / "no" / "o.wav")
    assert stderr == f"cuecraft musicldm: error: --out: the directory {tmp_path / 'no'} does not exist\n"


def test_missing_or_incomplete_model_directory(musicldm_dir, tmp_path, capsys):
    code, _, stderr = run(capsys, "--model", tmp_path / "absent", "x", "--out", tmp_path / "o.wav")
    assert code == 2 and len(stderr.splitlines()) == 1
    assert stderr.startswith(f"cuecraft musicldm: error: MusicLDM model: no such directory: {tmp_path / 'absent'}")
    broken = shutil.copytree(musicldm_dir, tmp_path / "broken")
    shutil.rmtree(broken / "vocoder")
    code, _, stderr = run(capsys, "--model", broken, "x", "--out", tmp_path / "o.wav")
    assert code == 2
    assert stderr == f"cuecraft musicldm: error: MusicLDM model: {broken} is incomplete: vocoder/ is missing\n"
    assert not (tmp_path / "o.wav").exists()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(musicldm_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out.wav"
    out.write_bytes(b"previous take")

    def fail(file, *args, **kwargs):
        file.write(b"half a header")
        raise OSError("disk full")

    monkeypatch.setattr(soundfile, "write", fail)
    code, _, stderr = run(capsys, "--model", musicldm_dir, "x", *FAST, "--no-progress", "--out", out)
    assert code == 2 and stderr == f"cuecraft musicldm: error: cannot write {out}: disk full\n"
    assert out.read_bytes() == b"previous take"
    assert os.listdir(tmp_path) == ["out.wav"]


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["musicldm", "--help"])
    text = capsys.readouterr().out
    for option in ("--model", "--out", "--negative", "--preset", "--seconds", "--steps", "--guidance", "--eta",
                   "--scheduler", "--candidates", "--keep", "--seed", "--no-progress", "OUT_0.wav"):
        assert option in text, option

