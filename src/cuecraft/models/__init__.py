"""Backbones and wrappers that consume fused conditions."""

from cuecraft.models.conditioned import ConditionedModel
from cuecraft.models.reference import ReferenceTransformer

__all__ = ["ConditionedModel", "ReferenceTransformer"]
