import json
import os
import re
import subprocess
import sys

import pytest
import torch

from cuecraft.cache_fill import distributed_rank, fill_cache, list_audio
from cuecraft.cli import main
from cuecraft.conditioners import ChromaStemConditioner
from cuecraft.errors import ConfigError
from tests.audio.synth import melody

soundfile = pytest.importorskip("soundfile")
pytest.importorskip("librosa")
RATE = 8000
CHROMA = {"sample_rate": RATE, "radix2_exp": 9, "duration": 1.0}


@pytest.fixture
def dataset(tmp_path):
    """Five short clips (two in a subfolder), one broken file, one non-audio file; and a config."""
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for i in range(5):
        folder = data / "sub" if i % 2 else data
        soundfile.write(folder / f"clip{i}.wav", melody((60 + i, 64 + i), 0.2, RATE), RATE)
    (data / "broken.wav").write_text("not audio")
    (data / "notes.txt").write_text("ignored: not an audio suffix")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"cond_dim": 8, "conditioners": [
        {"id": "melody", "type": "chroma_stem", "roles": ["prepend"],
         "config": {**CHROMA, "cache_path": str(tmp_path / "cache")}},
        {"id": "genre", "type": "list", "roles": ["prepend"], "config": {"options": ["rock"]}},
    ]}))
    return data, config, tmp_path / "cache"


def entries(cache):
    return sorted(cache.rglob("*.emb"))


def test_fill_computes_every_entry_lists_unreadable_files_and_resumes(dataset):
    data, config, cache = dataset
    report = fill_cache(config, data, progress=None)
    assert (report.rank, report.world_size, report.conditioners) == (0, 1, ["melody"])  # list has no cache
    assert (report.total_files, report.files, report.computed, report.cached) == (6, 6, 5, 0)
    assert [path for path, _ in report.unreadable] == [str(data / "broken.wav")]
    assert "cannot read audio" in report.unreadable[0][1]
    assert len(entries(cache)) == 5
    again = fill_cache(config, data, progress=None)  # resumable: nothing left to do
    assert (again.computed, again.cached, len(again.unreadable)) == (0, 5, 1)
    entries(cache)[0].write_bytes(b"CUEC")  # a damaged entry is found and redone
    with pytest.warns(UserWarning, match="unusable entry"):
        repaired = fill_cache(config, data, progress=None)
    assert (repaired.computed, repaired.cached) == (1, 4)


def test_a_changed_parameter_misses_and_keeps_the_old_entries(dataset):
    data, config, cache = dataset
    assert fill_cache(config, data, progress=None).computed == 5
    settings = json.loads(config.read_text())
    for change in ({"radix2_exp": 10}, {"stems": "none"}):
        melody_config = settings["conditioners"][0]["config"]
        settings["conditioners"][0]["config"] = {**melody_config, **change}
        config.write_text(json.dumps(settings))
        assert fill_cache(config, data, progress=None).computed == 5, change  # nothing stale is served
    assert len(entries(cache)) == 15
    settings["conditioners"][0]["config"].update(duration=2.0, argmax=True)  # applied after the cache
    config.write_text(json.dumps(settings))
    assert fill_cache(config, data, progress=None).computed == 0


def test_filled_entries_serve_training_items(dataset, monkeypatch):
    data, config, cache = dataset
    fill_cache(config, data, progress=None)
    conditioner = ChromaStemConditioner(output_dim=8, **CHROMA, cache_path=str(cache))
    monkeypatch.setattr(conditioner, "compute_features", lambda wavs: pytest.fail("should be cached"))
    path = data / "clip0.wav"
    wav, _ = soundfile.read(path, dtype="float32")
    tokens = conditioner.tokenize([conditioner_item(wav, path)], train=True)
    assert int(tokens.mask.sum()) == 1 + len(wav) // 128


def conditioner_item(wav, path):
    from cuecraft import WavCondition

    return WavCondition(torch.from_numpy(wav), RATE, path=str(path), seek_time=0.0)


def test_manifests_and_shards(dataset, tmp_path):
    data, config, _ = dataset
    listed = list_audio(data)
    assert [p.name for p in listed] == ["broken.wav", "clip0.wav", "clip2.wav", "clip4.wav", "clip1.wav", "clip3.wav"]
    (tmp_path / "list.txt").write_text("data/clip0.wav\n\n" + str(data / "sub" / "clip1.wav") + "\n")
    (tmp_path / "list.jsonl").write_text(json.dumps({"path": "data/clip2.wav", "duration": 0.4}) + "\n")
    assert list_audio(tmp_path / "list.txt") == [data / "clip0.wav", data / "sub" / "clip1.wav"]
    assert list_audio(tmp_path / "list.jsonl") == [data / "clip2.wav"]
    with pytest.raises(ConfigError, match="neither a folder nor a manifest"):
        list_audio(tmp_path / "nothing")
    shards = [fill_cache(config, data, rank=r, world_size=3, progress=None) for r in range(3)]
    assert [s.files for s in shards] == [2, 2, 2] and sum(s.computed for s in shards) == 5
    assert distributed_rank({}) == (0, 1) and distributed_rank({"RANK": "1", "WORLD_SIZE": "2"}) == (1, 2)
    with pytest.raises(ConfigError, match="RANK must be in"):
        distributed_rank({"RANK": "2", "WORLD_SIZE": "2"})


def test_worker_processes_share_the_work(dataset):
    data, config, cache = dataset
    report = fill_cache(config, data, workers=2, progress=None)
    assert (report.computed, len(report.unreadable), len(entries(cache))) == (5, 1, 5)


def test_cli_prints_a_summary_and_the_unreadable_files(dataset, capsys):
    data, config, _ = dataset
    assert main(["cache", "fill", "--config", str(config), "--data", str(data), "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "rank 0 of 1: 6 of 6 files (melody): 5 entries computed, 0 already cached, 1 unreadable files"
    assert out[1] == "unreadable audio files (1):" and out[2].startswith(f"  {data / 'broken.wav'}: cannot read audio")
    assert main(["cache", "fill", "--config", str(config), "--data", str(data), "--no-progress", "--strict"]) == 1


def test_cli_errors_are_one_line(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"cond_dim": 8, "conditioners": [
        {"id": "melody", "type": "chroma_stem", "roles": ["prepend"], "config": CHROMA}]}))
    assert main(["cache", "fill", "--config", str(config), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cuecraft cache fill: error: invalid configuration:") and "set cache_path" in err
    assert main(["cache"]) == 2 and "fill" in capsys.readouterr().out


def test_a_two_rank_torchrun_fill_splits_the_work(dataset):
    data, config, cache = dataset
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "cuecraft", "cache", "fill", "--config", str(config), "--data", str(data), "--no-progress"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = re.findall(r"rank (\d) of 2: (\d) of 6 files \(melody\): (\d) entries computed, (\d) already cached, "
                       r"(\d) unreadable files", result.stdout)
    assert sorted(lines) == [("0", "3", "2", "0", "1"), ("1", "3", "3", "0", "0")]  # files 0, 2, 4 / 1, 3, 5
    assert len(entries(cache)) == 5
