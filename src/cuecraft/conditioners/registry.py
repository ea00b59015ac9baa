"""The conditioner registry: type names (as configs spell them) -> conditioner classes.

Users add their own without editing cuecraft::

    from cuecraft.conditioners import BaseConditioner, register_conditioner

    @register_conditioner("my_tempo")
    class MyTempoConditioner(BaseConditioner):
        ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from cuecraft.conditioners.base import BaseConditioner
from cuecraft.errors import ConfigError

_REGISTRY: dict[str, type[BaseConditioner]] = {}

C = TypeVar("C", bound=type[BaseConditioner])


def register_conditioner(name: str, *, replace: bool = False) -> Callable[[C], C]:
    """Class decorator: register a BaseConditioner subclass under ``name``.

    Registering a taken name is an error unless ``replace=True``.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a conditioner type name must be a non-empty str; got {name!r}")

    def decorate(cls: C) -> C:
        if not (isinstance(cls, type) and issubclass(cls, BaseConditioner)):
            raise TypeError(f"register_conditioner('{name}') needs a BaseConditioner subclass; got {cls!r}")
        if getattr(cls, "kind", None) is None:
            raise TypeError(f"{cls.__name__} must set the class attribute 'kind' (text, wav, joint_embed, number or symbolic)")
        taken = _REGISTRY.get(name)
        if taken is not None and taken is not cls and not replace:
            raise ValueError(
                f"conditioner type '{name}' is already registered to {taken.__qualname__}; "
                "pass replace=True to override it"
            )
        _REGISTRY[name] = cls
        return cls

    return decorate


def registered_conditioners() -> dict[str, type[BaseConditioner]]:
    """A copy of the registry, by type name."""
    return dict(sorted(_REGISTRY.items()))


def conditioner_class(name: str) -> type[BaseConditioner]:
    """The class registered under ``name``; an unknown name is a ConfigError listing the valid ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"type: unknown conditioner type {name!r}; valid types: {valid}") from None


def check_settings(type_name: str, config: Mapping[str, Any]) -> list[str]:
    """Problems with ``config`` for conditioner type ``type_name``, without building anything:
    an unknown type, unknown settings and missing required settings (all of them)."""
    try:
        cls = conditioner_class(type_name)
    except ConfigError as error:
        return error.problems
    if not isinstance(config, Mapping):
        return [f"config: expected a mapping of settings; got {type(config).__name__}"]
    parameters = {
        name: p
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    problems = []
    for key in config:
        if key not in parameters:
            problems.append(
                f"{key}: unknown setting for conditioner type '{type_name}'; "
                f"valid settings: {', '.join(parameters)}"
            )
    for name, p in parameters.items():
        if p.default is p.empty and name not in config:
            problems.append(f"{name}: required by conditioner type '{type_name}' but not given")
    return problems


def build_conditioner(type_name: str, config: Mapping[str, Any]) -> BaseConditioner:
    """Build a conditioner from its type name and keyword settings, strictly.

    Unknown settings and missing required settings are ConfigErrors (all of them at once), as is
    any value the conditioner's constructor rejects. Problem paths are relative to ``config``
    (``min_val: ...``); callers prefix them with where the config sits in their file.
    """
    problems = check_settings(type_name, config)
    if problems:
        raise ConfigError(problems)
    return conditioner_class(type_name)(**config)
