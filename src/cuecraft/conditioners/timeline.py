"""Frame-aligned conditions from musical labels: the frame grid, metre and tempo, the checks every
such conditioner shares, and their base class ``FrameConditioner`` (``beats``, ``chords``).

Notation: B batch, T frames, C channels, N beats (or chord segments) of an item.

Frames: ``T = round(duration * frame_rate)``; frame i sits at ``i / frame_rate`` seconds after the
clip's start, which is ``seek_time`` on the piece's clock (labels are times on that clock, as
corpus sidecars hold them; 0 when not given). The mask is True on the frames inside the clip:
all of them, or those before the piece's end when the item gives ``duration`` (the piece's
length) or, for tracked beats, before the end of its audio.

Metre: "N/D" with N in 1..32 and D a power of two up to 64. A compound metre (N a multiple of
3 above 3, D >= 8: 6/8, 9/8, 12/8) counts N/3 beats of a dotted note per bar, so 6/8 has 2 beats
per bar and ``bpm`` counts dotted quarters, as the corpus generator writes it (``beats_per_bar``
2 for 6/8); a simple metre counts N beats of the 1/D note (3/4: 3 quarter-note beats).

Bad values are reported all at once: every problem of every item and field becomes one line of a
ConditioningInputError (``item 2, bpm: ...; got nan; allowed: ...``), and nothing is computed.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch

from cuecraft._numbers import is_finite_number
from cuecraft._text import short_repr
from cuecraft.attributes import AttributeValue, SymbolicCondition
from cuecraft.condition import Condition
from cuecraft.conditioners.base import BaseConditioner, check_real
from cuecraft.errors import ConditioningInputError, ConfigError

MAX_FRAMES = 2**20  # duration * frame_rate of one condition
MAX_FRAME_RATE = 1000.0  # frames per second
MIN_GAP = 1e-3  # seconds: label times closer than this do not increase
TIMES_ALLOWED = "a list of finite times in seconds, >= 0, increasing"


@dataclass(frozen=True)
class Metre:
    """A time signature: ``numerator/denominator``, and how many beats a bar counts."""

    numerator: int
    denominator: int

    @property
    def compound(self) -> bool:
        return self.numerator % 3 == 0 and self.numerator > 3 and self.denominator >= 8

    @property
    def beats_per_bar(self) -> int:
        return self.numerator // 3 if self.compound else self.numerator

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


METRE_ALLOWED = '"N/D" with N in 1..32 and D in 1, 2, 4, 8, 16, 32, 64 (e.g. "4/4", "3/4", "6/8")'


def parse_time_signature(text: Any) -> Metre:
    """ "4/4" -> Metre(4, 4); anything else is a ConditioningInputError saying what is allowed."""
    parts = text.strip().split("/") if isinstance(text, str) else []
    if len(parts) == 2 and all(p.strip().isdigit() and p.strip().isascii() for p in parts):
        numerator, denominator = int(parts[0]), int(parts[1])
        if 1 <= numerator <= 32 and denominator in (1, 2, 4, 8, 16, 32, 64):
            return Metre(numerator, denominator)
    raise ConditioningInputError(f"time_signature: got {short_repr(text)}; allowed: {METRE_ALLOWED}")


is_number = is_finite_number  # a real number (not a bool), finite


class Problems(list):
    """Problem lines of one batch: ``add(index, field, message)`` -> ``item 3, bpm: message``."""

    def add(self, index: int, field: str, message: str) -> None:
        self.append(f"item {index}, {field}: {message}")


class FrameTokens(NamedTuple):
    """features: float32 [B, T, C], zeros on masked frames and null items. mask: bool [B, T]."""

    features: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device | str) -> FrameTokens:
        return FrameTokens(self.features.to(device, non_blocking=True), self.mask.to(device, non_blocking=True))


@dataclass(frozen=True)
class Clip:
    """Where an item's frames sit: ``start`` on the piece's clock, and how many seconds of the
    clip are inside the piece (frames at or after ``valid_seconds`` are masked)."""

    start: float
    valid_seconds: float


class FrameConditioner(BaseConditioner):
    """Base of conditioners that turn symbolic labels into C channels per frame: [B, T, C].

    Subclasses set ``channels`` and ``fields`` (the SymbolicCondition fields they read) and
    implement ``plan_item`` (check one item's labels, return what ``render`` needs, or None for
    the null condition) and ``render``. Null (None, dropout, the unconditional branch, an item
    without the labels the conditioner reads): zeros, mask all False, T frames.

    Args:
        output_dim: None (default) or ``channels`` for the raw channels; with ``project_out``
            the width of a learned projection (configs give it ``cond_dim`` unless set).
        frame_rate: frames per second. duration: the clip length in seconds (T frames).
        time_signature: the metre of items that give a tempo but no ``time_signature``.
        min_bpm, max_bpm: the tempos accepted; others are errors.
        project_out: a learned Linear(channels, output_dim) after the raw channels.
    """

    kind = "symbolic"
    output_length = None  # set per instance: T
    channels: ClassVar[int]
    fields: ClassVar[tuple[str, ...]]

    def __init__(self, output_dim: int | None, frame_rate: float, duration: float, time_signature: str,
                 min_bpm: float, max_bpm: float, project_out: bool):
        problems = [*check_real("frame_rate", frame_rate), *check_real("duration", duration),
                    *check_real("min_bpm", min_bpm), *check_real("max_bpm", max_bpm)]
        if not problems:
            if not 0 < frame_rate <= MAX_FRAME_RATE:
                problems.append(f"frame_rate: must be in (0, {MAX_FRAME_RATE:g}] frames per second; got {frame_rate}")
            if duration <= 0:
                problems.append(f"duration: must be > 0 seconds; got {duration}")
            elif not problems and not 1 <= round(duration * frame_rate) <= MAX_FRAMES:
                problems.append(f"duration: duration * frame_rate must give 1 to {MAX_FRAMES} frames; got "
                                f"{duration} s * {frame_rate} per s")
            if not 0 < min_bpm < max_bpm:
                problems.append(f"max_bpm: must be above min_bpm, and min_bpm above 0; got {min_bpm}..{max_bpm}")
        try:
            metre = parse_time_signature(time_signature)
        except ConditioningInputError as error:
            problems.append(str(error))
        if not isinstance(project_out, bool):
            problems.append(f"project_out: expected true or false; got {project_out!r}")
        elif output_dim is None and project_out:
            problems.append("output_dim: required with project_out: true (the projection's width)")
        elif output_dim is not None and not project_out and output_dim != self.channels:
            problems.append(f"output_dim: without project_out the output is the {self.channels} raw channels; "
                            f"got {output_dim!r}: leave it out, or set project_out: true to project to it")
        if problems:
            raise ConfigError(problems)
        super().__init__(self.channels, self.channels if output_dim is None else output_dim, project_out)
        self.frame_rate = float(frame_rate)
        self.duration = float(duration)
        self.metre = metre
        self.min_bpm, self.max_bpm = float(min_bpm), float(max_bpm)
        self.frames = round(duration * frame_rate)
        self.null_length = self.output_length = self.frames
        # Moves with .to(dtype / device), so encode knows the dtype to return; not saved.
        self.register_buffer("_dtype_anchor", torch.empty(0), persistent=False)

    @classmethod
    def default_output_dim(cls, settings: Mapping[str, Any], cond_dim: int) -> int:
        """The ``output_dim`` a config gives when it sets none: ``cond_dim`` with a projection,
        else the raw channel count."""
        return cond_dim if settings.get("project_out") is True else cls.channels

    @classmethod
    def declared_output_length(cls, settings: Mapping[str, Any]) -> int | None:
        """T as the settings declare it (for ``cuecraft config validate`` without a build)."""
        rate, seconds = settings.get("frame_rate", 50.0), settings.get("duration", 30.0)
        return round(seconds * rate) if is_number(rate) and is_number(seconds) else None

    @property
    def metadata_keys(self) -> tuple[str, ...]:
        """The metadata keys this conditioner reads (the provider's route), whatever its name."""
        return self.fields

    # --- shared checks (each adds problem lines and returns the value, or None) ------------------

    def read_bpm(self, index: int, value: Any, problems: Problems) -> float | None:
        if value is None:
            return None
        if not is_number(value) or not self.min_bpm <= value <= self.max_bpm:
            problems.add(index, "bpm", f"got {short_repr(value)}; allowed: a finite number of beats per minute "
                                       f"in [{self.min_bpm:g}, {self.max_bpm:g}] (the config's min_bpm, max_bpm)")
            return None
        return float(value)

    def read_metre(self, index: int, value: Any, problems: Problems) -> Metre | None:
        if value is None:
            return self.metre
        try:
            return parse_time_signature(value)
        except ConditioningInputError as error:
            problems.add(index, "time_signature", str(error).removeprefix("time_signature: "))
            return None

    @staticmethod
    def read_seconds(index: int, field: str, value: Any, problems: Problems, *, positive: bool = False) -> float | None:
        if value is None:
            return None
        if not is_number(value) or value < 0 or (positive and value == 0):
            problems.add(index, field, f"got {short_repr(value)}; allowed: a finite number of seconds "
                                       + ("> 0" if positive else ">= 0"))
            return None
        return float(value)

    @staticmethod
    def read_times(index: int, field: str, value: Any, problems: Problems) -> list[float] | None:
        """A list of label times: finite, >= 0, increasing by at least MIN_GAP."""
        if value is None:
            return None
        if isinstance(value, torch.Tensor) or type(value).__module__ == "numpy":
            value = value.tolist()  # a tensor or array of times
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            problems.add(index, field, f"got {short_repr(value)}; allowed: {TIMES_ALLOWED}")
            return None
        bad = next((i for i, t in enumerate(value) if not is_number(t) or t < 0), None)
        if bad is not None:
            problems.add(index, field, f"time {bad} is {short_repr(value[bad])}; allowed: {TIMES_ALLOWED}")
            return None
        times = [float(t) for t in value]
        late = next((i for i in range(1, len(times)) if times[i] - times[i - 1] < MIN_GAP), None)
        if late is not None:
            problems.add(index, field, f"time {late} ({times[late]:g} s) does not come after time {late - 1} "
                                       f"({times[late - 1]:g} s); allowed: {TIMES_ALLOWED}")
            return None
        return times

    def read_clip(self, index: int, value: SymbolicCondition, problems: Problems) -> Clip | None:
        """The clip of an item: its start (``seek_time``) and the seconds inside the piece."""
        start = self.read_seconds(index, "seek_time", value.seek_time, problems) or 0.0
        length = self.read_seconds(index, "duration", value.duration, problems, positive=True)
        valid = self.frames / self.frame_rate
        if length is not None:
            if length <= start:
                problems.add(index, "seek_time", f"got {start:g} s, at or past the piece's end (duration "
                                                 f"{length:g} s); allowed: a start inside the piece")
                return None
            valid = min(valid, length - start)
        return Clip(start, valid)

    # --- tokenize / encode -------------------------------------------------------------------

    def frame_times(self, starts: Sequence[float]) -> torch.Tensor:
        """Piece-clock times of every frame of items starting at ``starts``: float64 [B, T]."""
        offsets = torch.arange(self.frames, dtype=torch.float64) / self.frame_rate
        return torch.tensor(list(starts), dtype=torch.float64).unsqueeze(1) + offsets

    def clip_mask(self, clips: Sequence[Clip | None]) -> torch.Tensor:
        """bool [B, T]: frames inside each clip; all False for a null item."""
        offsets = torch.arange(self.frames, dtype=torch.float64) / self.frame_rate
        valid = torch.tensor([-1.0 if c is None else c.valid_seconds for c in clips], dtype=torch.float64)
        return offsets.unsqueeze(0) < valid.unsqueeze(1)

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> FrameTokens:
        problems = Problems()
        plans = [None if value is None else self.plan_item(i, value, problems)  # type: ignore[arg-type]
                 for i, value in enumerate(values)]
        if problems:
            raise ConditioningInputError(problems)
        chosen = [i for i, plan in enumerate(plans) if plan is not None]
        if len(chosen) == len(plans):
            features = self.render(plans)
        else:
            features = torch.zeros(len(values), self.frames, self.channels)
            if chosen:
                features[chosen] = self.render([plans[i] for i in chosen])
        mask = self.clip_mask([None if plan is None else plan.clip for plan in plans])
        if not bool(mask.all()):
            features = features * mask.unsqueeze(-1)  # zeros outside the clip and on null items
        return FrameTokens(features, mask)

    @abstractmethod
    def plan_item(self, index: int, value: SymbolicCondition, problems: Problems) -> Any:
        """Check item ``index``'s labels (adding problem lines); what ``render`` needs (with a
        ``clip`` attribute), or None for the null condition."""

    @abstractmethod
    def render(self, plans: Sequence[Any]) -> torch.Tensor:
        """The planned (non-null) items' channels: float32 [B', T, C]."""

    def encode(self, tokens: FrameTokens) -> Condition:
        return Condition(tokens.features.to(self._dtype_anchor.dtype), tokens.mask)

    def extra_repr(self) -> str:
        return (f"frame_rate={self.frame_rate:g}, duration={self.duration:g}, frames={self.frames}, "
                f"time_signature='{self.metre}', bpm=[{self.min_bpm:g}, {self.max_bpm:g}], " + super().extra_repr())


def padded_search(sorted_rows: Sequence[torch.Tensor], times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each time, the last row value at or before it and the first after it.

    sorted_rows: B increasing float64 tensors [N_b] that bracket every time of their row.
    times: float64 [B, T]. Returns (previous, next), float64 [B, T] each.
    """
    table = torch.nn.utils.rnn.pad_sequence(list(sorted_rows), batch_first=True)  # [B, N]
    lengths = torch.tensor([len(row) for row in sorted_rows]).unsqueeze(1)  # [B, 1]
    past = torch.arange(table.shape[1]).unsqueeze(0) + 1 - lengths  # [B, N]: > 0 on the padding
    last = table.gather(1, lengths - 1)  # [B, 1]
    table = torch.where(past > 0, last + 1e9 * past, table)  # padding: increasing, beyond every frame
    width = table.shape[1]
    after = torch.searchsorted(table, times, right=True).clamp_(1, width - 1)  # [B, T]
    return table.gather(1, after - 1), table.gather(1, after)

