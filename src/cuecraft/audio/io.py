"""Reading audio files (soundfile, imported where used).

Shapes: a waveform is float32 [C, T] (C channels, T samples).
"""

from __future__ import annotations

import os

import torch

from cuecraft._optional import require
from cuecraft.errors import AudioReadError

# Suffixes ``cuecraft cache fill`` looks for in a folder: formats libsndfile (>= 1.1) reads.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".w64", ".caf")


def load_audio(path: str | os.PathLike[str]) -> tuple[torch.Tensor, int]:
    """Read a whole audio file: (waveform float32 [C, T] in [-1, 1], sample rate in Hz).

    Any failure (no such file, a format libsndfile does not know, a corrupt file) is an
    AudioReadError naming the file and the reason.
    """
    soundfile = require("soundfile", extra="audio", purpose="reading audio files")
    try:
        data, sample_rate = soundfile.read(os.fspath(path), dtype="float32", always_2d=True)  # [T, C]
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError, EOFError) as error:
        raise AudioReadError(f"{os.fspath(path)}: cannot read audio ({error})") from None
    return torch.from_numpy(data.T.copy()), int(sample_rate)  # [T, C] -> [C, T]
