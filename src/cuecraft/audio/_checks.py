"""Validation of audio settings, as ConfigError problem lines (``"name: message"``).

(The conditioners' own helpers live in cuecraft.conditioners.base; this package does not import
the conditioners, which import it.)
"""

from __future__ import annotations

import math
from typing import Any


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> list[str]:
    """Problems with an int setting in [minimum, maximum]; empty when it is fine."""
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{name}: expected an int; got {type(value).__name__} {value!r}"]
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        return [f"{name}: must be {bounds}; got {value}"]
    return []


def check_positive(name: str, value: Any) -> list[str]:
    """Problems with a finite real setting that must be > 0; empty when it is fine."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return [f"{name}: expected a finite number; got {type(value).__name__} {value!r}"]
    if value <= 0:
        return [f"{name}: must be > 0; got {value}"]
    return []


def check_bool(name: str, value: Any) -> list[str]:
    return [] if isinstance(value, bool) else [f"{name}: expected true or false; got {value!r}"]
