"""The web UI's pictures of a clip: its log-mel spectrogram (the model's own representation) and
its chroma (pitch class over time), as RGB uint8 images [H, W, 3].

Both are drawn by ``cuecraft.train.media.write_spectrogram``, the plot ``cuecraft generate`` and
the training demos write, so the page shows the same picture as the files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cuecraft._optional import require

CHROMA_RADIX2_EXP = 11  # n_fft 2048: ~0.13 s windows at 16 kHz, enough to resolve semitones above ~100 Hz


def _drawn(frames: np.ndarray, title: str) -> np.ndarray:
    """frames [D, L] -> the PNG write_spectrogram draws, read back as RGB uint8 [H, W, 3]."""
    from cuecraft.train.media import write_spectrogram

    image_module = require("PIL.Image", extra="ui", purpose="the web UI's images")
    with tempfile.TemporaryDirectory(prefix="cuecraft-ui-") as folder:
        path = Path(folder) / "image.png"
        write_spectrogram(path, frames, title=title)
        with image_module.open(path) as image:
            return np.asarray(image.convert("RGB"))


def spectrogram_image(representation: Any, clip: np.ndarray, *, title: str = "") -> np.ndarray:
    """The normalised log-mel of ``clip`` float [T] under ``representation`` -> RGB uint8 [H, W, 3]."""
    from cuecraft.pipelines.generate import clip_frames

    return _drawn(clip_frames(representation, clip), title)


def chroma_image(clip: np.ndarray, sample_rate: int, *, title: str = "") -> np.ndarray:
    """The chroma of ``clip`` float [T] (12 pitch classes, C at the bottom) -> RGB uint8 [H, W, 3]."""
    from cuecraft.audio.chroma import ChromaExtractor

    extractor = ChromaExtractor(sample_rate, radix2_exp=CHROMA_RADIX2_EXP)
    chroma = extractor(torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32)))  # [F, 12]
    return _drawn(chroma.T.numpy(), title)  # [12, F]: pitch classes as rows
