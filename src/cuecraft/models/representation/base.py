"""The ``Representation`` contract: waveforms <-> the frames a generative model learns.

Notation: B batch, C audio channels, T samples, D features per frame (``latent_dim``), L frames.

Every representation maps ``wav [B, C, T] -> [B, D, L]`` and back, with exact length
bookkeeping: ``frames(T)`` is the L that ``encode`` returns for T samples, ``samples(L)`` the T
that ``decode`` returns for L frames (at least the input's T), and ``decode(z, length=T)`` trims
to T exactly. Normalisation statistics are part of the representation and saved with it.

On disk a representation is a directory holding ``representation.json`` (the format name and
version, the kind and its options) and ``representation.safetensors`` (statistics and weights);
an autoencoder adds its components' own directories. ``load_representation(dir)`` reads any kind.
"""

from __future__ import annotations

import json
import math
import os
from abc import ABCMeta, abstractmethod
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cuecraft._files import atomic_write, read_versioned_json
from cuecraft._optional import require
from cuecraft.errors import CuecraftError, WeightsError

FORMAT = "cuecraft.representation"
VERSION = 1
CONFIG_FILE = "representation.json"
TENSORS_FILE = "representation.safetensors"


class RepresentationInputError(CuecraftError, ValueError):
    """A waveform or frame tensor handed to a representation has the wrong shape, type or length."""


class Representation(nn.Module, metaclass=ABCMeta):
    """Waveforms [B, C, T] <-> frames [B, D, L]. Subclasses set ``kind`` and implement the rest."""

    kind: str = ""

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Hz of the waveforms ``encode`` takes and ``decode`` returns."""

    @property
    @abstractmethod
    def channels(self) -> int:
        """C, the audio channels of the waveforms."""

    @property
    @abstractmethod
    def latent_dim(self) -> int:
        """D, features per frame."""

    @property
    @abstractmethod
    def hop(self) -> int:
        """Samples per frame: ``frame_rate = sample_rate / hop``."""

    @property
    def frame_rate(self) -> float:
        """Frames per second (may be fractional)."""
        return self.sample_rate / self.hop

    def frames(self, num_samples: int) -> int:
        """L, the frames ``encode`` returns for ``num_samples`` samples: ceil(T / hop)."""
        return math.ceil(_positive_length(num_samples, "num_samples") / self.hop)

    def samples(self, num_frames: int) -> int:
        """T, the samples ``decode`` returns for ``num_frames`` frames without ``length``: L * hop."""
        return _positive_length(num_frames, "num_frames") * self.hop

    @abstractmethod
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, C, T] -> normalised frames [B, D, frames(T)]."""

    @abstractmethod
    def decode(self, z: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Frames [B, D, L] -> wav [B, C, length or samples(L)]."""

    @abstractmethod
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the representation into ``directory`` (created); returns it."""

    # -- shared checks -------------------------------------------------------------------------
    def check_wav(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav`` as float [B, C, T] after checking it (a RepresentationInputError otherwise)."""
        if not isinstance(wav, torch.Tensor) or wav.dim() != 3:
            shape = list(wav.shape) if isinstance(wav, torch.Tensor) else type(wav).__name__
            raise RepresentationInputError(f"{self.kind} encode takes a waveform [B, C, T]; got {shape}")
        if wav.shape[1] != self.channels:
            raise RepresentationInputError(f"{self.kind} encode takes {self.channels} channel(s); got a waveform "
                                           f"{list(wav.shape)} with {wav.shape[1]} (mix or split it first)")
        if wav.shape[-1] < 1:
            raise RepresentationInputError(f"{self.kind} encode needs at least one sample; got {list(wav.shape)}")
        if not wav.is_floating_point():
            raise RepresentationInputError(f"{self.kind} encode takes float samples in [-1, 1]; got {wav.dtype}")
        return wav

    def check_frames(self, z: torch.Tensor, length: int | None) -> int:
        """The output length for frames ``z`` [B, D, L] and the requested ``length``."""
        if not isinstance(z, torch.Tensor) or z.dim() != 3 or z.shape[1] != self.latent_dim:
            shape = list(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise RepresentationInputError(f"{self.kind} decode takes frames [B, {self.latent_dim}, L]; got {shape}")
        full = self.samples(z.shape[-1]) if z.shape[-1] >= 1 else 0
        if full == 0:
            raise RepresentationInputError(f"{self.kind} decode needs at least one frame; got {list(z.shape)}")
        if length is None:
            return full
        length = _positive_length(length, "length")
        if length > full:
            raise RepresentationInputError(f"{self.kind} decode: length {length} is more than the {full} samples "
                                           f"that {z.shape[-1]} frames hold (hop {self.hop})")
        return length


def _positive_length(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RepresentationInputError(f"{name} must be a positive int; got {value!r}")
    return value


# -- files -------------------------------------------------------------------------------------
def write_bundle(directory: str | os.PathLike[str], kind: str, config: dict[str, Any],
                 tensors: dict[str, torch.Tensor]) -> Path:
    """Write ``representation.safetensors`` then ``representation.json`` atomically into ``directory``."""
    safetensors = require("safetensors.torch", extra="text", purpose="saving representations")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = safetensors.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    with atomic_write(directory / TENSORS_FILE) as handle:
        handle.write(payload)
    with atomic_write(directory / CONFIG_FILE, "w", encoding="utf-8") as handle:
        json.dump({"format": FORMAT, "version": VERSION, "kind": kind, **config}, handle, indent=2)
        handle.write("\n")
    return directory


def read_config(directory: str | os.PathLike[str], kind: str | None = None) -> dict[str, Any]:
    """The parsed ``representation.json`` of ``directory`` after checking format, version and kind."""
    path = Path(directory) / CONFIG_FILE
    config = read_versioned_json(
        path, format=FORMAT, version=VERSION, error=WeightsError, what="a cuecraft representation",
        missing=f"a saved representation directory holds {CONFIG_FILE} and {TENSORS_FILE} "
                f"(write one with representation.save(dir))")
    if kind is not None and config.get("kind") != kind:
        raise WeightsError(f"{path}: holds a {config.get('kind')!r} representation; expected {kind!r}")
    return config


def read_tensors(directory: str | os.PathLike[str], expected: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """``representation.safetensors`` of ``directory``, checked to hold exactly ``expected`` (shapes)."""
    safetensors = require("safetensors.torch", extra="text", purpose="loading representations")
    path = Path(directory) / TENSORS_FILE
    if not path.is_file():
        raise WeightsError(f"{path}: no such file (the tensors of the representation in {directory})")
    try:
        tensors = safetensors.load_file(str(path))
    except Exception as error:  # SafetensorError and OSError: a corrupt or unreadable file
        raise WeightsError(f"{path}: not a readable safetensors file ({error})") from None
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [f"{k}: file {list(tensors[k].shape)}, expected {list(expected[k])}"
                  for k in sorted(set(expected) & set(tensors)) if tensors[k].shape != expected[k]]
    if missing or unexpected or mismatched:
        raise WeightsError(f"{path}: does not fit the representation its {CONFIG_FILE} describes: missing "
                           f"{missing or 'none'}; unexpected {unexpected or 'none'}; shape mismatches "
                           f"{mismatched or 'none'}")
    return tensors


def option_fields(cls: type, values: Any, path: Path, name: str) -> Any:
    """``cls(**values)`` for a saved options dict; unknown or bad fields are a WeightsError naming ``path``."""
    if not isinstance(values, dict):
        raise WeightsError(f"{path}: {name} must be an object; got {values!r}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise WeightsError(f"{path}: {name} does not fit {cls.__name__} ({error})") from None


def load_representation(directory: str | os.PathLike[str]) -> Representation:
    """The representation saved in ``directory``, of whatever kind it is."""
    from cuecraft.models.representation.autoencoder import AutoencoderRepresentation
    from cuecraft.models.representation.mel import MelRepresentation

    kinds = {"mel": MelRepresentation, "autoencoder": AutoencoderRepresentation}
    config = read_config(directory)
    if config.get("kind") not in kinds:
        raise WeightsError(f"{Path(directory) / CONFIG_FILE}: unknown representation kind {config.get('kind')!r}; "
                           f"known kinds: {', '.join(kinds)}")
    return kinds[config["kind"]].load(directory)
