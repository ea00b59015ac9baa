"""The one check for "a finite real number" that every validator shares."""

from __future__ import annotations

import math
from typing import Any


def is_finite_number(value: Any) -> bool:
    """A finite int or float, not a bool. An int of hundreds of digits is not finite here
    (``math.isfinite`` of it raises OverflowError, and no setting of cuecraft is that large)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) < 1e300 if isinstance(value, int) else math.isfinite(value)
