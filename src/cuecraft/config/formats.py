"""Load a conditioning config in any format cuecraft reads, and save the canonical one.

Formats: cuecraft's own (JSON or YAML; see schema.py), stable-audio-tools' ``model_config.json``
(or its ``model.conditioning`` block) and AudioCraft's YAML. The format is recognised from the
content. Errors name the field as the user's file spells it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cuecraft._files import atomic_write
from cuecraft.config.audiocraft import is_audiocraft, read_audiocraft
from cuecraft.config.schema import ConditioningConfig, dump_config, parse_config
from cuecraft.config.stable_audio import is_stable_audio, read_stable_audio
from cuecraft.config.translate import Translation
from cuecraft.errors import ConfigError

FORMATS = ("cuecraft", "stable-audio-tools", "audiocraft")


@dataclass
class LoadedConfig:
    """A validated config, the format it was read from, and what the translation left out."""

    config: ConditioningConfig
    translation: Translation

    @property
    def format(self) -> str:
        return self.translation.format

    @property
    def ignored(self) -> list[str]:
        return self.translation.ignored

    @property
    def notes(self) -> list[str]:
        return self.translation.notes


def read_file(path: str | Path) -> Any:
    """Parse a JSON or YAML file (by suffix); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{path}: not valid JSON: {error}") from None


def translate(data: Any) -> Translation:
    """Recognise the format of ``data`` and translate it to the canonical mapping."""
    if not isinstance(data, dict):
        raise ConfigError(f"(top level): expected a mapping; got {type(data).__name__}")
    if isinstance(data.get("conditioners"), list):
        return Translation(data, "cuecraft")
    if is_audiocraft(data):
        return read_audiocraft(data)
    if is_stable_audio(data):
        return read_stable_audio(data)
    raise ConfigError(
        "(top level): not a conditioning config cuecraft recognises; expected cuecraft's "
        "(a 'conditioners' list), stable-audio-tools' ('model.conditioning' or 'configs' + 'cond_dim') "
        f"or AudioCraft's (a 'conditioners' mapping); keys given: {sorted(map(str, data))}"
    )


def load_config(source: str | Path | dict[str, Any] | ConditioningConfig) -> LoadedConfig:
    """Read, translate and validate a config file or mapping; ConfigError lists every problem.

    Validation here covers the structure; conditioner types, settings and values are checked
    when the conditioners are built (``build_stack``) or, without building, by
    ``build.check_config_types``.
    """
    if isinstance(source, ConditioningConfig):
        return LoadedConfig(source, Translation(dump_config(source), "cuecraft"))
    data = read_file(source) if isinstance(source, (str, Path)) else source
    translation = translate(data)
    try:
        config = parse_config(translation.data)
    except ConfigError as error:
        raise ConfigError([translation.peer_path(p) for p in error.problems]) from None
    return LoadedConfig(config, translation)


def save_config(config: ConditioningConfig, path: str | Path) -> None:
    """Write the canonical config as JSON or YAML (by suffix), atomically."""
    path = Path(path)
    data = dump_config(config)
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(data, sort_keys=False)
    else:
        text = json.dumps(data, indent=2) + "\n"
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)
