"""What a peer-format reader returns: the canonical mapping plus how to talk about the original."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cuecraft._text import short_name, short_repr
from cuecraft.errors import ConfigError


# Canonical top-level names that messages mention in their text (rewritten to the peer's).
_NAME = re.compile(r"(?<![\w.\[])(backbone\.\w+|cond_dim)(?!\w)")


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
    # Problems found while translating; the canonical data is still as complete as it can be,
    # so the later checks run too and every problem is reported at once.
    problems: list[str] = field(default_factory=list)
    # Peer paths whose value could not be given (an unresolved reference): later problems about
    # them would only repeat the first one, and are dropped.
    unresolved: set[str] = field(default_factory=set)

    def peer_path(self, problem: str) -> str:
        """Rewrite the leading canonical path of a problem line into the peer's path."""
        head, sep, rest = problem.partition(":")
        rest = _NAME.sub(lambda m: self.paths.get(m.group(1), m.group(1)), rest)
        for prefix in sorted(self.paths, key=len, reverse=True):
            if head == prefix or head.startswith((prefix + ".", prefix + "[", prefix + " ")):
                return self.paths[prefix] + head[len(prefix):] + sep + rest
        return head + sep + rest

    def peer_problems(self, problems: list[str]) -> list[str]:
        """``problems`` in the peer's paths, without follow-ons of an unresolved value."""
        out = []
        for problem in map(self.peer_path, problems):
            head = problem.partition(":")[0]
            if not any(head == u or head.startswith(u + ".") or head.startswith(u + "[") for u in self.unresolved):
                out.append(problem)
        return out


def check_keys(section: Any, path: str, allowed: dict[str, str], problems: list[str]) -> dict[str, Any]:
    """Problems for a non-mapping section or unknown keys; returns the section (or {}).

    ``allowed`` maps each valid key to a short description used in the error listing.
    """
    if not isinstance(section, dict):
        problems.append(f"{path}: expected a mapping; got {type(section).__name__}")
        return {}
    for key in section:
        if key not in allowed:
            problems.append(f"{path + '.' if path else ''}{short_name(key)}: unknown key; valid keys: {', '.join(allowed)}")
    return section


def raise_if(problems: list[str]) -> None:
    if problems:
        raise ConfigError(problems)


_REFERENCE = re.compile(r"^\$\{([\w.]+)\}$")
MANDATORY = "???"  # OmegaConf's "a value must be given here"


def resolve_references(value: Any, root: dict[str, Any], path: str = "",
                       problems: list[str] | None = None, unresolved: set[str] | None = None) -> Any:
    """Replace strings of the form ``${a.b}`` (OmegaConf interpolation) by the value at a.b.

    With ``problems`` given, a reference that names nothing (or a ``???`` left unset) is a
    problem line and its value becomes None (its path is added to ``unresolved``); without it,
    it raises ConfigError. Reference chains are followed (a cycle is a problem too).
    """
    collected: list[str] = [] if problems is None else problems
    missing: set[str] = set() if unresolved is None else unresolved
    try:
        result = _resolve(value, root, path, collected, missing, (), [_MAX_RESOLVED])
    except _TooLarge:
        collected.append(f"{path or '(top level)'}: references expand the config past {_MAX_RESOLVED:,} values")
        result = None
    if problems is None and collected:
        raise ConfigError(collected)
    return result


_MAX_RESOLVED = 200_000  # values a config may hold once its references are resolved


class _TooLarge(Exception):
    pass


def _resolve(value: Any, root: dict[str, Any], path: str, problems: list[str], unresolved: set[str],
             chain: tuple[str, ...], budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge
    if isinstance(value, dict):
        return {k: _resolve(v, root, f"{path}.{short_name(k)}" if path else short_name(k), problems, unresolved,
                            chain, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, root, f"{path}[{i}]", problems, unresolved, chain, budget) for i, v in enumerate(value)]
    if value == MANDATORY:
        problems.append(f"{path}: ??? (a value the config requires) is not set; give it with --set {path}=VALUE")
        unresolved.add(path)
        return None
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    if not match:
        return value
    name = match.group(1)
    if name in chain or len(chain) > 32:
        problems.append(f"{path}: the reference {short_repr(value)[1:-1]} refers back to itself "
                        f"({' -> '.join(chain + (name,))})")
        unresolved.add(path)
        return None
    target: Any = root
    for part in name.split("."):
        if not isinstance(target, dict) or part not in target:
            problems.append(f"{path}: the reference {value} names no value in this config; give it with "
                            f"--set {name}=VALUE (Hydra sets it from another file)")
            unresolved.add(path)
            return None
        target = target[part]
    return _resolve(target, root, path, problems, unresolved, chain + (name,), budget)
