"""Conditioners: one file per family, all registered by type name.

- ``base``: the contract (tokenize -> forward -> Condition), projection, null conditions.
- ``registry``: type names -> classes; ``register_conditioner`` for your own.
- ``lut``: ``lut`` (hashed words or strings) and ``list`` (fixed labels).
- ``numeric``: ``int`` and ``number``.
"""

from cuecraft.conditioners.base import BaseConditioner, Tokens
from cuecraft.conditioners.lut import ListConditioner, LUTConditioner
from cuecraft.conditioners.numeric import IntConditioner, NumberConditioner
from cuecraft.conditioners.registry import (
    build_conditioner,
    conditioner_class,
    register_conditioner,
    registered_conditioners,
)

__all__ = [
    "BaseConditioner",
    "IntConditioner",
    "ListConditioner",
    "LUTConditioner",
    "NumberConditioner",
    "Tokens",
    "build_conditioner",
    "conditioner_class",
    "register_conditioner",
    "registered_conditioners",
]
