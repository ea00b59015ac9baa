"""The exceptions cuecraft raises for bad input, bad configuration and missing extras.

Every error says what was given, what is allowed and, where it helps, how to fix it. Each type
also derives from the built-in exception a caller would naturally catch (ValueError, ImportError).
"""

from __future__ import annotations

from collections.abc import Sequence


class CuecraftError(Exception):
    """Base class of every error cuecraft raises on purpose."""


class ConfigError(CuecraftError, ValueError):
    """A configuration is invalid. Holds every problem found, each prefixed by its field path.

    ``problems`` is the list of ``"path: message"`` lines; ``str(error)`` joins them.
    """

    def __init__(self, problems: str | Sequence[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        count = len(self.problems)
        head = "invalid configuration" if count == 1 else f"invalid configuration ({count} problems)"
        super().__init__(head + ":\n  " + "\n  ".join(self.problems))


class ConditioningInputError(CuecraftError, ValueError):
    """A metadata item or attribute value cannot be turned into a condition.

    ``problems`` is the list of problem lines (one for most errors; every problem of a batch for
    the conditioners that check all values before raising, such as ``beats`` and ``chords``).
    ``str(error)`` is the one line, or a count followed by one indented line per problem.
    """

    def __init__(self, problems: str | Sequence[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            super().__init__(self.problems[0])
        else:
            super().__init__(f"{len(self.problems)} problems with the conditioning input:\n  "
                             + "\n  ".join(self.problems))


class GenerationInputError(CuecraftError, ValueError):
    """The arguments of a generation call are invalid. Holds every problem found.

    ``problems`` is the list of problem lines; ``str(error)`` joins them.
    """

    def __init__(self, problems: str | Sequence[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        head = "invalid generation arguments" if len(self.problems) == 1 else \
            f"invalid generation arguments ({len(self.problems)} problems)"
        super().__init__(head + ":\n  " + "\n  ".join(self.problems))


class FusionError(CuecraftError, ValueError):
    """Conditions handed to the fuser do not fit the routing or the input they are fused with."""


class MissingDependencyError(CuecraftError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


class PretrainedModelNotFoundError(CuecraftError, FileNotFoundError):
    """A pretrained model is neither at the given path nor in the Hugging Face cache."""


class WeightsError(CuecraftError, ValueError):
    """A checkpoint's weights do not fit the conditioners they are loaded into."""


class AudioReadError(CuecraftError, OSError):
    """An audio file cannot be read: missing, unreadable, of an unknown format or corrupt."""


class CacheWarning(UserWarning):
    """A cache entry was unusable (corrupt, truncated, misplaced) and is being recomputed."""


class DatasetError(CuecraftError, ValueError):
    """A dataset, one of its files or its metadata cannot be used; the message names the file,
    the field where there is one, and the reason."""


class CheckpointError(CuecraftError, ValueError):
    """A training checkpoint is missing, torn, of another format, or does not fit the run resuming
    from it; the message names the file and the reason."""


class EvaluationInputError(CuecraftError, ValueError):
    """Audio, embeddings or labels handed to an evaluation metric or classifier have the wrong
    shape, type or values; the message says what was given and what is allowed."""


class TrainingError(CuecraftError, RuntimeError):
    """Training cannot go on (the loss or the gradients turned non-finite); nothing is exported
    and the message says at which step and what to change."""


class DeviceError(CuecraftError, ValueError):
    """The asked device is not a device name, or is not available in this torch build or machine;
    the message lists the devices that are."""


class GenerationError(CuecraftError, RuntimeError):
    """Generation ran but gave no usable audio (samples that are not finite: a model with broken
    weights, or a guidance that diverged); the message says which request and what to try."""
