"""What the commands that read a conditioning config share: composing files and ``--set``
overrides, plugins that register conditioners, downloads, and audio named in metadata files.

- Every such command takes one or more config files (merged in order, as Hydra composes
  AudioCraft's fragments) and ``--set KEY=VALUE`` overrides.
- Plugins: modules that register conditioners (``@register_conditioner``) are imported before
  the config is built: those named by ``--plugin MODULE`` and every entry point of the group
  ``cuecraft.conditioners`` (``[project.entry-points."cuecraft.conditioners"] my_tempo =
  "my_package.conditioners"`` in the plugin's pyproject.toml).
- ``--allow-download`` lets missing hub models be downloaded (checked reachable first).
- Metadata files may name audio for wav and joint-embed conditions: ``"self_wav": "song.flac"``
  or ``{"path": "song.flac", "seek_time": 12.5, "duration": 30}`` (paths relative to the
  metadata file's folder).
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cuecraft._text import short_repr
from cuecraft.errors import CuecraftError

ENTRY_POINT_GROUP = "cuecraft.conditioners"
AUDIO_KINDS = ("wav", "joint_embed")


def add_config_arguments(parser: argparse.ArgumentParser, *, positional: bool, required: bool = True,
                         default_help: str = "") -> None:
    """FILE... (positional) or --config FILE (repeatable), and --set KEY=VALUE (repeatable)."""
    what = ("conditioning config, JSON or YAML; several are merged in order (Hydra fragments such as "
            "AudioCraft's conditioner/chroma2music.yaml model/lm/musicgen_lm.yaml)")
    if positional:
        parser.add_argument("file", metavar="FILE", nargs="+", help=what)
    else:
        parser.add_argument("--config", metavar="FILE", action="append", required=required,
                            help=what + " (repeat --config to merge)" + default_help)
    parser.add_argument("--set", metavar="KEY=VALUE", dest="overrides", action="append", default=[],
                        help="override a value after merging, e.g. --set transformer_lm.dim=1536 --set "
                             "sample_rate=32000 (VALUE is read as YAML; ~KEY deletes)")


def config_source(files: Sequence[str] | None, default: Any = None) -> Any:
    """The files as load_config takes them (one path, or a list to merge)."""
    if not files:
        return default
    return files[0] if len(files) == 1 else list(files)


def add_plugin_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", metavar="MODULE", action="append", default=[],
                        help="import MODULE first (it registers custom conditioners); repeatable. Installed "
                             f"packages can instead declare an entry point in the group {ENTRY_POINT_GROUP!r}")
    parser.add_argument("--allow-download", action="store_true",
                        help="download pretrained models missing from the Hugging Face cache (the hub is "
                             "checked to be reachable first); off by default")


def load_plugins(modules: Sequence[str] = (), *, entry_points: bool = True) -> list[str]:
    """Import ``modules`` and the ``cuecraft.conditioners`` entry points; returns what was loaded.

    A plugin that cannot be imported is a CuecraftError naming it and why.
    """
    loaded = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - a plugin may fail in any way; say which and why
            raise CuecraftError(f"--plugin {name}: cannot import it ({type(error).__name__}: "
                                f"{short_repr(str(error), 200)[1:-1]})") from None
        loaded.append(name)
    if entry_points:
        from importlib.metadata import entry_points as find_entry_points

        for point in find_entry_points(group=ENTRY_POINT_GROUP):
            try:
                point.load()
            except Exception as error:  # noqa: BLE001
                raise CuecraftError(f"entry point {point.name} = {point.value} (group {ENTRY_POINT_GROUP}): cannot "
                                    f"load it ({type(error).__name__}: {short_repr(str(error), 200)[1:-1]})") from None
            loaded.append(point.value)
    return loaded


def resolve_audio(metadata: list[Any], kinds: Mapping[str, str], base: str | os.PathLike[str]) -> list[Any]:
    """Metadata items with the audio paths of wav / joint_embed conditions read into
    WavCondition / JointEmbedCondition (paths relative to ``base``); other values as they are.

    An unreadable file is an AudioReadError naming it (and the item).
    """
    from cuecraft.attributes import JointEmbedCondition, WavCondition
    from cuecraft.audio.io import load_audio
    from cuecraft.errors import AudioReadError, ConditioningInputError

    resolved = []
    for index, item in enumerate(metadata):
        if not isinstance(item, dict):
            resolved.append(item)
            continue
        item = dict(item)
        for name, kind in kinds.items():
            value = item.get(name)
            if kind not in AUDIO_KINDS or not isinstance(value, (str, dict)):
                continue
            spec = {"path": value} if isinstance(value, str) else value
            if "path" not in spec:
                continue
            unknown = set(spec) - {"path", "seek_time", "duration", "text"}
            path, seek, duration = spec.get("path"), spec.get("seek_time", 0.0), spec.get("duration")
            if (unknown or not isinstance(path, str) or not _number(seek) or
                    (duration is not None and not _number(duration)) or (kind == "wav" and "text" in spec)):
                text = ', "text": str' if kind == "joint_embed" else ""
                raise ConditioningInputError(
                    f'item {index}, {name}: an audio value is a path or {{"path": str, "seek_time": seconds, '
                    f'"duration": seconds{text}}}; got {short_repr(value)}')
            file = Path(path) if os.path.isabs(path) else Path(base) / path
            try:
                wav, rate = load_audio(file, seek_time=float(seek), duration=None if duration is None else float(duration))
            except AudioReadError as error:
                raise AudioReadError(f"item {index}, {name}: {error}") from None
            if kind == "wav":
                item[name] = WavCondition(wav, rate, path=str(file), seek_time=float(seek))
            else:
                item[name] = JointEmbedCondition(wav=wav, sample_rate=rate, text=spec.get("text"), path=str(file),
                                                 seek_time=float(seek))
        resolved.append(item)
    return resolved


def _number(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
