"""Import heavy optional dependencies where they are used, with an error naming the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from cuecraft.errors import MissingDependencyError


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise MissingDependencyError naming the cuecraft extra to install.

    ``purpose`` completes "cuecraft needs <module> for ..." in the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"cuecraft needs the optional package '{module.split('.')[0]}' for {purpose}, "
            f"and it is not installed ({error}). Install it with: pip install 'cuecraft[{extra}]'"
        ) from error
