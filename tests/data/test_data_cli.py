import json
import os

import pytest

from cuecraft.cli import main
from tests.data.test_shards import write_shards
from tests.data.wavs import write_wav


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "data"
    write_wav(root / "a.wav", 1.0, 8000, 1, sidecar={"title": "A", "bpm": 120, "genre": "rock", "mood_x": 1})
    write_wav(root / "b" / "b.wav", 0.5, 16000, 2, sidecar={"bpm": "96", "description": "soft"})
    write_wav(root / "c.wav", 0.5, 8000, 1)
    write_wav(root / "d.wav", 0.5, 8000, 1, sidecar={"bpm": "fast"})
    (root / "e.wav").write_bytes(b"RIFF broken")
    return root


def test_data_check_reports_counts_duration_coverage_and_unusable_files(folder, capsys):
    assert main(["data", "check", os.fspath(folder)]) == 0
    out = capsys.readouterr().out
    assert f"{folder} (folder): 5 files, 3 usable, 2 unusable; 0.00 h (2.0 s) of audio" in out
    assert "sample rates: 8000 Hz x 2, 16000 Hz x 1" in out and "channels:     1 x 2, 2 x 1" in out
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.endswith("%")}
    assert lines["bpm"] == "67%" and lines["title"] == "33%" and lines["keywords"] == "0%" and lines["mood_x"] == "33%"
    assert f"{folder.resolve() / 'd.json'}: field 'bpm' must be a positive number" in out
    assert f"{folder.resolve() / 'e.wav'}: cannot read audio" in out
    assert main(["data", "check", os.fspath(folder), "--strict"]) == 1


def test_data_check_json_for_a_manifest_and_shards(folder, tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps({"path": p, "genre": "jazz"}) for p in ("data/a.wav", "data/c.wav")))
    assert main(["data", "check", os.fspath(manifest), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "manifest" and report["files"] == 2 and report["usable"] == 2
    assert report["total_seconds"] == pytest.approx(1.5) and report["coverage"]["genre"] == 1.0
    assert report["coverage"]["bpm"] == 0.5 and report["unreadable"] == []
    write_shards(tmp_path / "shards", shards=2, per_shard=2, seconds=0.25)
    assert main(["data", "check", os.fspath(tmp_path / "shards"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "shards" and report["files"] == 4 and report["usable"] == 4
    assert report["total_seconds"] == pytest.approx(1.0) and report["coverage"]["bpm"] == 1.0
    assert report["sample_rates"] == {"8000": 4}


def test_data_check_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "check", os.fspath(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"cuecraft data check: error: {tmp_path / 'nothing'}: no such folder or manifest file"
    assert main(["data"]) == 2
