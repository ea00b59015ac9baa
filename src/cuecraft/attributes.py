"""What a user hands in: ``ConditioningAttributes`` and the values it holds.

A batch item is one of:
- a ``ConditioningAttributes`` (values sorted by kind: text, wav, joint_embed, number),
- a ``SegmentWithAttributes`` (a dataset item that knows how to make the above), or
- a plain metadata dict (``{"prompt": "a beautiful song", "seconds_total": 193}``), routed to
  conditioners by their names (or the provider's ``default_keys``) and checked against the kind
  each conditioner consumes. A ``symbolic`` conditioner (beats, chords) reads musical fields
  (``bpm``, ``time_signature``, ``beats``, ``chords``, ...) whatever its name: its route lists
  them, and they are gathered into one ``SymbolicCondition``.

``None`` is always allowed and means "no value": the conditioner produces its null condition.
Waveforms are per item: ``wav`` is [C, T] (or [T] for mono), at ``sample_rate``.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, NamedTuple, Union

import torch

from cuecraft._text import short_keys, short_repr
from cuecraft.errors import ConditioningInputError

AttributeKind = Literal["text", "wav", "joint_embed", "number", "embedding", "symbolic"]
# ``embedding`` holds pre-encoded conditions: a ready embedding [T, D] (or [D]) per item.
# ``symbolic`` holds musical labels (tempo, metre, beats, chords, key): a SymbolicCondition per
# item (AudioCraft's JASCO names its chord attributes so too).
ATTRIBUTE_KINDS: tuple[AttributeKind, ...] = ("text", "wav", "joint_embed", "number", "embedding", "symbolic")


MAX_CHANNELS = 64  # more rows than this in a 2-D waveform means [T, C] was given
MAX_AMPLITUDE = 64.0  # float audio may pass 1.0 a little; 1e30 is not audio (as audio.io reads it)


def _check_waveform(wav: torch.Tensor, sample_rate: int, length: int | None, owner: str) -> int:
    """Validate a per-item waveform and return its valid length in samples."""
    if not isinstance(wav, torch.Tensor) or wav.dim() not in (1, 2) or not wav.is_floating_point():
        shape = tuple(wav.shape) if isinstance(wav, torch.Tensor) else type(wav).__name__
        raise ConditioningInputError(
            f"{owner}.wav must be a float tensor [C, T] or [T]; got {shape}"
        )
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ConditioningInputError(
            f"{owner}.sample_rate must be a positive int; got {sample_rate!r}"
        )
    if wav.dim() == 2 and wav.shape[0] > MAX_CHANNELS:
        raise ConditioningInputError(
            f"{owner}.wav has shape {tuple(wav.shape)}: {wav.shape[0]} channels? Waveforms are [C, T] "
            f"(at most {MAX_CHANNELS} channels); for a [T, C] array (as soundfile reads it) pass wav.T"
        )
    if wav.numel():
        peak = float(wav.detach().abs().amax())  # NaN when any sample is NaN
        if not peak <= MAX_AMPLITUDE:
            what = "not finite (NaN or infinity)" if not math.isfinite(peak) else f"up to {peak:.3g}"
            raise ConditioningInputError(
                f"{owner}.wav samples are {what}; expected finite samples within +-{MAX_AMPLITUDE:g} "
                "(audio in [-1, 1])"
            )
    n_samples = wav.shape[-1]
    if length is None:
        return n_samples
    if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= n_samples:
        raise ConditioningInputError(
            f"{owner}.length must be an int in [0, {n_samples}] (the samples in wav); got {length!r}"
        )
    return length


@dataclass(frozen=True)
class WavCondition:
    """A waveform for one item.

    wav: float [C, T] or [T]. sample_rate: Hz. length: valid samples (default: all of T).
    path: where it came from, if a file. seek_time: its start in that file, in seconds.
    """

    wav: torch.Tensor
    sample_rate: int
    length: int | None = None
    path: str | None = None
    seek_time: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "length", _check_waveform(self.wav, self.sample_rate, self.length, "WavCondition")
        )


@dataclass(frozen=True)
class JointEmbedCondition:
    """Audio and/or text for a joint text-audio embedding (CLAP) of one item.

    wav: float [C, T] or [T], or None. sample_rate: required with wav. text: str or None.
    Both None means no value (null condition).
    """

    wav: torch.Tensor | None = None
    sample_rate: int | None = None
    text: str | None = None
    length: int | None = None
    path: str | None = None
    seek_time: float | None = None

    def __post_init__(self) -> None:
        if self.wav is not None:
            checked = _check_waveform(
                self.wav, self.sample_rate, self.length, "JointEmbedCondition"  # type: ignore[arg-type]
            )
            object.__setattr__(self, "length", checked)
        if self.text is not None and not isinstance(self.text, str):
            raise ConditioningInputError(
                f"JointEmbedCondition.text must be a str or None; got {type(self.text).__name__}"
            )


SELF_WAV_KEY = "self_wav"  # the metadata key of an item's own audio (AudioItem.to_metadata)
# The fields of a SymbolicCondition, each read from the metadata key of the same name.
SYMBOLIC_FIELDS = ("bpm", "time_signature", "downbeat_offset", "beats", "downbeats", "chords", "key",
                   "seek_time", "duration")


@dataclass(frozen=True)
class SymbolicCondition:
    """Musical labels of one item, as given: the conditioners that read them (``beats``,
    ``chords``) check every field they use and report all problems at once.

    Times are seconds on the piece's clock (as corpus sidecars hold them); the clip starts at
    ``seek_time`` on that clock (0 when not given), so labels of a whole file serve any segment.

    bpm: beats per minute. time_signature: "4/4", "3/4", "6/8", ... downbeat_offset: time of the
    first downbeat of a tempo grid. beats, downbeats: beat and downbeat times. chords: a
    progression ("Am F C G", "Am@0 F@2", a list of symbols, or a sidecar's list of
    ``{"symbol", "start", "end"}``). key: "A minor", "Am", ... seek_time: the clip's start.
    duration: the piece's length (frames past its end are masked). wav: the clip's own audio, for
    conditioners that track beats when labels are missing.
    """

    bpm: Any = None
    time_signature: Any = None
    downbeat_offset: Any = None
    beats: Any = None
    downbeats: Any = None
    chords: Any = None
    key: Any = None
    seek_time: Any = None
    duration: Any = None
    wav: WavCondition | None = None

    @classmethod
    def from_metadata(cls, item: Mapping[str, Any], keys: Sequence[str]) -> SymbolicCondition:
        """The fields among ``keys`` that ``item`` holds (``self_wav`` becomes ``wav``)."""
        fields_ = {("wav" if key == SELF_WAV_KEY else key): item[key] for key in keys if key in item}
        wav = fields_.get("wav")
        if wav is not None and not isinstance(wav, WavCondition):
            fields_["wav"] = None  # a path or other value: only a WavCondition can be tracked
        return cls(**fields_)


AttributeValue = Union[str, int, float, WavCondition, JointEmbedCondition, SymbolicCondition, torch.Tensor, None]


@dataclass
class ConditioningAttributes:
    """Values for one item, by kind, then by condition name. A name absent from a dict is None.

    Attributes made by ``to_attributes`` (``ConditionProvider.to_attributes``) remember which
    ``(kind, name)`` values they checked; a provider does not check those again.
    Their copies from ``with_nulls`` (dropout, the unconditional branch) keep that mark. Modify
    a checked item's values only through ``to_attributes`` again.
    """

    text: dict[str, str | None] = field(default_factory=dict)
    wav: dict[str, WavCondition | None] = field(default_factory=dict)
    joint_embed: dict[str, JointEmbedCondition | None] = field(default_factory=dict)
    number: dict[str, int | float | None] = field(default_factory=dict)
    embedding: dict[str, torch.Tensor | None] = field(default_factory=dict)
    symbolic: dict[str, SymbolicCondition | None] = field(default_factory=dict)
    # (kind, name) pairs whose values are checked and canonical; set by to_attributes only.
    # A plain class attribute, not a field: not an argument, not compared, not shown.
    _checked = frozenset()  # type: frozenset[tuple[str, str]]

    def get(self, kind: AttributeKind, name: str) -> AttributeValue:
        """The value of ``name`` among the attributes of ``kind``, None when absent."""
        return getattr(self, kind).get(name)

    def with_nulls(self, names: Mapping[AttributeKind, Sequence[str]] | None = None) -> ConditioningAttributes:
        """A copy with the given ``{kind: [name, ...]}`` set to None (all of them by default).

        This is the only way cuecraft makes null attributes: training-time dropout and the
        unconditional branch of guidance both come through here.
        """
        copy = ConditioningAttributes(**{f.name: dict(getattr(self, f.name)) for f in fields(self)})
        if self._checked:
            copy._checked = self._checked  # None is always a valid value: still checked
        for kind in ATTRIBUTE_KINDS:
            values = getattr(copy, kind)
            chosen = list(values) if names is None else names.get(kind, ())
            for name in chosen:
                values[name] = None
        return copy


class SegmentWithAttributes(ABC):
    """The interface a dataset item implements to hand its metadata to cuecraft."""

    @abstractmethod
    def to_condition_attributes(self) -> ConditioningAttributes:
        """Turn this item's metadata into conditioning attributes."""


class Route(NamedTuple):
    """Where a conditioner takes its value from: its name, its kind and the metadata keys to try."""

    name: str
    kind: AttributeKind
    keys: tuple[str, ...]


EXPECTED = {
    "text": "a str or None",
    "number": "an int or float (finite) or None",
    "wav": "a WavCondition or None",
    "joint_embed": "a JointEmbedCondition, a str (text only) or None",
    "embedding": "a float tensor [T, D] or [D] (a pre-encoded condition) or None",
    "symbolic": f"a SymbolicCondition, a mapping of its fields ({', '.join(SYMBOLIC_FIELDS)}) or None",
}


def check_value(kind: AttributeKind, value: Any, where: str | Callable[[], str]) -> AttributeValue:
    """Validate one value for a conditioner of ``kind`` and return it in canonical form.

    Numbers come back as int or float (NumPy scalars and one-element tensors are accepted);
    a str given for a joint embedding becomes ``JointEmbedCondition(text=...)``.
    ``where`` names the item and key for the error message (a callable is called only when
    there is an error, so the common path formats no strings).
    """
    if value is None:
        return None
    value_type = type(value)
    if kind == "text" and value_type is str and value.isascii():
        return value
    if kind == "number" and (value_type is int or value_type is float and math.isfinite(value)):
        return value  # the common case, without the numeric-tower checks below
    if kind == "text" and isinstance(value, str):
        return _plain_text(value, where)
    if kind == "number":
        number = _as_number(value)
        if number is not None:
            if isinstance(number, float) and not math.isfinite(number):  # ints are always finite
                raise ConditioningInputError(f"{_place(where)}: expected a finite number; got {number!r}")
            return number
    if kind == "wav" and isinstance(value, WavCondition):
        return value
    if kind == "symbolic" and isinstance(value, SymbolicCondition):
        return value
    if kind == "symbolic" and isinstance(value, Mapping):
        unknown = [k for k in value if k not in (*SYMBOLIC_FIELDS, "wav")]
        if not unknown:
            return SymbolicCondition(**value)
        raise ConditioningInputError(f"{_place(where)}: unknown symbolic fields {short_repr(unknown)}; "
                                     f"fields: {', '.join(SYMBOLIC_FIELDS)}, wav")
    if kind == "embedding" and isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() in (1, 2):
        return value if value.dim() == 2 else value.unsqueeze(0)
    if kind == "joint_embed":
        if isinstance(value, JointEmbedCondition):
            if value.text is None or value.text.__class__ is str and value.text.isascii():
                return value
            return replace(value, text=_plain_text(value.text, lambda: f"{_place(where)}, text"))
        if isinstance(value, str):
            return JointEmbedCondition(text=_plain_text(value, where))
    raise ConditioningInputError(
        f"{_place(where)}: expected {EXPECTED[kind]} (kind '{kind}'); got {_describe(value)}"
    )


_FAST_TYPES: dict[str, frozenset[type]] = {
    "text": frozenset((str, type(None))),
    "number": frozenset((int, float, type(None))),
    "wav": frozenset((WavCondition, type(None))),
    "joint_embed": frozenset((JointEmbedCondition, type(None))),
    "symbolic": frozenset((SymbolicCondition, type(None))),
}


def check_column(kind: AttributeKind, values: Sequence[Any], where: Callable[[int], str]) -> list[AttributeValue]:
    """``check_value`` over one condition's values for a batch, in canonical form: a new list.

    A column of values already canonical (str, int, finite float, WavCondition, ... or None)
    is checked by type in bulk; any other column value by value. ``where(i)`` names item i
    for the error message.
    """
    types = set(map(type, values))
    fast = _FAST_TYPES.get(kind)
    if fast is not None and types <= fast and _plain_ascii(kind, values):
        if float not in types:
            return list(values)
        if all(map(math.isfinite, values if len(types) == 1 else (v for v in values if type(v) is float))):
            return list(values)
    return [check_value(kind, value, lambda: where(i)) for i, value in enumerate(values)]  # noqa: B023


def _plain_ascii(kind: str, values: Sequence[Any]) -> bool:
    """Whether the text in a column of canonical types is plain ASCII ``str`` (then no value needs
    ``_plain_text``); other text is checked value by value (a lone surrogate cannot be encoded)."""
    if kind == "text":
        return all(v is None or v.isascii() for v in values)
    if kind == "joint_embed":
        return all(v is None or v.text is None or v.text.__class__ is str and v.text.isascii() for v in values)
    return True


def _place(where: str | Callable[[], str]) -> str:
    return where() if callable(where) else where


def _plain_text(value: str, where: str | Callable[[], str]) -> str:
    """``value`` as a plain ``str`` (a subclass's own methods never reach a tokenizer) that
    encodes as UTF-8 (a lone surrogate would make every tokenizer raise its own error)."""
    text = str.__getitem__(value, slice(None))  # a plain str, without calling the subclass
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ConditioningInputError(
                f"{_place(where)}: expected text that is valid Unicode; character {error.start} is a "
                f"lone surrogate ({_describe(text[error.start])}) in {_describe(text)}"
            ) from None
    return text


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype == torch.bool:
            return None
        value = value.item()
    try:  # a user's numeric type may overflow or raise anything converting (Fraction(10**400))
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
    except Exception:  # noqa: BLE001 - reported as a wrong value by the caller
        return None
    return None


def _describe(value: Any) -> str:
    """``type repr`` of a value, bounded, and safe when its ``repr`` raises."""
    return f"{type(value).__name__} {short_repr(value)}"


def symbolic_value(item: Mapping[str, Any], route: Route, index: int) -> SymbolicCondition:
    """The SymbolicCondition a metadata dict holds for a symbolic route: its fields among the
    route's keys. A dict holding none of them is an error naming them (None values are fine)."""
    if not any(key in item for key in route.keys):
        raise ConditioningInputError(
            f"item {index}: missing keys for condition '{route.name}': it reads "
            f"{', '.join(repr(k) for k in route.keys)} (any of them; None for no value); keys given: {short_keys(item)}")
    return SymbolicCondition.from_metadata(item, route.keys)


def routes_checked(routes: Sequence[Route]) -> frozenset[tuple[str, str]]:
    """The ``(kind, name)`` pairs that ``to_attributes`` checks for these routes."""
    return frozenset((route.kind, route.name) for route in routes)


def to_attributes(item: Any, routes: Sequence[Route], index: int,
                  checked: frozenset[tuple[str, str]] | None = None) -> ConditioningAttributes:
    """Turn one batch item into checked ``ConditioningAttributes`` for the given routes.

    Only the values the routes consume are checked and kept, so a dataset may carry extra
    metadata. A plain dict must hold a key for every route (None is allowed as a value).
    An item that ``to_attributes`` already checked for these routes comes back as it is
    (``checked``: ``routes_checked(routes)``, passed in by callers that convert many items).
    """
    if checked is None:
        checked = routes_checked(routes)
    if item.__class__ is ConditioningAttributes and checked <= item._checked:
        return item
    result = ConditioningAttributes()
    result._checked = checked
    if item.__class__ is dict or isinstance(item, Mapping):
        for route in routes:
            keys = route.keys
            if route.kind == "symbolic":
                result.symbolic[route.name] = symbolic_value(item, route, index)
                continue
            key = keys[0] if keys[0] in item else next((k for k in keys[1:] if k in item), None)
            if key is None:
                tried = " or ".join(repr(k) for k in keys)
                raise ConditioningInputError(
                    f"item {index}: missing key {tried} for condition '{route.name}' "
                    f"(expected {EXPECTED[route.kind]}); keys given: {short_keys(item)}"
                )
            getattr(result, route.kind)[route.name] = check_value(
                route.kind, item[key], lambda: f"item {index}, key '{key}'"  # noqa: B023 (called at once)
            )
        return result
    if isinstance(item, SegmentWithAttributes):
        item = item.to_condition_attributes()
    if isinstance(item, ConditioningAttributes):
        for route in routes:
            getattr(result, route.kind)[route.name] = check_value(
                route.kind, item.get(route.kind, route.name),
                lambda: f"item {index}, {route.kind} attribute '{route.name}'",  # noqa: B023
            )
        return result
    raise ConditioningInputError(
        f"item {index}: expected a metadata dict, ConditioningAttributes or SegmentWithAttributes; "
        f"got {type(item).__name__}"
    )
