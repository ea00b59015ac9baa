import io
import json
import os
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cuecraft.audio.io import AUDIO_EXTENSIONS
from cuecraft.audio.resample import resample
from cuecraft.data import AudioCollate, AudioDataset, ShardDataset, open_dataset
from cuecraft.errors import AudioReadError, DatasetError
from tests.data.wavs import sine

SUFFIXES = [e.lstrip('.') for e in AUDIO_EXTENSIONS]


@pytest.fixture(autouse=True)
def _numba_cache(monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", os.environ.get("NUMBA_CACHE_DIR", "/work/main/.venv/numba-cache"))


def wav_bytes(data: np.ndarray, rate: int) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, data, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def write_shards(root, shards=4, per_shard=3, rate=8000, seconds=0.5, extra=None):
    import webdataset as wds

    root.mkdir(parents=True, exist_ok=True)
    samples = {}
    for s in range(shards):
        with wds.TarWriter(os.fspath(root / f"train-{s:03d}.tar")) as sink:
            for k in range(per_shard):
                key = f"s{s}k{k}"
                data = sine(seconds, rate, 1, 200 + 40 * (s * per_shard + k))
                samples[key] = data
                sink.write({"__key__": key, "wav": wav_bytes(data, rate),
                            "json": json.dumps({"genre": "Jazz", "bpm": 100 + k}).encode()})
            for sample in (extra or {}).get(s, []):
                sink.write(sample)
    return samples


def test_two_ranks_by_two_workers_see_every_segment_exactly_once(tmp_path):
    write_shards(tmp_path)
    seen = Counter()
    for rank in range(2):
        ds = AudioDataset.from_shards(os.fspath(tmp_path / "train-{000..003}.tar"), sample_rate=8000,
                                      segment_seconds=0.25, mode="sequential", rank=rank, world_size=2)
        loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=AudioCollate())
        for batch in loader:
            seen.update(zip(batch.paths, batch.seek_times))
    keys = {f"s{s}k{k}" for s in range(4) for k in range(3)}
    expected = {(os.fspath(tmp_path / f"train-{int(key[1]):03d}.tar") + f":{key}", t) for key in keys for t in (0.0, 0.25)}
    assert set(seen) == expected and set(seen.values()) == {1}


def test_shard_items_are_the_members_samples_with_their_metadata(tmp_path):
    samples = write_shards(tmp_path, shards=1, rate=8000, seconds=0.5)
    ds = open_dataset(os.fspath(tmp_path / "train-000.tar"), sample_rate=16000, segment_seconds=0.2, mode="sequential")
    assert isinstance(ds, ShardDataset)
    items = list(ds)
    assert len(items) == 3 * 3  # 0.5 s -> 0.2 + 0.2 + 0.1 (padded)
    assert [it.length for it in items[:3]] == [3200, 3200, 1600]
    whole = resample(torch.from_numpy(samples["s0k0"].T.copy()), 8000, 16000)[0]
    assert torch.allclose(torch.cat([it.wav[0, : it.length] for it in items[:3]]), whole, atol=1e-6)
    assert items[0].metadata == {"genre": "jazz", "bpm": 100.0, "seconds_start": 0, "seconds_total": 1}
    assert items[3].metadata["bpm"] == 101.0


def test_random_segments_are_seeded_and_shards_shuffled_by_epoch(tmp_path):
    write_shards(tmp_path, shards=4, seconds=1.0)
    make = lambda: AudioDataset.from_shards(tmp_path, sample_rate=8000, segment_seconds=0.3, seed=4)  # noqa: E731
    a, b = make(), make()
    assert isinstance(open_dataset(tmp_path, sample_rate=8000), ShardDataset)  # a folder of .tar files
    first = [(it.path, it.seek_time) for it in a]
    assert first == [(it.path, it.seek_time) for it in b] and len(first) == 12
    a.set_epoch(1)
    second = [(it.path, it.seek_time) for it in a]
    assert sorted(p for p, _ in second) == sorted(p for p, _ in first) and second != first
    assert all(0 <= t <= 0.7 for _, t in first)


def test_bad_members_raise_or_are_skipped(tmp_path):
    bad = {0: [{"__key__": "badbpm", "wav": wav_bytes(sine(0.2, 8000), 8000), "json": b'{"bpm": "fast"}'},
               {"__key__": "noise", "wav": b"RIFF junk"},
               {"__key__": "nowav", "json": b"{}"}]}
    write_shards(tmp_path, shards=1, per_shard=1, extra=bad)
    shard = os.fspath(tmp_path / "train-000.tar")
    with pytest.raises(DatasetError) as error:
        list(AudioDataset.from_shards(shard, sample_rate=8000))
    assert str(error.value) == f"{shard}:badbpm.json: field 'bpm' must be a positive number (beats per minute) or null; got 'fast'"
    ds = AudioDataset.from_shards(shard, sample_rate=8000, on_error="skip")
    items = list(ds)
    assert [it.path for it in items] == [f"{shard}:s0k0"]
    reasons = dict(ds.report.skipped)
    assert reasons[f"{shard}:badbpm.json"].startswith("field 'bpm' must be a positive number")
    assert reasons[f"{shard}:noise.wav"].startswith("cannot read audio")
    assert reasons[f"{shard}:nowav"] == f"expected one audio member ({', '.join(SUFFIXES)}); found json"
    assert ds.report.found == 4
    with pytest.raises(AudioReadError, match="noise.wav: cannot read audio"):
        list(AudioDataset.from_shards(shard, sample_rate=8000, sidecars=False))


def test_splitting_errors(tmp_path):
    write_shards(tmp_path, shards=2, per_shard=1)
    ds = AudioDataset.from_shards(tmp_path, sample_rate=8000, rank=0, world_size=2)
    with pytest.raises(DatasetError, match=r"2 shards cannot be split without overlap over 2 ranks x 2 workers = 4 readers"):
        ds.reader_shards(0, 2, 0, 2)
    with pytest.raises(DatasetError, match="give both rank and world_size"):
        AudioDataset.from_shards(tmp_path, sample_rate=8000, rank=1)
    with pytest.raises(DatasetError, match=r"no such shard"):
        AudioDataset.from_shards([os.fspath(tmp_path / "missing.tar")], sample_rate=8000)
    with pytest.raises(DatasetError, match=r"no WebDataset shards"):
        AudioDataset.from_shards(os.fspath(tmp_path / "none-*.tar"), sample_rate=8000)


def test_rank_and_world_size_come_from_torch_distributed_when_initialised(tmp_path, monkeypatch):
    write_shards(tmp_path, shards=4, per_shard=1)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    ds = AudioDataset.from_shards(tmp_path, sample_rate=8000, mode="sequential")
    assert [os.path.basename(it.path) for it in ds] == ["train-001.tar:s1k0", "train-003.tar:s3k0"]
