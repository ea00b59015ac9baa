"""Conditioners: one file per family, all registered by type name.

- ``base``: the contract (tokenize -> forward -> Condition), projection, null conditions.
- ``registry``: type names -> classes; ``register_conditioner`` for your own.
- ``lut``: ``lut`` (hashed words or strings) and ``list`` (fixed labels).
- ``numeric``: ``int`` and ``number``.
- ``chroma``: ``WaveformConditioner`` (base for waveforms) and ``chroma_stem`` (melody).
- ``text``: pretrained transformer text encoders, ``t5`` and ``sentence`` (MiniLM by default).
- ``clap``: ``clap_text``, ``clap_audio`` and the joint text/audio ``clap``.
- ``pretrained``: offline model resolution, frozen encoders, autocast, the embedding LRU.
"""

from cuecraft.conditioners.base import BaseConditioner, Tokens, ValueTokens
from cuecraft.conditioners.chroma import ChromaStemConditioner, WaveformConditioner, WaveformTokens
from cuecraft.conditioners.clap import ClapAudioConditioner, ClapConditioner, ClapTextConditioner
from cuecraft.conditioners.lut import ListConditioner, LUTConditioner
from cuecraft.conditioners.numeric import IntConditioner, NumberConditioner
from cuecraft.conditioners.text import SentenceConditioner, T5Conditioner
from cuecraft.conditioners.registry import (
    build_conditioner,
    conditioner_class,
    register_conditioner,
    registered_conditioners,
)

__all__ = [
    "BaseConditioner",
    "ChromaStemConditioner",
    "ClapAudioConditioner",
    "ClapConditioner",
    "ClapTextConditioner",
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
