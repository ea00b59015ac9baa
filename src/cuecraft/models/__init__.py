"""Backbones and wrappers that consume fused conditions."""

from cuecraft.models.conditioned import ConditionedModel
from cuecraft.models.dit import DiT, DiTBlock
from cuecraft.models.dit_config import DiTConfig
from cuecraft.models.reference import ReferenceTransformer

__all__ = ["ConditionedModel", "DiT", "DiTBlock", "DiTConfig", "ReferenceTransformer"]
