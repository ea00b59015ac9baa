import json
import os

import pytest
import torch

import cuecraft.data.index as index_module
from cuecraft.audio.resample import resample
from cuecraft.data import AudioDataset, DataOptions, open_dataset
from cuecraft.errors import AudioReadError, DatasetError
from tests.data.wavs import write_wav


@pytest.fixture(autouse=True)
def _numba_cache(monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", os.environ.get("NUMBA_CACHE_DIR", "/work/main/.venv/numba-cache"))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "music"
    samples = {
        "a.wav": write_wav(root / "a.wav", 1.3, 8000, 1, 440),
        "sub/b.wav": write_wav(root / "sub" / "b.wav", 0.6, 8000, 2, 300),
    }
    write_wav(root / ".hidden" / "c.wav", 0.5, 8000)
    (root / "notes.txt").write_text("not audio")
    return root, samples


def test_sequential_covers_every_segment_with_the_files_samples(folder):
    root, samples = folder
    ds = AudioDataset.from_folder(root, sample_rate=8000, channels=1, segment_seconds=0.5, mode="sequential")
    assert [os.path.relpath(f.path, root) for f in ds.files] == ["a.wav", os.path.join("sub", "b.wav")]
    assert len(ds) == 3 + 2  # 1.3 s -> 0.5 + 0.5 + 0.3; 0.6 s -> 0.5 + 0.1
    items = [ds[i] for i in range(len(ds))]
    assert [it.length for it in items] == [4000, 4000, 2400, 4000, 800]
    assert all(it.wav.shape == (1, 4000) and it.padding_mask.shape == (4000,) for it in items)
    for it in items:
        assert not it.padding_mask[it.length:].any() and torch.all(it.wav[:, it.length:] == 0)
    a = torch.cat([it.wav[0, : it.length] for it in items[:3]])
    assert torch.equal(a, torch.from_numpy(samples["a.wav"][:, 0]))
    b = torch.cat([it.wav[0, : it.length] for it in items[3:]])
    assert torch.allclose(b, torch.from_numpy(samples["sub/b.wav"].mean(axis=1)), atol=1e-7)  # stereo -> mean
    assert [it.seek_time for it in items[:3]] == [0.0, 0.5, 1.0]
    assert [(it.metadata["seconds_start"], it.metadata["seconds_total"]) for it in items[:3]] == [(0, 2), (0, 2), (1, 2)]
    assert items[0].to_metadata()["self_wav"].wav is items[0].wav


def test_resampled_segments_equal_the_whole_file_resampled(tmp_path):
    data = write_wav(tmp_path / "x.wav", 2.1, 44100, 2, 440)
    ds = AudioDataset.from_folder(tmp_path, sample_rate=32000, channels=2, segment_seconds=0.4, mode="sequential")
    whole = resample(torch.from_numpy(data.T.copy()), 44100, 32000)  # [2, T']
    assert len(ds) == 6 and sum(ds[i].length for i in range(len(ds))) == whole.shape[-1]
    for i in range(len(ds)):
        item = ds[i]
        start = round(item.seek_time * 32000)
        assert torch.allclose(item.wav[:, : item.length], whole[:, start: start + item.length], atol=1e-5)


def test_channel_mapping(tmp_path):
    mono = write_wav(tmp_path / "m.wav", 0.2, 8000, 1)
    item = AudioDataset.from_folder(tmp_path, sample_rate=8000, channels=2)[0]
    assert item.wav.shape == (2, 1600) and torch.equal(item.wav[0], item.wav[1])
    assert torch.equal(item.wav[0], torch.from_numpy(mono[:, 0]))
    write_wav(tmp_path / "s.wav", 0.2, 8000, 3)
    ds = AudioDataset.from_folder(tmp_path, sample_rate=8000, channels=4)
    with pytest.raises(DatasetError, match=r"s\.wav: cannot make 4 channels from a file of 3"):
        ds[1]


def test_random_segments_are_seeded_per_epoch_and_index(tmp_path):
    data = write_wav(tmp_path / "long.wav", 3.0, 8000, 1)
    write_wav(tmp_path / "short.wav", 0.2, 8000, 1)
    ds = AudioDataset.from_folder(tmp_path, sample_rate=8000, segment_seconds=0.5, seed=7)
    again = AudioDataset.from_folder(tmp_path, sample_rate=8000, segment_seconds=0.5, seed=7)
    assert len(ds) == 2
    starts = [ds.locate(0)[1] for _ in range(3)]
    assert starts[0] == starts[1] == again.locate(0)[1] and 0 <= starts[0] <= 24000 - 4000
    item = ds[0]
    assert torch.equal(item.wav[0], torch.from_numpy(data[starts[0]: starts[0] + 4000, 0]))
    by_epoch = []
    for epoch in range(6):
        ds.set_epoch(epoch)
        by_epoch.append(ds.locate(0)[1])
    assert len(set(by_epoch)) > 3
    other = AudioDataset.from_folder(tmp_path, sample_rate=8000, segment_seconds=0.5, seed=8)
    assert other.locate(0)[1] != starts[0]
    assert ds.locate(1) == (1, 0) and ds[1].length == 1600  # shorter than a segment: start 0, padded


def test_whole_files_and_open_dataset(folder):
    root, _ = folder
    ds = open_dataset(root, sample_rate=8000)
    assert isinstance(ds, AudioDataset) and len(ds) == 2
    assert ds[0].wav.shape == (1, 10400) and ds[0].padding_mask.all()
    assert ds.total_seconds == pytest.approx(1.9)


def test_index_is_built_once_and_rebuilt_for_changed_files(folder, monkeypatch):
    root, _ = folder
    calls = []
    probe = index_module.probe_audio
    monkeypatch.setattr(index_module, "probe_audio", lambda path: calls.append(path) or probe(path))
    first = AudioDataset.from_folder(root, sample_rate=8000)
    assert len(calls) == 2 and first.index.probed == 2
    assert first.index.cache_file == os.fspath(root.resolve() / ".cuecraft-index.json")
    second = AudioDataset.from_folder(root, sample_rate=8000)
    assert len(calls) == 2 and second.index.reused == 2 and second.index.probed == 0
    write_wav(root / "a.wav", 2.0, 8000, 1)  # changed: size and mtime
    third = AudioDataset.from_folder(root, sample_rate=8000)
    assert calls[2:] == [os.fspath(root.resolve() / "a.wav")]
    assert third.files[0].frames == 16000
    (root / ".cuecraft-index.json").write_text("{torn")  # corrupt: rebuilt, not trusted
    assert AudioDataset.from_folder(root, sample_rate=8000).index.probed == 2


def test_read_only_data_folder_keeps_the_index_in_the_cache_folder(folder, tmp_path, monkeypatch):
    root, _ = folder
    real = index_module.atomic_write
    beside = os.fspath(root.resolve() / ".cuecraft-index.json")

    def refuse_beside(path, *args, **kwargs):
        if os.fspath(path) == beside:
            raise PermissionError(13, "Read-only file system", beside)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(index_module, "atomic_write", refuse_beside)
    cache = tmp_path / "cache"
    ds = AudioDataset.from_folder(root, sample_rate=8000, cache_dir=cache)
    assert ds.index.cache_file.startswith(os.fspath(cache)) and not os.path.exists(beside)
    assert AudioDataset.from_folder(root, sample_rate=8000, cache_dir=cache).index.probed == 0


def test_manifests_jsonl_and_txt(tmp_path):
    write_wav(tmp_path / "audio" / "x.wav", 0.3, 8000, sidecar={"genre": "Jazz", "bpm": 90})
    write_wav(tmp_path / "audio" / "y.wav", 0.2, 8000)
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text(json.dumps({"path": "audio/x.wav", "duration": 0.3, "description": "a trio"}) + "\n\n"
                     + json.dumps({"path": os.fspath(tmp_path / "audio" / "y.wav"), "bpm": "100"}) + "\n")
    ds = AudioDataset.from_manifest(jsonl, sample_rate=8000)
    assert [item.metadata for item in (ds[0], ds[1])] == [
        {"genre": "jazz", "bpm": 90.0, "description": "a trio", "seconds_start": 0, "seconds_total": 1},
        {"bpm": 100.0, "seconds_start": 0, "seconds_total": 1},
    ]
    assert (tmp_path / ".train.jsonl.cuecraft-index.json").is_file()
    txt = tmp_path / "list.txt"
    txt.write_text("audio/y.wav\naudio/x.wav\n")
    assert [f.relpath for f in AudioDataset.from_manifest(txt, sample_rate=8000).files] == ["audio/y.wav", "audio/x.wav"]


def test_bad_input_raises_naming_the_file_and_the_reason(tmp_path):
    write_wav(tmp_path / "good.wav", 0.2, 8000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wave file")
    with pytest.raises(AudioReadError, match=r"broken\.wav: cannot read audio"):
        AudioDataset.from_folder(tmp_path, sample_rate=8000)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": "good.wav"}) + "\n" + json.dumps({"path": "gone.wav"}) + "\n")
    with pytest.raises(AudioReadError, match=r"gone\.wav: no such file"):
        AudioDataset.from_manifest(manifest, sample_rate=8000)
    manifest.write_text(json.dumps({"path": "good.wav"}) + "\n{oops\n")
    with pytest.raises(DatasetError, match=r"m\.jsonl:2: not a JSON object"):
        AudioDataset.from_manifest(manifest, sample_rate=8000, on_error="skip")
    manifest.write_text(json.dumps({"file": "good.wav"}) + "\n")
    with pytest.raises(DatasetError, match=r"m\.jsonl:1: expected a JSON object with a \"path\""):
        AudioDataset.from_manifest(manifest, sample_rate=8000)
    with pytest.raises(DatasetError, match=r"a '\.csv' file"):
        (tmp_path / "x.csv").write_text("")
        open_dataset(tmp_path / "x.csv", sample_rate=8000)
    with pytest.raises(DatasetError, match="no audio files found"):
        (tmp_path / "empty").mkdir()
        AudioDataset.from_folder(tmp_path / "empty", sample_rate=8000)
    with pytest.raises(DatasetError, match="needs sample_rate"):
        AudioDataset.from_folder(tmp_path)
    with pytest.raises(DatasetError, match=r"mode must be 'random' or 'sequential'; got 'shuffle'.*"
                                           r"on_error must be 'raise' or 'skip'; got 'ignore'"):
        DataOptions(sample_rate=8000, mode="shuffle", on_error="ignore")


def test_skip_drops_counts_and_lists_bad_input_never_replacing_it(tmp_path):
    write_wav(tmp_path / "good.wav", 0.2, 8000)
    write_wav(tmp_path / "later.wav", 0.2, 8000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wave file")
    write_wav(tmp_path / "badmeta.wav", 0.2, 8000, sidecar={"bpm": "fast"})
    ds = AudioDataset.from_folder(tmp_path, sample_rate=8000, on_error="skip")
    assert [os.path.basename(f.path) for f in ds.files] == ["good.wav", "later.wav"]
    assert ds.report.found == 4
    reasons = {os.path.basename(p): r for p, r in ds.report.skipped}
    assert reasons["broken.wav"].startswith("cannot read audio")
    assert reasons["badmeta.json"] == "field 'bpm' must be a positive number (beats per minute) or null; got 'fast'"
    (tmp_path / "later.wav").write_bytes(b"gone bad after indexing")  # breaks after the index was built
    assert ds[1] is None and ds[0] is not None
    assert ds.report.skipped[-1][0].endswith("later.wav") and len(ds.report.skipped) == 3
    strict = AudioDataset(ds.files, DataOptions(sample_rate=8000))
    with pytest.raises(AudioReadError, match=r"later\.wav: cannot read audio"):
        strict[1]
