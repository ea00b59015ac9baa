"""Reading config documents safely, and composing several the way Hydra does.

Every reader here is bounded before it allocates: the file's size (``MAX_CONFIG_BYTES``) is read
from the file system first, the text must be UTF-8, nesting is at most ``MAX_DEPTH`` deep and a
document holds at most ``MAX_VALUES`` values *after* YAML aliases are expanded (an alias bomb of
a few hundred bytes is refused before anything walks it; a recursive alias is refused too). Any
failure is a ConfigError naming the file.

Composition (AudioCraft's configs are Hydra fragments): ``compose([a, b, ...], overrides)``
merges mappings in order (later files win, mappings merge key by key, anything else is replaced)
then applies ``key.path=value`` overrides (values parsed as YAML scalars or flow collections:
``--set transformer_lm.dim=1536 --set sample_rate=32000``; ``~key`` deletes, a leading ``+`` or
``++`` is accepted as Hydra writes it). Hydra's ``defaults`` list is not followed: it is dropped
with a note, and the files to compose are named explicitly.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cuecraft._text import short_name, short_repr
from cuecraft.errors import ConfigError

MAX_CONFIG_BYTES = 2 * 2**20  # a JSON config file; the peers' largest is about 5 KB
MAX_YAML_BYTES = 256 * 2**10  # a YAML one (YAML parses about ten times slower; AudioCraft's are ~1 KB)
MAX_DEPTH = 64  # nesting of mappings and lists
MAX_VALUES = 200_000  # values in one document, YAML aliases expanded
MAX_OVERRIDE_CHARS = 10_000

Source = str | os.PathLike[str] | Mapping[str, Any]


def read_document(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON or YAML file (YAML by a .yaml / .yml suffix); errors name the file."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as error:
        raise ConfigError(f"{short_name(os.fspath(path), 200)}: no such file ({error.strerror or error})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise ConfigError(f"{path}: no such file ({kind})")
    if info.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {info.st_size:,} bytes; a config file is at most {MAX_CONFIG_BYTES:,} bytes")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from None
    yaml_suffix = path.suffix.lower() in (".yaml", ".yml")
    return parse_document(data, str(path), yaml=yaml_suffix)


def parse_document(data: bytes | str, name: str, *, yaml: bool) -> Any:
    """Parse JSON or YAML text (bytes must be UTF-8), bounded as the module says."""
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{name}: {len(data):,} bytes; a config document is at most {MAX_CONFIG_BYTES:,} bytes")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ConfigError(f"{name}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})") from None
    else:
        text = data
    if yaml and len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{name}: {len(text):,} characters of YAML; a YAML config is at most {MAX_YAML_BYTES:,} "
                          "(write a larger one as JSON)")
    value = _parse_yaml(text, name) if yaml else _parse_json(text, name)
    check_document(value, name)
    return value


def _parse_json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ConfigError(f"{name}: not valid JSON: nested deeper than this reader allows (at most {MAX_DEPTH})") from None
    except ValueError as error:  # JSONDecodeError, and ints past Python's digit limit
        raise ConfigError(f"{name}: not valid JSON: {short_repr(str(error), 200)[1:-1]}") from None


def _parse_yaml(text: str, name: str) -> Any:
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, name)
        return loader.construct_document(node)
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(f"{name}: not valid YAML: nested deeper than this reader allows (at most {MAX_DEPTH})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{name}: not valid YAML: {short_repr(str(error), 300)[1:-1]}") from None
    except (ValueError, TypeError, OverflowError) as error:  # a constructor's own error (a huge int, ...)
        raise ConfigError(f"{name}: not valid YAML: {type(error).__name__}: {short_repr(str(error), 200)[1:-1]}") from None
    finally:
        loader.dispose()


def _check_nodes(root: Any, name: str) -> None:
    """Depth, recursion and expanded size of a composed YAML node graph, without expanding it."""
    import yaml

    sizes: dict[int, int] = {}  # id(node) -> values below it, aliases expanded
    on_path: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _children(node)
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > MAX_VALUES:
                raise ConfigError(f"{name}: not valid YAML: expands to more than {MAX_VALUES:,} values "
                                  "(YAML aliases repeat what they name; is this an alias bomb?)")
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ConfigError(f"{name}: not valid YAML: a recursive alias (line {node.start_mark.line + 1}) "
                              "makes the document infinite")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{name}: not valid YAML: nested deeper than {MAX_DEPTH} levels "
                              f"(line {node.start_mark.line + 1})")
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            continue
        on_path.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) in on_path:
                raise ConfigError(f"{name}: not valid YAML: a recursive alias (line {child.start_mark.line + 1}) "
                                  "makes the document infinite")
            stack.append((child, depth + 1, False))


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_document(value: Any, name: str) -> None:
    """Nesting depth and value count of a parsed document (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise ConfigError(f"{name}: holds more than {MAX_VALUES:,} values; a config holds at most that many")
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise ConfigError(f"{name}: nested deeper than {MAX_DEPTH} levels; a config is at most that deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def merge(base: Any, update: Any) -> Any:
    """``update`` merged over ``base``: mappings key by key (recursively), anything else replaced."""
    if not (isinstance(base, dict) and isinstance(update, dict)):
        return update
    merged = dict(base)
    for key, value in update.items():
        merged[key] = merge(merged[key], value) if key in merged else value
    return merged


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply one ``key.path=value`` (or ``~key.path``) override to ``data`` in place."""
    if not isinstance(override, str) or len(override) > MAX_OVERRIDE_CHARS:
        raise ConfigError(f"--set {short_repr(override)}: expected KEY=VALUE of at most {MAX_OVERRIDE_CHARS:,} characters")
    delete = override.startswith("~")
    text = override.lstrip("~+")
    key, sep, raw = text.partition("=")
    if not key or (not sep and not delete):
        raise ConfigError(f"--set {short_repr(override)}: expected KEY=VALUE (e.g. transformer_lm.dim=1536) or ~KEY")
    parts = key.split(".")
    if any(not part for part in parts):
        raise ConfigError(f"--set {short_repr(override)}: {short_repr(key)} is not a dotted key path")
    value = None if delete else parse_document(raw.encode("utf-8"), f"--set {short_name(key)}", yaml=True)
    target = data
    for i, part in enumerate(parts[:-1]):
        child = target.get(part)
        if child is None and not delete:
            child = target[part] = {}
        if not isinstance(child, dict):
            if delete and child is None:
                return
            raise ConfigError(f"--set {short_name(key)}: {'.'.join(parts[:i + 1])} is a "
                              f"{type(child).__name__}, not a mapping")
        target = child
    if delete:
        target.pop(parts[-1], None)
    else:
        target[parts[-1]] = value


def compose(sources: Source | Sequence[Source], overrides: Sequence[str] = ()) -> tuple[Any, list[str]]:
    """(the merged document, notes): the sources merged in order, then the overrides applied."""
    if not (isinstance(sources, (list, tuple)) and sources
            and all(isinstance(s, (str, os.PathLike, Mapping)) for s in sources)):
        if not isinstance(sources, (str, os.PathLike, Mapping)):
            if overrides:
                raise ConfigError(f"(top level): --set needs a mapping to apply to; got {type(sources).__name__}")
            return sources, []  # a document given as a value: the format check reports what it is
        sources = [sources]
    sources = list(sources)
    notes: list[str] = []
    documents = []
    for source in sources:
        document = read_document(source) if isinstance(source, (str, os.PathLike)) else source
        if len(sources) > 1 or overrides:
            if not isinstance(document, Mapping):
                where = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "(mapping)"
                raise ConfigError(f"{where}: composing needs a mapping at the top level; got {type(document).__name__}")
            document = dict(document)
            if "defaults" in document:
                document.pop("defaults")
                where = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "(mapping)"
                notes.append(f"{where}: defaults (Hydra's defaults list) is not followed; give every file to "
                             "compose, in order, and --set what the others would set")
        documents.append(document)
    if len(documents) == 1 and not overrides:
        return documents[0], notes
    data: Any = {}
    for document in documents:
        data = merge(data, document)
    for override in overrides:
        apply_override(data, override)
    check_document(data, "the composed config")
    return data, notes
