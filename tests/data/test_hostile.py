"""Hostile files in a dataset (issue 23): FIFOs, devices, huge and deep files, absurd headers.

Each is refused with its reason, in bounded time and memory, wherever a dataset is read: ``data
check``, the dataset index, sidecars, manifests, shard members and ``data encode``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from cuecraft.cli import main
from cuecraft.data import DataOptions
from cuecraft.data.check import check_data
from cuecraft.data.sources import scan
from cuecraft.errors import DatasetError
from tests.data.wavs import write_wav

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def deadline(seconds: int = 10):
    """Fail (instead of hanging the suite) when the block takes longer than ``seconds``."""
    def expired(number, frame):
        raise TimeoutError(f"still running after {seconds} s: a read blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _reasons(result) -> dict[str, str]:
    return {Path(path).name: reason for path, reason in result.problems}


def test_a_fifo_in_a_manifest_or_a_folder_is_refused_not_waited_on(tmp_path):
    write_wav(tmp_path / "a.wav", 0.5, 8000)
    os.mkfifo(tmp_path / "pipe.wav")
    manifest = tmp_path / "m.txt"
    manifest.write_text("a.wav\npipe.wav\n")
    with deadline():
        for data in (manifest, tmp_path):
            result = scan(data, cache_dir=tmp_path / "cache")
            assert [Path(f.path).name for f in result.files] == ["a.wav"]
            assert "it is a FIFO, not a regular file" in _reasons(result)["pipe.wav"]


def test_a_fifo_sidecar_and_a_sidecar_linked_to_dev_zero_are_refused(tmp_path):
    write_wav(tmp_path / "a.wav", 0.5, 8000)
    write_wav(tmp_path / "b.wav", 0.5, 8000)
    write_wav(tmp_path / "c.wav", 0.5, 8000)
    os.mkfifo(tmp_path / "a.json")
    os.symlink("/dev/zero", tmp_path / "b.json")
    (tmp_path / "c.json").write_text(json.dumps({"title": "x" * (2 * 2**20)}))  # 2 MB: more than a sidecar holds
    with deadline():
        reasons = _reasons(scan(tmp_path))
    assert "it is a FIFO, not a regular file" in reasons["a.json"]
    assert "it is a device, not a regular file" in reasons["b.json"]
    assert "at most 1,048,576 are read" in reasons["c.json"]


def test_deep_and_huge_json_in_sidecars_and_manifests_are_typed(tmp_path):
    write_wav(tmp_path / "a.wav", 0.5, 8000)
    write_wav(tmp_path / "b.wav", 0.5, 8000)
    (tmp_path / "a.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "b.json").write_text('{"bpm": ' + "9" * 4000 + "}")  # within Python's digit limit, not a tempo
    reasons = _reasons(scan(tmp_path))
    assert "nested deeper than 64 levels" in reasons["a.json"]
    assert "must be at most 10000 beats per minute" in reasons["b.json"]
    assert len(reasons["b.json"]) < 300  # the 4,000 digits are not echoed
    for line, reason in (('{"path": "a.wav", "x": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested deeper"),
                         ('{"path": "a.wav", "bpm": ' + "9" * 5000 + "}", "not a JSON object"),
                         ('{"path": "a\\u0000.wav"}', "holds a NUL byte")):
        manifest = tmp_path / "m.jsonl"
        manifest.write_text(line + "\n")
        with pytest.raises(DatasetError, match=reason):
            scan(manifest)
    (tmp_path / "m.txt").write_text("a.wav\nb\0.wav\n")
    with pytest.raises(DatasetError, match=r"m.txt:2: the path holds a NUL byte"):
        scan(tmp_path / "m.txt")


def _wav_header(rate: int, seconds_claimed: float) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(16000, dtype=np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_a_1_hz_wav_is_unusable_not_hours_of_audio(tmp_path, capsys):
    (tmp_path / "slow.wav").write_bytes(_wav_header(1, 0))  # 16,000 samples at 1 Hz: "4.44 h"
    write_wav(tmp_path / "ok.wav", 0.5, 8000)
    report = check_data(tmp_path)
    assert report.usable == 1 and report.total_seconds == pytest.approx(0.5)
    assert "sample rate of 1 Hz" in dict((Path(p).name, r) for p, r in report.unreadable)["slow.wav"]


def test_a_brace_pattern_of_a_billion_shards_is_refused_as_it_expands(tmp_path):
    from cuecraft.data.shards import expand_shards

    with deadline():
        with pytest.raises(DatasetError, match="names more than 100,000 shards"):
            expand_shards(os.fspath(tmp_path / "x-{000000000..999999999}.tar"))
        with pytest.raises(DatasetError, match="no such shard"):  # a FIFO is not a shard
            os.mkfifo(tmp_path / "p.tar")
            expand_shards([os.fspath(tmp_path / "p.tar")])


def test_shard_members_with_deep_json_or_an_absurd_header_are_unusable(tmp_path):
    import webdataset as wds

    from tests.data.test_shards import wav_bytes

    good = wav_bytes(np.zeros((4000, 1), dtype=np.float32), 8000)
    with wds.TarWriter(os.fspath(tmp_path / "s.tar")) as sink:
        sink.write({"__key__": "deep", "wav": good, "json": ("[" * 100_000 + "]" * 100_000).encode()})
        sink.write({"__key__": "slow", "wav": _wav_header(1, 0)})
        sink.write({"__key__": "ok", "wav": good, "json": b'{"bpm": 120}'})
    report = check_data(os.fspath(tmp_path / "s.tar"))
    reasons = {p.rsplit(":", 1)[-1]: r for p, r in report.unreadable}
    assert report.usable == 1 and set(reasons) == {"deep", "slow"}, report.unreadable
    assert "nested deeper" in reasons["deep"] and "sample rate of 1 Hz" in reasons["slow"]


def test_a_planted_index_that_is_a_fifo_or_deep_is_rebuilt(tmp_path):
    write_wav(tmp_path / "a.wav", 0.5, 8000)
    os.mkfifo(tmp_path / ".cuecraft-index.json")
    with deadline():
        assert len(scan(tmp_path, cache_dir=tmp_path / "cache").files) == 1
    os.unlink(tmp_path / ".cuecraft-index.json")
    (tmp_path / ".cuecraft-index.json").write_text("[" * 100_000 + "]" * 100_000)
    assert len(scan(tmp_path).files) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists every folder")
def test_an_unreadable_subfolder_is_reported_not_skipped_in_silence(tmp_path):
    write_wav(tmp_path / "a.wav", 0.5, 8000)
    write_wav(tmp_path / "locked" / "b.wav", 0.5, 8000)
    os.chmod(tmp_path / "locked", 0)
    try:
        reasons = _reasons(scan(tmp_path))
    finally:
        os.chmod(tmp_path / "locked", 0o755)
    assert "cannot list the folder" in reasons["locked"]


def test_an_unlistable_subfolder_is_reported(tmp_path, monkeypatch):
    # the same as above for any user: os.walk's error callback is what reports it
    write_wav(tmp_path / "a.wav", 0.5, 8000)
    (tmp_path / "locked").mkdir()
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    reasons = _reasons(scan(tmp_path))
    assert reasons["locked"] == "cannot list the folder (Permission denied); its files are left out"


def test_data_check_prints_a_non_utf8_file_name_under_strict_utf8_output(tmp_path):
    write_wav(tmp_path / "ok.wav", 0.5, 8000)
    (Path(os.fsdecode(os.fsencode(tmp_path) + b"/bad-\xff.wav"))).write_bytes(b"RIFF broken")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "cuecraft", "data", "check", os.fspath(tmp_path)], cwd=ROOT,
                          capture_output=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert b"bad-\\xff.wav: cannot read audio" in done.stdout


def test_data_options_and_encode_bound_their_sizes(tmp_path, capsys):
    with pytest.raises(DatasetError, match=r"segment_seconds must be a number in \(0, 3600\]"):
        DataOptions(sample_rate=16000, segment_seconds=1e9)
    with pytest.raises(DatasetError, match="sample_rate must be an int in"):
        DataOptions(sample_rate=10**12)
    from cuecraft.models.representation import MelRepresentation

    MelRepresentation().save(tmp_path / "rep")
    write_wav(tmp_path / "data" / "a.wav", 0.5, 16000)
    base = ["data", "encode", os.fspath(tmp_path / "data"), "--representation", os.fspath(tmp_path / "rep"),
            "--out", os.fspath(tmp_path / "out"), "--no-progress"]
    assert main(base + ["--workers", "1000000"]) == 2
    assert "workers must be an int >= 0, at most 64" in capsys.readouterr().err
    assert main(base + ["--seconds", "1e9"]) == 2
    assert "segment_seconds must be a number in (0, 3600]" in capsys.readouterr().err
