"""Bounded descriptions of user input for error messages.

An error message never copies its input whole: a 1 MB key or a YAML alias bomb in a wrong-typed
field gives a short line, in bounded time, and an object whose ``repr`` fails still gets one.
"""

from __future__ import annotations

import reprlib
from typing import Any

MAX_SHOWN = 60  # characters of a value shown in a message

_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_SHOWN


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def short_repr(value: Any, limit: int = MAX_SHOWN) -> str:
    """A repr of ``value`` of at most ``limit`` characters, computed in bounded time.

    Containers are shown to a depth of two and four items; a ``repr`` that raises gives
    ``<TypeName object (repr failed)>``.
    """
    try:
        if isinstance(value, (str, bytes)) and len(value) > 4 * limit:
            value = value[:4 * limit]
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a user object's repr may raise anything
        text = f"<{type(value).__name__} object (repr failed)>"
    return shorten(text, limit)


def short_name(key: Any, limit: int = MAX_SHOWN) -> str:
    """A mapping key as it appears in a field path, cut to ``limit`` characters."""
    return shorten(key if isinstance(key, str) else short_repr(key, limit), limit)


def short_keys(mapping: Any, limit: int = 8) -> str:
    """The keys of a mapping for an error message: at most ``limit``, each cut, sorted by their
    shown form; a mapping whose iteration raises is described as such."""
    try:
        keys = sorted(short_name(key) for key in mapping)
    except Exception:  # noqa: BLE001 - a user mapping may raise anything
        return f"<keys of {type(mapping).__name__} unreadable>"
    shown = ", ".join(repr(key) for key in keys[:limit])
    return f"[{shown}{f', ... ({len(keys) - limit} more)' if len(keys) > limit else ''}]"
