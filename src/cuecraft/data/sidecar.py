"""Item metadata: AudioCraft's ``<audio>.json`` sidecars and stable-audio-tools' custom hook.

Sidecars. ``song.wav`` may have ``song.json`` beside it, a JSON object of fields. The music fields
AudioCraft's ``MusicInfo`` reads are checked and normalised here, as AudioCraft does, except that
a value of the wrong type is an error naming the file and the field instead of a silent None:

| field | allowed | becomes |
|---|---|---|
| title, artist, description, name | str or null | stripped str (empty / "None" -> None) |
| key, genre, instrument | str (genre, instrument: also a list of str) or null | lower-case str; a key: its canonical name (``"A minor"``, ``cuecraft.audio.key.KEYS``) when it reads as one, a key with a comma (several keys) -> None, as AudioCraft |
| bpm | number, numeric str or null | float in (0, 10000] |
| moods, keywords | list of str, comma-separated str or null | lower-case ``"a, b"`` str (text conditioners read strings) |

Every other field passes through unchanged (any JSON value).

Custom metadata. As stable-audio-tools' ``custom_metadata_module``: a callable
``get_custom_metadata(info, audio) -> dict``, or the path of a ``.py`` file defining one. ``info``
holds ``path``, ``relpath``, ``timestamps`` (start, end samples), ``seconds_start``,
``seconds_total``, ``padding_mask`` [T], ``sample_rate`` and the item's metadata so far; ``audio``
is the segment, float32 [C, T]. The returned dict is merged over the metadata; ``"__reject__":
True`` drops the item (it is never replaced by another one).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from cuecraft._bounded import MAX_SIDECAR_BYTES, parse_json, read_regular
from cuecraft._text import short_repr
from cuecraft.audio.key import parse_key
from cuecraft.errors import ConditioningInputError, DatasetError

CustomMetadata = Callable[[dict[str, Any], torch.Tensor], Mapping[str, Any]]

STRING_FIELDS = ("title", "artist", "description", "name")
KEYWORD_FIELDS = ("key", "genre", "instrument")
LIST_FIELDS = ("moods", "keywords")
MUSIC_FIELDS = STRING_FIELDS + KEYWORD_FIELDS + ("bpm",) + LIST_FIELDS
REJECT = "__reject__"
MAX_BPM = 10_000.0


def sidecar_path(audio: str | os.PathLike[str]) -> Path:
    """Where the sidecar of ``audio`` lives: the same path with the suffix ``.json``."""
    return Path(audio).with_suffix(".json")


def read_sidecar_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw JSON object of a sidecar file (not yet checked); DatasetError when it is not one
    (a FIFO, a device or a file over MAX_SIDECAR_BYTES is refused without waiting or reading it)."""
    try:
        text = read_regular(path, MAX_SIDECAR_BYTES)
    except OSError as error:
        raise DatasetError(f"{os.fspath(path)}: cannot read the sidecar ({error})") from None
    return parse_sidecar_text(text, os.fspath(path))


def parse_sidecar_text(text: str | bytes, source: str) -> dict[str, Any]:
    """A sidecar's JSON text -> its raw object; DatasetError naming ``source`` otherwise (nesting
    deeper than MAX_JSON_DEPTH, text over MAX_SIDECAR_BYTES, integers past Python's digit limit)."""
    if len(text) > MAX_SIDECAR_BYTES:
        raise DatasetError(f"{source}: the sidecar holds {len(text):,} bytes; at most {MAX_SIDECAR_BYTES:,}")
    try:
        value = parse_json(text)
    except ValueError as error:
        raise DatasetError(f"{source}: the sidecar is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise DatasetError(f"{source}: a sidecar must be a JSON object of fields; got {type(value).__name__}")
    return value


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in ("", "None"))


def _field_error(source: str, name: str, value: Any, allowed: str) -> DatasetError:
    return DatasetError(f"{source}: field '{name}' must be {allowed}; got {short_repr(value)}")


def _string(source: str, name: str, value: Any) -> str | None:
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise _field_error(source, name, value, "a string or null")
    return value.strip()


def _keyword(source: str, name: str, value: Any) -> str | None:
    if _blank(value):
        return None
    if name != "key" and isinstance(value, list):
        return _keyword_list(source, name, value)
    if not isinstance(value, str):
        allowed = "a string or null" if name == "key" else "a string, a list of strings or null"
        raise _field_error(source, name, value, allowed)
    if name == "key":
        if "," in value:
            return None  # several keys given: ambiguous, dropped as AudioCraft does
        return _canonical_key(value)
    return value.strip().lower()


def _canonical_key(value: str) -> str:
    """A key in any spelling cuecraft reads ("Am", "a minor", "A#m") -> its canonical name in
    ``cuecraft.audio.key.KEYS`` ("A minor", "Bb minor"), so a ``list`` conditioner over the 24 keys
    matches every spelling; a key it cannot read stays as written (lower case)."""
    try:
        return parse_key(value.strip())
    except ConditioningInputError:
        return value.strip().lower()


def _keyword_list(source: str, name: str, value: Any) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, str):
        words = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        words = value
    else:
        raise _field_error(source, name, value, "a list of strings, a comma-separated string or null")
    words = [w.strip().lower() for w in words if not _blank(w)]
    return ", ".join(words) if words else None


def _bpm(source: str, name: str, value: Any) -> float | None:
    if _blank(value):
        return None
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value) if abs(value) < 1e300 else float(MAX_BPM + 1)  # a 4,000-digit int is no tempo
    elif isinstance(value, str) and len(value) <= 100:
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise _field_error(source, name, value, "a positive number (beats per minute) or null")
    if number > MAX_BPM:
        raise _field_error(source, name, value, f"at most {MAX_BPM:g} beats per minute")
    return number


_PARSERS: dict[str, Callable[[str, str, Any], Any]] = {
    **{name: _string for name in STRING_FIELDS},
    **{name: _keyword for name in KEYWORD_FIELDS},
    **{name: _keyword_list for name in LIST_FIELDS},
    "bpm": _bpm,
}


def parse_music_info(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Check and normalise a sidecar's fields (table above). Fields whose value normalises to
    None are left out, so a field is present exactly when the item has a value for it."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        parser = _PARSERS.get(name)
        parsed = parser(source, name, value) if parser is not None else value
        if parsed is not None:
            out[name] = parsed
    return out


def load_custom_metadata(hook: CustomMetadata | str | os.PathLike[str] | None) -> CustomMetadata | None:
    """A custom-metadata callable, or the ``get_custom_metadata`` of the ``.py`` file at ``hook``."""
    if hook is None or callable(hook):
        return hook
    path = Path(hook)
    if path.suffix != ".py" or not path.is_file():
        raise DatasetError(f"custom_metadata: expected a callable or the path of a .py file defining "
                           f"get_custom_metadata(info, audio); got {os.fspath(hook)!r}")
    spec = importlib.util.spec_from_file_location(f"cuecraft_custom_metadata_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as error:  # the user's module: any failure is reported with its file
        raise DatasetError(f"{path}: importing the custom metadata module failed ({type(error).__name__}: "
                           f"{error})") from error
    function = getattr(module, "get_custom_metadata", None)
    if not callable(function):
        raise DatasetError(f"{path}: defines no function get_custom_metadata(info, audio)")
    return function


class FileHook:
    """A picklable custom-metadata hook read from a ``.py`` file (DataLoader workers import it
    themselves; a module loaded from a path cannot be pickled by reference)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self._function = load_custom_metadata(self.path)

    def __call__(self, info: dict[str, Any], audio: torch.Tensor) -> Mapping[str, Any]:
        return self._function(info, audio)  # type: ignore[misc]

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self._function = load_custom_metadata(self.path)


def as_hook(hook: CustomMetadata | str | os.PathLike[str] | None) -> CustomMetadata | None:
    """The hook the datasets call: a callable as given, a path as a picklable FileHook."""
    if hook is None or callable(hook):
        return hook
    return FileHook(hook)


def apply_custom_metadata(hook: CustomMetadata, info: dict[str, Any], audio: torch.Tensor,
                          source: str) -> dict[str, Any] | None:
    """Run the hook; the merged metadata, or None when it returns ``__reject__: True``."""
    result = hook(dict(info), audio)
    if not isinstance(result, Mapping):
        raise DatasetError(f"{source}: get_custom_metadata must return a dict; got {type(result).__name__}")
    if result.get(REJECT):
        return None
    merged = {**info, **result}
    merged.pop(REJECT, None)
    return merged
