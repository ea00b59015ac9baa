import json
import multiprocessing
import os
import pickle
import random
import struct
import warnings

import pytest
import torch

from cuecraft.audio.io import AudioReadError
from cuecraft.cache import (
    FORMAT_VERSION,
    MAGIC,
    CacheWarning,
    EmbeddingCache,
    content_identity,
    decode_entry,
    file_identity,
)
from cuecraft.errors import ConfigError

SETTINGS = {"sample_rate": 8000, "radix2_exp": 9}


def cache_at(root, settings=SETTINGS, **kwargs):
    return EmbeddingCache(root, "chroma_stem", settings, **kwargs)


def test_an_entry_is_a_self_describing_file(tmp_path):
    cache = cache_at(tmp_path)
    features = torch.rand(63, 12)
    path = cache.store({"clip": 1}, features)
    assert path == tmp_path / path.name[:2] / path.name and path.suffix == ".emb"
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sBI", data)
    header = json.loads(data[9: 9 + length])
    assert (magic, version) == (MAGIC, FORMAT_VERSION) == (b"CUEC", 2)
    assert header["shape"] == [63, 12] and header["dtype"] == "float32" and header["nbytes"] == 63 * 12 * 4
    assert header["key"] == cache.key({"clip": 1}) == path.stem and header["conditioner"] == "chroma_stem"
    assert len(data) == 9 + length + 63 * 12 * 4
    assert torch.equal(cache_at(tmp_path).load({"clip": 1}), features)  # a fresh cache reads the file


@pytest.mark.parametrize("tensor", [torch.arange(6, dtype=torch.int64).reshape(2, 3), torch.rand(4).bfloat16(),
                                    torch.zeros(0, 12), torch.tensor(True)])
def test_any_dtype_and_shape_round_trips(tmp_path, tensor):
    cache = cache_at(tmp_path, max_memory_bytes=0)
    cache.store({"clip": 2}, tensor)
    loaded = cache.load({"clip": 2})
    assert loaded.dtype == tensor.dtype and torch.equal(loaded, tensor)


def compute_counter(value):
    calls = []

    def compute():
        calls.append(1)
        return value.clone()

    return compute, calls


@pytest.mark.parametrize("damage, reported", [
    (lambda data: data[: len(data) - 100], "truncated or padded"),
    (lambda data: data[:7], "truncated"),
    (lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]), "checksum mismatch"),
    (lambda data: b"JUNK" + data[4:], "not a cuecraft cache entry"),
    (lambda data: data[:4] + bytes([9]) + data[5:], "format version 9"),
    (lambda data: data[:12] + b"{" + data[13:], "unreadable header"),
])
def test_a_damaged_entry_is_reported_and_recomputed(tmp_path, damage, reported):
    features = torch.rand(40, 12)
    cache_at(tmp_path).store({"clip": 3}, features)
    path = next(tmp_path.rglob("*.emb"))
    path.write_bytes(damage(path.read_bytes()))
    fresh = cache_at(tmp_path)  # nothing in memory: it must read the file
    compute, calls = compute_counter(features)
    with pytest.warns(CacheWarning, match=f"unusable entry .*{path.name}: {reported}"):
        assert torch.equal(fresh.get_or_compute({"clip": 3}, compute), features)
    assert calls == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten entry is whole again
        assert cache_at(tmp_path).has_entry({"clip": 3})


def test_an_entry_never_serves_another_items_features(tmp_path):
    cache = cache_at(tmp_path, max_memory_bytes=0)
    mine, theirs = torch.zeros(5, 12), torch.ones(5, 12)
    cache.store({"clip": "mine"}, mine)
    cache.store({"clip": "theirs"}, theirs)
    # a file copied over another entry's place (a bad rsync, a hand edit) is caught by its header
    cache.path_of(cache.key({"clip": "mine"})).write_bytes(cache.path_of(cache.key({"clip": "theirs"})).read_bytes())
    with pytest.warns(CacheWarning, match="holds the entry"):
        assert cache.load({"clip": "mine"}) is None


def test_a_changed_setting_or_file_misses(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF....")
    identity = file_identity(audio)
    cache = cache_at(tmp_path / "cache")
    cache.store(identity, torch.ones(3))
    assert cache_at(tmp_path / "cache").load(identity) is not None
    assert cache_at(tmp_path / "cache", {**SETTINGS, "radix2_exp": 10}).load(identity) is None
    assert EmbeddingCache(tmp_path / "cache", "clap", SETTINGS).load(identity) is None
    os.utime(audio, ns=(identity["mtime_ns"] + 10**9, identity["mtime_ns"] + 10**9))  # touched
    assert file_identity(audio) != identity and cache.load(file_identity(audio)) is None
    assert identity["path"] == os.path.realpath(audio) and identity["size"] == 8
    with pytest.raises(AudioReadError, match="missing.wav: cannot read audio"):
        file_identity(tmp_path / "missing.wav")


def test_content_identity_follows_the_samples():
    wav = torch.sin(torch.arange(1000.0))
    assert content_identity(wav, 8000) == content_identity(wav.clone(), 8000)
    assert content_identity(wav, 8000) != content_identity(wav, 16000)
    changed = wav.clone()
    changed[500] += 1e-3
    assert content_identity(changed, 8000)["blake2b"] != content_identity(wav, 8000)["blake2b"]


def test_the_memory_layer_is_an_lru_bounded_by_bytes(tmp_path):
    cache = cache_at(tmp_path, max_memory_bytes=3 * 400)  # three entries of 100 float32
    for i in range(3):
        cache.store({"clip": i}, torch.full((100,), float(i)))
    assert cache.memory_bytes == 1200
    cache.load({"clip": 0})  # 0 is now the most recent; 1 the least
    cache.store({"clip": 3}, torch.full((100,), 3.0))
    assert cache.memory_bytes == 1200 and list(cache._memory) == [cache.key({"clip": i}) for i in (2, 0, 3)]
    cache.store({"clip": 4}, torch.zeros(1000))  # larger than the bound: disk only
    assert cache.memory_bytes == 1200
    loaded = cache.load({"clip": 3})
    loaded += 100  # a copy: the cache's own tensor is untouched
    assert torch.equal(cache.load({"clip": 3}), torch.full((100,), 3.0))
    off = cache_at(tmp_path, max_memory_bytes=0)
    off.load({"clip": 1})
    assert off.memory_bytes == 0
    restored = pickle.loads(pickle.dumps(cache))
    assert restored.memory_bytes == 0 and torch.equal(restored.load({"clip": 2}), torch.full((100,), 2.0))


def test_invalid_settings():
    with pytest.raises(ConfigError) as error:
        EmbeddingCache("", "chroma_stem", {"f": object()}, max_memory_bytes=-1)
    assert len(error.value.problems) == 3


# --- several processes at once --------------------------------------------------------------------

KEYS = 6


def expected(key):
    return torch.arange(8192, dtype=torch.float32) + key * 100_000  # 32 KiB, different per key


def _stress_worker(root, worker, rounds, barrier, results):
    torch.set_num_threads(1)  # tiny tensors; and no thread pool inherited through fork is used
    cache = EmbeddingCache(root, "stress", {"version": 1}, max_memory_bytes=0)
    rng = random.Random(worker)
    wrong = reads = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        barrier.wait()
        for _ in range(rounds):
            key = rng.randrange(KEYS)
            if rng.random() < 0.5:
                cache.store({"clip": key}, expected(key))  # overwrite while others read
            else:
                got = cache.get_or_compute({"clip": key}, lambda: expected(key))  # noqa: B023
                wrong += not torch.equal(got, expected(key))
                reads += 1
    results.put((worker, wrong, reads, [str(w.message) for w in caught]))


def test_four_processes_filling_and_reading_leave_no_torn_entries(tmp_path):
    # fork starts in milliseconds (spawn re-imports torch in each child: seconds on a small machine)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    barrier, results = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_stress_worker, args=(str(tmp_path), w, 200, barrier, results))
                 for w in range(4)]
    for p in processes:
        p.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sum(o[2] for o in outcomes) > 200  # plenty of reads raced the writes
    for worker, wrong, reads, caught in outcomes:
        assert wrong == 0 and caught == [], (worker, wrong, caught)
    files = sorted(tmp_path.rglob("*"))
    entries = [f for f in files if f.is_file()]
    assert len(entries) == KEYS and all(f.suffix == ".emb" for f in entries)  # no temporary files left
    cache = EmbeddingCache(tmp_path, "stress", {"version": 1})
    for key in range(KEYS):
        path = cache.path_of(cache.key({"clip": key}))
        assert torch.equal(decode_entry(path.read_bytes(), path.stem), expected(key))


def test_a_header_damaged_into_another_valid_shape_is_caught():
    from cuecraft.cache import CorruptEntryError, decode_entry, encode_entry

    data = encode_entry("k", "chroma_stem", torch.arange(12.0).reshape(3, 4))
    swapped = data.replace(b"[3, 4]", b"[4, 3]")
    assert swapped != data
    with pytest.raises(CorruptEntryError, match="checksum mismatch"):
        decode_entry(swapped, "k")
