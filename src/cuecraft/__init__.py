"""cuecraft: conditioning for audio generative models.

Metadata (text, numbers, labels, audio) -> ConditioningAttributes -> ConditionProvider
(tokenize, forward) -> {name: Condition} -> ConditionFuser -> backbone inputs.
"""

from cuecraft._version import __version__
from cuecraft.attributes import (
    ConditioningAttributes,
    JointEmbedCondition,
    SegmentWithAttributes,
    WavCondition,
)
from cuecraft.condition import Condition, null_condition
from cuecraft.conditioners import BaseConditioner, register_conditioner, registered_conditioners
from cuecraft.errors import (
    AudioReadError,
    CacheWarning,
    ConditioningInputError,
    ConfigError,
    CuecraftError,
    DatasetError,
    FusionError,
    GenerationInputError,
    MissingDependencyError,
    PretrainedModelNotFoundError,
    WeightsError,
)
from cuecraft.fuser import ConditionFuser, FusedInputs
from cuecraft.guidance import AttributeDropout, ClassifierFreeGuidanceDropout
from cuecraft.provider import ConditionProvider
from cuecraft.stack import ConditioningStack

__all__ = [
    "AttributeDropout",
    "AudioReadError",
    "CacheWarning",
    "BaseConditioner",
    "ClassifierFreeGuidanceDropout",
    "Condition",
    "ConditionFuser",
    "ConditionProvider",
    "ConditioningAttributes",
    "ConditioningInputError",
    "ConditioningStack",
    "ConfigError",
    "CuecraftError",
    "DatasetError",
    "FusedInputs",
    "FusionError",
    "GenerationInputError",
    "JointEmbedCondition",
    "MissingDependencyError",
    "PretrainedModelNotFoundError",
    "SegmentWithAttributes",
    "WavCondition",
    "WeightsError",
    "__version__",
    "null_condition",
    "register_conditioner",
    "registered_conditioners",
]
