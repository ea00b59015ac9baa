"""Demos during training: every ``demo_every`` steps a WAV + spectrogram PNG per demo prompt, written atomically."""

from __future__ import annotations

import struct
import wave
import zlib

import numpy as np
import pytest

import cuecraft.train.media as media
from cuecraft.train.loop import train
from tests.train.helpers import NAMES, fast_config, make_data, one_thread


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("corpus"), items=4, seconds=1.0)


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG after checking its signature, IHDR and every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, kinds = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position: position + 4])
        kind, body = data[position + 4: position + 8], data[position + 8: position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length: position + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        kinds.append(kind)
        position += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_demos_are_written_every_n_steps(corpus, tmp_path, monkeypatch):
    config = fast_config(max_steps=4, demo_every=2, demo_steps=3, demo_seconds=0.75,
                         demo_prompts=[{"name": NAMES[0], "bpm": 120}, {"name": NAMES[1], "bpm": 90}])
    written = []
    original = media.atomic_write

    def recording(path, *args, **kwargs):
        written.append(path)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(media, "atomic_write", recording)
    messages = []
    with one_thread():
        train(config, corpus, tmp_path / "run", log=messages.append)
    demos = tmp_path / "run" / "demos"
    names = sorted(p.name for p in demos.iterdir())
    expected = sorted(f"demo_{i}_step{s:08d}.{ext}" for i in (0, 1) for s in (2, 4) for ext in ("wav", "png"))
    assert names == expected  # no temporary file left behind
    assert sorted(p.name for p in written) == expected  # every file went through atomic_write
    assert sum("demos: 2 WAV + PNG" in m for m in messages) == 2
    hop, frames = 256, round(0.75 * 16000 / 256)
    for path in sorted(demos.glob("*.wav")):
        with wave.open(str(path), "rb") as handle:
            assert (handle.getframerate(), handle.getnchannels(), handle.getsampwidth()) == (16000, 1, 2)
            samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
        assert abs(len(samples) - frames * hop) <= hop, (path.name, len(samples))
        assert np.isfinite(samples.astype(np.float64)).all()
        assert np.abs(samples).max() > 0, path.name  # not silent
    for path in sorted(demos.glob("*.png")):
        width, height = _png_size(path.read_bytes())
        assert width >= frames and height >= 16, (path.name, width, height)
    # the two prompts give different audio
    a, b = (np.frombuffer(wave.open(str(demos / f"demo_{i}_step00000004.wav")).readframes(10 ** 6), "<i2")
            for i in (0, 1))
    assert not np.array_equal(a, b)
