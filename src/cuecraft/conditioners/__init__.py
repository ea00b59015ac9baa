"""Conditioners: one file per family, all registered by type name.

- ``base``: the contract (tokenize -> forward -> Condition), projection, null conditions.
- ``registry``: type names -> classes; ``register_conditioner`` for your own.
- ``lut``: ``lut`` (hashed words or strings) and ``list`` (fixed labels).
- ``numeric``: ``int`` and ``number``.
- ``chroma``: ``WaveformConditioner`` (base for waveforms) and ``chroma_stem`` (melody).
- ``timeline``: ``FrameConditioner``, the base of frame-aligned conditions from musical labels.
- ``beats``: ``beats`` (tempo and metre, or beat times, as curves and phases per frame).
- ``chords``: ``chords`` (a progression, or a key, as pitch classes and root per frame).
- ``text``: pretrained transformer text encoders, ``t5`` and ``sentence`` (MiniLM by default).
- ``clap``: ``clap_text``, ``clap_audio`` and the joint text/audio ``clap``.
- ``pretrained``: offline model resolution, frozen encoders, autocast, the embedding LRU.
"""

from cuecraft.conditioners.base import BaseConditioner, Tokens, ValueTokens
from cuecraft.conditioners.beats import BeatsConditioner
from cuecraft.conditioners.chords import ChordsConditioner
from cuecraft.conditioners.chroma import ChromaStemConditioner, WaveformConditioner, WaveformTokens
from cuecraft.conditioners.clap import ClapAudioConditioner, ClapConditioner, ClapTextConditioner
from cuecraft.conditioners.lut import ListConditioner, LUTConditioner
from cuecraft.conditioners.numeric import IntConditioner, NumberConditioner
from cuecraft.conditioners.text import SentenceConditioner, T5Conditioner
from cuecraft.conditioners.timeline import FrameConditioner, FrameTokens
from cuecraft.conditioners.registry import (
    build_conditioner,
    conditioner_class,
    register_conditioner,
    registered_conditioners,
)

__all__ = [
    "BaseConditioner",
    "BeatsConditioner",
    "ChordsConditioner",
    "ChromaStemConditioner",
    "ClapAudioConditioner",
    "ClapConditioner",
    "ClapTextConditioner",
    "FrameConditioner",
    "FrameTokens",
    "SentenceConditioner",
    "T5Conditioner",
    "IntConditioner",
    "ListConditioner",
    "LUTConditioner",
    "NumberConditioner",
    "Tokens",
    "ValueTokens",
    "WaveformConditioner",
    "WaveformTokens",
    "build_conditioner",
    "conditioner_class",
    "register_conditioner",
    "registered_conditioners",
]
