"""Backbones and wrappers that consume fused conditions."""

from cuecraft.models.conditioned import ConditionedModel
from cuecraft.models.dit import DiT, DiTBlock
from cuecraft.models.dit_config import DiTConfig
from cuecraft.models.objectives import Objective, RectifiedFlowObjective, VObjective, get_objective, masked_mse
from cuecraft.models.reference import ReferenceTransformer
from cuecraft.models.representation import MelRepresentation, Representation, load_representation

__all__ = ["ConditionedModel", "DiT", "DiTBlock", "DiTConfig", "Objective", "RectifiedFlowObjective",
           "ReferenceTransformer", "VObjective", "get_objective", "masked_mse"]
__all__ += ["MelRepresentation", "Representation", "load_representation"]
