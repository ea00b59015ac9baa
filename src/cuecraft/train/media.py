"""Demo outputs: 16-bit WAV files and spectrogram PNGs, both written atomically.

PNGs are drawn with matplotlib when it is installed, else by a small pure-numpy PNG writer
(zlib + the PNG chunk format) with a fixed colour map; ``png_backend()`` says which.
"""

from __future__ import annotations

import struct
import wave
import zlib
from io import BytesIO
from pathlib import Path

import numpy as np

from cuecraft._files import atomic_write


def write_wav(path: str | Path, wav: np.ndarray, sample_rate: int) -> Path:
    """wav float [C, T] in [-1, 1] (clipped) -> 16-bit PCM WAV at ``path``."""
    wav = np.atleast_2d(np.asarray(wav, dtype=np.float32))
    pcm = (np.clip(wav, -1.0, 1.0) * 32767.0).round().astype("<i2").T.copy()  # [T, C] interleaved
    buffer = BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(wav.shape[0])
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(pcm.tobytes())
    with atomic_write(path) as out:
        out.write(buffer.getvalue())
    return Path(path)


def png_backend() -> str:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "numpy"
    return "matplotlib"


def _colour(values: np.ndarray) -> np.ndarray:
    """values in [0, 1] [H, W] -> RGB uint8 [H, W, 3] (a dark-blue-to-yellow ramp, like magma)."""
    stops = np.array([[0, 0, 4], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191]], dtype=np.float64)
    position = np.clip(values, 0, 1) * (len(stops) - 1)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    fraction = (position - low)[..., None]
    return (stops[low] * (1 - fraction) + stops[low + 1] * fraction).round().astype(np.uint8)


def encode_png(rgb: np.ndarray) -> bytes:
    """RGB uint8 [H, W, 3] -> PNG bytes (8-bit truecolour, no filter)."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def write_spectrogram(path: str | Path, frames: np.ndarray, *, title: str = "") -> str:
    """frames [D, L] (e.g. normalised log-mel, low bands first) -> a PNG at ``path``; returns the backend."""
    data = spectrogram_png(frames, title=title)
    with atomic_write(path) as handle:
        handle.write(data)
    return png_backend()


def spectrogram_png(frames: np.ndarray, *, title: str = "") -> bytes:
    """frames [D, L] (e.g. normalised log-mel, low bands first) -> the bytes of a PNG picture of them."""
    frames = np.asarray(frames, dtype=np.float64)
    backend = png_backend()
    if backend == "matplotlib":
        # A Figure on an Agg canvas, not pyplot: no global backend switch, and pyplot's import
        # (0.7 s, paid by every `cuecraft generate`) is skipped.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(8, 3))
        FigureCanvasAgg(figure)
        axis = figure.subplots()
        axis.imshow(frames, origin="lower", aspect="auto", cmap="magma")
        axis.set_title(title)
        axis.set_xlabel("frame")
        axis.set_ylabel("band")
        buffer = BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        data = buffer.getvalue()
    else:
        low, high = np.percentile(frames, 1), np.percentile(frames, 99)
        scaled = (frames - low) / max(high - low, 1e-8)
        image = _colour(scaled[::-1])  # low bands at the bottom
        scale = max(1, 256 // max(1, image.shape[0]))  # at least ~256 pixels high
        image = image.repeat(scale, axis=0).repeat(2, axis=1)
        data = encode_png(image)
    return data
