"""Configuration: cuecraft's strict schema, readers for the peers' formats, and the builder.

- ``schema``: cuecraft's canonical config (pydantic, strict).
- ``formats``: recognise and load any supported format; save the canonical one.
- ``stable_audio``, ``audiocraft``: the peers' formats, translated with their own key names.
- ``build``: conditioners, provider, fuser and dropouts from a config; dimension bookkeeping.
- ``weights``: load the peers' trained conditioner weights.
"""

from cuecraft.config.build import DEFAULT_CONFIG, DEFAULT_METADATA, build_stack
from cuecraft.config.formats import LoadedConfig, load_config, read_file, save_config
from cuecraft.config.schema import ConditioningConfig, dump_config, parse_config

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_METADATA",
    "ConditioningConfig",
    "LoadedConfig",
    "build_stack",
    "dump_config",
    "load_config",
    "parse_config",
    "read_file",
    "save_config",
]
