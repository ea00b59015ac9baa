"""Backbones that consume fused conditions."""

from cuecraft.models.reference import ReferenceTransformer

__all__ = ["ReferenceTransformer"]
