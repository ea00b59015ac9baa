"""What a peer-format reader returns: the canonical mapping plus how to talk about the original."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cuecraft.errors import ConfigError


@dataclass
class Translation:
    """A peer config translated to cuecraft's canonical mapping.

    paths: canonical field path prefix -> the same field's path in the peer file, so errors name
        the field the user wrote (longest prefix wins).
    ignored: peer fields cuecraft does not use, by path (reported, never silently dropped).
    notes: anything else the user should know about the translation.
    """

    data: dict[str, Any]
    format: str
    paths: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def peer_path(self, problem: str) -> str:
        """Rewrite the leading canonical path of a problem line into the peer's path."""
        head, sep, rest = problem.partition(":")
        for prefix in sorted(self.paths, key=len, reverse=True):
            if head == prefix or head.startswith(prefix + ".") or head.startswith(prefix + "["):
                return self.paths[prefix] + head[len(prefix):] + sep + rest
        return problem


def check_keys(section: Any, path: str, allowed: dict[str, str], problems: list[str]) -> dict[str, Any]:
    """Problems for a non-mapping section or unknown keys; returns the section (or {}).

    ``allowed`` maps each valid key to a short description used in the error listing.
    """
    if not isinstance(section, dict):
        problems.append(f"{path}: expected a mapping; got {type(section).__name__}")
        return {}
    for key in section:
        if key not in allowed:
            problems.append(f"{path + '.' if path else ''}{key}: unknown key; valid keys: {', '.join(allowed)}")
    return section


def raise_if(problems: list[str]) -> None:
    if problems:
        raise ConfigError(problems)


_REFERENCE = re.compile(r"^\$\{([\w.]+)\}$")


def resolve_references(value: Any, root: dict[str, Any], path: str = "") -> Any:
    """Replace strings of the form ``${a.b}`` (OmegaConf interpolation) by the value at a.b."""
    if isinstance(value, dict):
        return {k: resolve_references(v, root, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, root, f"{path}[{i}]") for i, v in enumerate(value)]
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    if not match:
        return value
    target: Any = root
    for part in match.group(1).split("."):
        if not isinstance(target, dict) or part not in target:
            raise ConfigError(f"{path}: the reference {value} names no value in this file")
        target = target[part]
    return resolve_references(target, root, path)
