"""The time-axis controls of ``GenerationPipeline``: tempo, metre, first downbeat, chords and key.

A model whose conditioning has a ``beats`` or a ``chords`` conditioner (found by the conditioner
type in its config, whatever the ids) gets these controls. Both conditioners read the metadata
fields by name, so a control's ``conditioner`` is that field (control: kind, given by):

- ``bpm``: number, beats or chords: the conditioners' ``[min_bpm, max_bpm]``, narrowed to the
  range of a ``number`` conditioner named ``bpm`` when the model has one too.
- ``time_signature``: metre, beats or chords: "N/D", such as "4/4", "3/4", "6/8" (none: the
  conditioners' config default).
- ``downbeat_offset``: number, beats or chords: seconds in [0, the conditioners' duration], where
  the first bar starts.
- ``chords``: chords, a chords conditioner: "Am F C G" (one per bar at the bpm and metre, repeated) or
  "Am@0 F@2" (seconds).
- ``key``: key, a chords conditioner when the model has no ``key`` list: any key
  ``cuecraft.audio.key.parse_key`` reads (its profile on every frame when no chords are given).

A control a model already has under that name (a ``list`` conditioner named ``key``) is kept.

Checks (``check_time_value`` per value, then ``check_together`` across values) add one line per
problem to the pipeline's list, so a request's every problem is reported at once: a metre such as
"5/0", a chord symbol such as "Xq7", timed chords that go back, one-chord-per-bar chords without a
bpm, a metre or downbeat offset without a bpm (they place beats on a tempo grid). The chord
symbols and times are checked by the ``chords`` conditioner itself (``plan_item``), so the
pipeline accepts exactly what the model reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cuecraft._text import short_repr

TIME_TYPES = ("beats", "chords")  # conditioner types that give the time-axis controls
TIME_FIELDS = ("time_signature", "downbeat_offset", "chords")  # GenerationRequest fields beside bpm and key
TIME_KINDS = ("metre", "chords", "key")  # Control kinds checked here (bpm, downbeat_offset are numbers)
GRID_FIELDS = ("time_signature", "downbeat_offset")  # meaningless without a bpm


def time_conditioners(stack: Any) -> dict[str, Any]:
    """``{id: conditioner}`` of the model's ``beats`` and ``chords`` conditioners, in config order."""
    return {name: c for name, c in stack.provider.conditioners.items() if stack.types[name] in TIME_TYPES}


def time_controls(stack: Any, controls: Mapping[str, Any]) -> dict[str, Any]:
    """The controls the ``beats`` / ``chords`` conditioners add to ``controls`` (the model's other
    controls): ``{name: Control}``, a narrowed ``bpm`` included; empty when the model has neither."""
    from cuecraft.pipelines.generate import Control

    found = time_conditioners(stack)
    if not found:
        return {}
    low = max(c.min_bpm for c in found.values())
    high = min(c.max_bpm for c in found.values())
    added: dict[str, Control] = {}
    bpm = controls.get("bpm")
    if bpm is None:
        added["bpm"] = Control("bpm", "number", "bpm", range=(low, high))
    elif bpm.kind == "number" and bpm.range is not None:
        added["bpm"] = replace(bpm, range=(max(bpm.range[0], low), min(bpm.range[1], high)))
    added["time_signature"] = Control("time_signature", "metre", "time_signature")
    added["downbeat_offset"] = Control("downbeat_offset", "number", "downbeat_offset",
                                       range=(0.0, min(c.duration for c in found.values())))
    if any(stack.types[name] == "chords" for name in found):
        added["chords"] = Control("chords", "chords", "chords")
        added["key"] = Control("key", "key", "key")
    return {name: control for name, control in added.items() if name == "bpm" or name not in controls}


def check_time_value(control: Any, value: Any, problems: list[str]) -> Any:
    """``value`` of a ``metre``, ``chords`` or ``key`` control, normalised ("3/4", the progression
    with single spaces kept as given, the canonical key), or None after adding a problem line
    (None without one for blank chords: no chords)."""
    from cuecraft.conditioners.timeline import METRE_ALLOWED, parse_time_signature

    name = control.name
    if control.kind == "metre":
        try:
            return str(parse_time_signature(value))
        except Exception:  # ConditioningInputError: one line in the pipeline's report
            problems.append(f"{name}: got {short_repr(value)}; allowed: {METRE_ALLOWED}")
            return None
    if control.kind == "chords":
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            value = " ".join(value)
        if isinstance(value, str):
            return value.strip() or None  # the symbols are checked with the bpm and metre: check_together
        problems.append(f"{name}: got {type(value).__name__} {short_repr(value)}; allowed: text, one chord per bar "
                        "(\"Am F C G\") or timed in seconds (\"Am@0 F@2 C@4\"), or a list of such symbols")
        return None
    if isinstance(value, str):  # key: already read by parse_key in the pipeline
        return value
    problems.append(f"{name}: got {type(value).__name__} {short_repr(value)}; allowed: a key such as \"A minor\", "
                    "\"Am\", \"Bb major\"")
    return None


def check_together(stack: Any, request: Any, metadata: Mapping[str, Any], problems: list[str]) -> None:
    """Add the problems of the time-axis values taken together: a metre or downbeat offset without a
    bpm, and whatever the ``beats`` / ``chords`` conditioners reject in ``metadata`` (the checked
    values; a given value that failed its own check stands in as valid, so that it is not reported
    twice and the other fields are still checked)."""
    from cuecraft.attributes import SymbolicCondition
    from cuecraft.conditioners.timeline import Problems

    found = time_conditioners(stack)
    if not found:
        return
    if request.bpm is None:
        for name in GRID_FIELDS:
            if metadata.get(name) is not None:  # given, and valid on its own
                problems.append(f"{name}: got {short_repr(getattr(request, name))} without a bpm; it places beats "
                                "and bars on a tempo grid, so give bpm too (or leave it out)")
    for conditioner in found.values():
        values = {key: metadata.get(key) for key in conditioner.fields}
        if request.bpm is not None and values.get("bpm") is None and "bpm" in values:
            values["bpm"] = conditioner.min_bpm  # the bpm failed its check: a valid stand-in
        local = Problems()
        conditioner.plan_item(0, SymbolicCondition(**values), local)
        for line in local:
            text = line.removeprefix("item 0, ")
            if text not in problems:
                problems.append(text)

