"""cuecraft: conditioning for audio generative models.

Metadata (text, numbers, labels, audio) -> ConditioningAttributes -> ConditionProvider
(tokenize, forward) -> {name: Condition} -> ConditionFuser -> backbone inputs.

The names below are imported when first used (PEP 562), so ``import cuecraft`` (and
``cuecraft --version``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cuecraft._version import __version__

_EXPORTS = {
    "cuecraft.attributes": ("ConditioningAttributes", "JointEmbedCondition", "SegmentWithAttributes", "WavCondition"),
    "cuecraft.condition": ("Condition", "null_condition"),
    "cuecraft.conditioners": ("BaseConditioner", "register_conditioner", "registered_conditioners"),
    "cuecraft.errors": ("AudioReadError", "CacheWarning", "ConditioningInputError", "ConfigError", "CuecraftError",
                        "DatasetError", "EvaluationInputError", "FusionError", "GenerationInputError", "MissingDependencyError",
                        "PretrainedModelNotFoundError", "WeightsError"),
    "cuecraft.fuser": ("ConditionFuser", "FusedInputs"),
    "cuecraft.guidance": ("AttributeDropout", "ClassifierFreeGuidanceDropout"),
    "cuecraft.pipelines.generate": ("GenerationPipeline", "GenerationRequest", "load_builtin"),
    "cuecraft.pipelines.recording": ("Recording",),
    "cuecraft.provider": ("ConditionProvider",),
    "cuecraft.stack": ("ConditioningStack",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:
    from cuecraft.attributes import ConditioningAttributes, JointEmbedCondition, SegmentWithAttributes, WavCondition
    from cuecraft.condition import Condition, null_condition
    from cuecraft.conditioners import BaseConditioner, register_conditioner, registered_conditioners
    from cuecraft.errors import (AudioReadError, CacheWarning, ConditioningInputError, ConfigError, CuecraftError,
                                 DatasetError, EvaluationInputError, FusionError, GenerationInputError,
                                 MissingDependencyError,
                                 PretrainedModelNotFoundError, WeightsError)
    from cuecraft.fuser import ConditionFuser, FusedInputs
    from cuecraft.guidance import AttributeDropout, ClassifierFreeGuidanceDropout
    from cuecraft.pipelines.generate import GenerationPipeline, GenerationRequest, load_builtin
    from cuecraft.pipelines.recording import Recording
    from cuecraft.provider import ConditionProvider
    from cuecraft.stack import ConditioningStack


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'cuecraft' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = sorted([*_WHERE, "__version__"])
