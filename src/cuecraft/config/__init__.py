"""Configuration: cuecraft's strict config schema and the builder of conditioning stacks."""

from cuecraft.config.build import DEFAULT_CONFIG, DEFAULT_METADATA, build_stack, read_file
from cuecraft.config.schema import ConditioningConfig, parse_config

__all__ = ["DEFAULT_CONFIG", "DEFAULT_METADATA", "ConditioningConfig", "build_stack", "parse_config", "read_file"]
