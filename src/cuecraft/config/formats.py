"""Load a conditioning config in any format cuecraft reads, and save the canonical one.

Formats: cuecraft's own (JSON or YAML; see schema.py), stable-audio-tools' ``model_config.json``
(or its ``model.conditioning`` block) and AudioCraft's YAML. The format is recognised from the
content. Errors name the field as the user's file spells it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cuecraft._files import atomic_write
from cuecraft.config.audiocraft import is_audiocraft, read_audiocraft
from cuecraft.config.schema import ConditioningConfig, dump_config, parse_config
from cuecraft.config.stable_audio import is_stable_audio, read_stable_audio
from cuecraft.config.reading import compose, read_document
from cuecraft.config.peer_inputs import apply_peer_inputs
from cuecraft.config.translate import Translation
from cuecraft._text import short_repr
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
    """Parse a JSON or YAML file (by suffix), bounded in size, depth and expansion; errors name the
    file (see ``cuecraft.config.reading``)."""
    return read_document(path)


# What a stable-audio-tools model_type without a conditioning block is.
_UNCONDITIONED = {"autoencoder": "an autoencoder", "diffusion_uncond": "an unconditional diffusion model",
                  "diffusion_autoencoder": "a diffusion autoencoder", "lm": "a language model",
                  "hyperencoder": "a hyperencoder"}


def translate(data: Any, *, compat: str = "inputs") -> Translation:
    """Recognise the format of ``data`` and translate it to the canonical mapping.

    A peer's config gets the options that give its checkpoints their training inputs, and with
    ``compat="exact"`` the peer's defects too (see ``peer_inputs.apply_peer_inputs``).

    The translation may carry ``problems`` (every one the reader found); the caller reports them.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"(top level): expected a mapping; got {type(data).__name__}")
    if isinstance(data.get("conditioners"), list):
        return Translation(data, "cuecraft")
    if is_audiocraft(data):
        return apply_peer_inputs(read_audiocraft(data), compat)
    if is_stable_audio(data):
        translation = read_stable_audio(data)
        _check_seconds_total(data, translation)
        return apply_peer_inputs(translation, compat)
    model_type = data.get("model_type")
    if isinstance(model_type, str):
        what = _UNCONDITIONED.get(model_type, "a model")
        raise ConfigError(f"(top level): model_type {short_repr(model_type)[1:-1]} has no conditioning block "
                          f"(model.conditioning): this stable-audio-tools config describes {what}, which "
                          "takes no conditions")
    raise ConfigError(
        "(top level): not a conditioning config cuecraft recognises; expected cuecraft's "
        "(a 'conditioners' list), stable-audio-tools' ('model.conditioning', 'conditioning' or 'configs' + "
        f"'cond_dim') or AudioCraft's (a 'conditioners' mapping); keys given: {short_repr(sorted(map(str, data)))}"
    )


def _check_seconds_total(data: dict[str, Any], translation: Translation) -> None:
    """Warn when ``seconds_total`` accepts more than the model generates (sample_size / sample_rate):
    stable-audio-tools cuts the output to sample_size whatever seconds_total asks for."""
    size, rate = data.get("sample_size"), data.get("sample_rate")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1e300
               for v in (size, rate)):  # (a comparison: math.isfinite overflows on a 400-digit int)
        return
    limit = size / rate
    for i, spec in enumerate(translation.data.get("conditioners", [])):
        top = spec.get("config", {}).get("max_val") if isinstance(spec.get("config"), dict) else None
        if spec.get("id") != "seconds_total" or not isinstance(top, (int, float)) or isinstance(top, bool):
            continue
        if top > limit:
            shown = f"{top:g}" if top <= 1e300 else short_repr(top)  # a 400-digit int overflows 'g'
            where = translation.peer_path(f"conditioners[{i}].config.max_val:").rstrip(":")
            translation.notes.append(
                f"warning: {where}: seconds_total accepts up to {shown} s, but the model generates at most "
                f"sample_size / sample_rate = {size} / {rate} = {limit:.1f} s; longer requests are cut to "
                f"{limit:.1f} s (a seconds_total past it asks for audio the model never makes)")


def load_checked(source: Any, *, overrides: Sequence[str] = (),
                 compat: str = "inputs") -> tuple[LoadedConfig | None, list[str]]:
    """(the loaded config or None, every problem found): reading, composing, translating and the
    schema, all of it reported at once, in the file's own field names."""
    if isinstance(source, LoadedConfig) and not overrides:
        return source, []
    if isinstance(source, ConditioningConfig):
        if not overrides:
            return LoadedConfig(source, Translation(dump_config(source), "cuecraft")), []
        source = dump_config(source)
    data, notes = compose(source, overrides)
    translation = translate(data, compat=compat)
    translation.notes[:0] = notes
    problems = list(translation.problems)
    config = None
    try:
        config = parse_config(translation.data)
    except ConfigError as error:
        problems += translation.peer_problems(error.problems)
    return (None if config is None else LoadedConfig(config, translation)), problems


def load_config(source: str | Path | dict[str, Any] | ConditioningConfig | Sequence[str | Path | dict[str, Any]],
                *, overrides: Sequence[str] = (), compat: str = "inputs") -> LoadedConfig:
    """Read, compose, translate and validate a config; ConfigError lists every problem.

    ``source`` is a file, a mapping or a list of them (merged in order, as Hydra composes
    AudioCraft's fragments); ``overrides`` are ``key.path=value`` strings applied after merging.
    Validation here covers the structure; conditioner types, settings and values are checked
    when the conditioners are built (``build_stack``) or, without building, by
    ``build.check_config_types``.
    """
    loaded, problems = load_checked(source, overrides=overrides, compat=compat)
    if problems or loaded is None:
        raise ConfigError(problems or ["(top level): not a valid config"])
    return loaded


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
