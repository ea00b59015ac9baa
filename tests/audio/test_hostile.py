"""Readable but hostile audio is an AudioReadError naming the file; one bad file never stops a fill."""

import os
import struct
import time

import numpy as np
import pytest
import soundfile

from cuecraft._files import atomic_write, clean_stale_temporaries
from cuecraft.audio.io import load_audio
from cuecraft.cache_fill import fill_cache
from cuecraft.errors import AudioReadError


def wav(path, data, rate=16000, subtype="FLOAT"):
    soundfile.write(str(path), np.asarray(data, dtype=np.float32), rate, subtype=subtype)
    return path


def test_hostile_files(tmp_path):
    tone = np.sin(np.arange(16000) / 10.0) * 0.5
    with pytest.raises(AudioReadError, match=r"nan\.wav: 16,000 of 16,000 samples are not finite"):
        load_audio(wav(tmp_path / "nan.wav", np.full(16000, np.nan)))
    with pytest.raises(AudioReadError, match=r"huge\.wav: samples reach 1e\+30"):
        load_audio(wav(tmp_path / "huge.wav", np.full(16000, 1e30)))
    one_hz = wav(tmp_path / "one_hz.wav", tone)
    data = bytearray(one_hz.read_bytes())
    data[24:28] = struct.pack("<I", 1)  # the header's sample rate
    one_hz.write_bytes(bytes(data))
    start = time.perf_counter()
    with pytest.raises(AudioReadError, match=r"one_hz\.wav: its header claims a sample rate of 1 Hz"):
        load_audio(one_hz)
    assert time.perf_counter() - start < 1.0
    with pytest.raises(AudioReadError, match=r"long\.wav: 1\.0 s of audio by its header; the limit is 0\.5 s"):
        load_audio(wav(tmp_path / "long.wav", tone), max_seconds=0.5)
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioReadError, match=r"pipe\.wav: cannot read audio \(it is a FIFO"):
        load_audio(fifo)
    part, rate = load_audio(wav(tmp_path / "ok.wav", tone), seek_time=0.25, duration=0.5)
    assert (part.shape, rate) == ((1, 8000), 16000)


def test_a_fill_keeps_going_past_bad_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    tone = np.sin(np.arange(16000) / 10.0) * 0.5
    wav(data / "a_good.wav", tone)
    wav(data / "b_nan.wav", np.full(16000, np.nan))
    wav(data / "c_good.wav", tone[::-1].copy())
    config = {"cond_dim": 8, "conditioners": [{"id": "self_wav", "type": "chroma_stem", "roles": ["prepend"],
                                               "config": {"sample_rate": 16000, "cache_path": str(tmp_path / "cache"),
                                                          "stems": "none"}}]}
    # a temporary file of a writer that died (pid 2**22 + 1 is beyond pid_max here) is removed
    stale = tmp_path / "cache" / "ab" / f".x.emb.{os.uname().nodename[:32]}~{2**22 + 1}~zz.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"torn")
    report = fill_cache(config, data, progress=None)
    assert (report.computed, len(report.unreadable)) == (2, 1)
    assert "b_nan.wav" in report.unreadable[0][1] and "not finite" in report.unreadable[0][1]
    assert not stale.exists()


def test_stale_temporaries_of_live_writers_stay(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "out.bin") as handle:
            handle.write(b"x")
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []
    mine = tmp_path / f".y.{os.uname().nodename[:32]}~{os.getpid()}~ab.tmp"
    mine.write_bytes(b"")
    assert clean_stale_temporaries(tmp_path) == 0 and mine.exists()
