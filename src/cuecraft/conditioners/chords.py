"""``chords``: a chord progression (or a key) as per-frame pitch classes and root.

Notation: B batch, T frames, S chord segments of an item. Output [B, T, 24] (raw) or
[B, T, output_dim].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import torch

from cuecraft._text import short_repr
from cuecraft.attributes import AttributeValue, SymbolicCondition
from cuecraft.audio.chords import ALLOWED as CHORD_ALLOWED, ChordSymbol, parse_chord
from cuecraft.audio.key import KK_MAJOR, KK_MINOR, key_parts
from cuecraft.conditioners.registry import register_conditioner
from cuecraft.conditioners.timeline import MIN_GAP, Clip, FrameConditioner, FrameTokens, Metre, Problems, is_number
from cuecraft.errors import ConditioningInputError, ConfigError

CHORDS_ALLOWED = ('a progression, one chord per bar ("Am F C G"), timed in seconds ("Am@0 F@2 C@4"), a list of '
                  'symbols, or a list of {"symbol", "start", "end"} (the corpus sidecars)')


@dataclass(frozen=True)
class ChordPlan:
    """One item's chord segments on the piece's clock: float64 starts and ends [S] (a segment
    holds [start, end)), and each segment's 24 channels, float32 [S, 24]."""

    clip: Clip
    starts: torch.Tensor
    ends: torch.Tensor
    rows: torch.Tensor


@lru_cache(maxsize=1024)
def chord_row(chord: ChordSymbol) -> torch.Tensor:
    """float32 [24]: the chord's pitch classes (0-11, C first), then its root one-hot (12-23).
    Cached: callers must not modify it."""
    row = torch.zeros(24)
    if chord.root is not None:
        row[list(chord.pitch_classes)] = 1.0
        row[12 + chord.root] = 1.0
    return row


def key_row(key: str) -> torch.Tensor:
    """float32 [24]: the key's Krumhansl-Kessler profile rotated onto its tonic and scaled to
    [0, 1] (the least-rated pitch class 0, the tonic 1), then the tonic one-hot as the root."""
    tonic, mode = key_parts(key)
    profile = torch.tensor(KK_MAJOR if mode == "major" else KK_MINOR, dtype=torch.float64)
    profile = (profile - profile.min()) / (profile.max() - profile.min())
    row = torch.zeros(24)
    row[:12] = torch.roll(profile, tonic).float()
    row[12 + tonic] = 1.0
    return row


@register_conditioner("chords")
class ChordsConditioner(FrameConditioner):
    """Harmony as frame-aligned channels (MusiConGen's per-frame chroma, JASCO's chords).

    Value (metadata fields, whatever the condition's id; times on the piece's clock, see
    ``cuecraft.conditioners.timeline``):
    - ``chords`` as text, one chord per bar at the item's ``bpm`` and ``time_signature`` (the
      config's when absent), the first bar at ``downbeat_offset`` (default 0): "Am F C G"
      (tokens split at spaces, commas and ``|``). The progression repeats until the clip ends;
      frames before the first bar have no chord. A list of symbols reads the same.
    - ``chords`` timed: "Am@0 F@2 C@4 G@6" (seconds, increasing); each chord lasts until the
      next, the last until the clip ends; before the first, no chord.
    - ``chords`` as the corpus sidecars write them: ``[{"symbol": "Am", "start": 0.0, "end":
      2.0}, ...]`` (starts increasing; ``end`` optional: until the next start); no chord between
      a chord's end and the next start.
    - else ``key`` alone ("A minor", "Am", any spelling ``cuecraft.audio.key.parse_key`` reads):
      the key's profile on every frame.
    - else the null condition.
    Symbols: ``cuecraft.audio.chords.parse_chord`` (major, minor, 7, maj7, m7, dim, dim7, m7b5,
    aug, sus2, sus4, 6, m6, 9, ... with sharps, flats, slash basses; ``N`` for no chord).

    Channels (float32 [B, T, 24]): 0-11 the chord's pitch classes (1 on each chord tone, C first),
    12-23 its root one-hot. No chord (``N``, or frames outside every chord): all 24 are 0, and
    the frame stays unmasked (silence of harmony is information). A key alone: 0-11 its
    Krumhansl-Kessler profile scaled to [0, 1] (1 on the tonic, the maximum), 12-23 the tonic
    one-hot. Mask: the frames inside the clip.

    Args: output_dim, frame_rate, duration, time_signature, min_bpm, max_bpm, project_out: see
    FrameConditioner (defaults: 24 raw channels, 50 frames per second, 30 s, "4/4", 30-300 bpm,
    no projection). progression_dropout: in training only (``tokenize(train=True)``), the
    probability that an item holding both ``chords`` and ``key`` is read from its key alone, so a
    model trained on labelled progressions also learns the key-only input that users give most
    (drawn per item from the caller's generator; 0: never).
    """

    channels = 24
    fields = ("chords", "key", "bpm", "time_signature", "downbeat_offset", "seek_time", "duration")

    def __init__(self, output_dim: int | None = None, frame_rate: float = 50.0, duration: float = 30.0,
                 time_signature: str = "4/4", min_bpm: float = 30.0, max_bpm: float = 300.0,
                 project_out: bool = False, progression_dropout: float = 0.0):
        if isinstance(progression_dropout, bool) or not isinstance(progression_dropout, (int, float)) \
                or not 0.0 <= progression_dropout <= 1.0:
            raise ConfigError(f"progression_dropout: expected a probability in [0, 1]; got {progression_dropout!r}")
        super().__init__(output_dim, frame_rate, duration, time_signature, min_bpm, max_bpm, project_out)
        self.progression_dropout = float(progression_dropout)

    def tokenize_checked(self, values: Sequence[AttributeValue], *, train: bool = False,
                         generator: torch.Generator | None = None) -> FrameTokens:
        if train and self.progression_dropout > 0.0:
            draws = torch.rand(len(values), generator=generator).tolist()
            values = [replace(v, chords=None) if (isinstance(v, SymbolicCondition) and v.chords is not None
                                                  and v.key is not None and draw < self.progression_dropout)
                      else v for v, draw in zip(values, draws)]
        return super().tokenize_checked(values, train=train, generator=generator)

    def plan_item(self, index: int, value: SymbolicCondition, problems: Problems) -> ChordPlan | None:
        before = len(problems)
        clip = self.read_clip(index, value, problems)
        bpm = self.read_bpm(index, value.bpm, problems)
        metre = self.read_metre(index, value.time_signature, problems)
        offset = self.read_seconds(index, "downbeat_offset", value.downbeat_offset, problems) or 0.0
        chords = value.chords
        if isinstance(chords, str) and not chords.strip() or isinstance(chords, (list, tuple)) and not chords:
            chords = None  # an empty progression: no chords
        segments: list[tuple[float, float, ChordSymbol]] | None = None
        row: torch.Tensor | None = None  # a key alone
        if chords is not None:
            segments = self._segments(index, chords, bpm, value.bpm is None, metre, offset, clip, problems)
        elif value.key is not None:
            try:
                row = key_row(value.key)
            except ConditioningInputError:
                problems.add(index, "key", f"got {short_repr(value.key)}; allowed: a key such as \"A minor\", "
                                           "\"Am\", \"Bb major\" (a tonic A-G, # or b, then major or minor)")
        if len(problems) > before or clip is None or (chords is None and value.key is None):
            return None
        if segments is None:  # a key alone: one segment over every frame
            assert row is not None
            return ChordPlan(clip, torch.tensor([-math.inf], dtype=torch.float64),
                             torch.tensor([math.inf], dtype=torch.float64), row.unsqueeze(0))
        distinct: dict[int, int] = {}  # parsed chords are shared objects: one row per distinct chord
        order = [distinct.setdefault(id(chord), len(distinct)) for _, _, chord in segments]
        chords_seen = {id(chord): chord for _, _, chord in segments}
        table = torch.stack([chord_row(chords_seen[key]) for key in distinct]) if segments else torch.zeros(0, 24)
        rows = table[torch.tensor(order, dtype=torch.long)]
        return ChordPlan(clip, torch.tensor([s for s, _, _ in segments], dtype=torch.float64),
                         torch.tensor([e for _, e, _ in segments], dtype=torch.float64), rows)

    def _segments(self, index: int, chords: Any, bpm: float | None, bpm_absent: bool, metre: Metre | None,
                  offset: float, clip: Clip | None, problems: Problems) -> list[tuple[float, float, ChordSymbol]] | None:
        """(start, end, chord) per chord segment, or None after adding the problems."""
        if isinstance(chords, str):
            tokens: list[Any] = chords.replace(",", " ").replace("|", " ").split()
        elif isinstance(chords, (list, tuple)):
            tokens = list(chords)
        else:
            problems.add(index, "chords", f"got {type(chords).__name__} {short_repr(chords)}; allowed: {CHORDS_ALLOWED}")
            return None
        if all(isinstance(t, Mapping) for t in tokens):
            return self._sidecar(index, tokens, problems)
        if not all(isinstance(t, str) for t in tokens):
            problems.add(index, "chords", f"got {short_repr(chords)} (mixed entries); allowed: {CHORDS_ALLOWED}")
            return None
        timed = ["@" in t for t in tokens]
        symbols = [t.split("@", 1)[0] for t in tokens]
        parsed = []
        for symbol in symbols:
            try:
                parsed.append(parse_chord(symbol))
            except ConditioningInputError:
                problems.add(index, "chords", f"got the chord {short_repr(symbol)}, which cannot be read; "
                                              f"allowed: {CHORD_ALLOWED}")
        if any(timed) and not all(timed):
            problems.add(index, "chords", f"got {short_repr(chords)}, some chords timed and some not; allowed: "
                                          "every chord timed (\"Am@0 F@2\") or none (\"Am F\", one per bar)")
            return None
        if len(parsed) < len(symbols):
            return None
        if all(timed):
            times = self._times(index, [t.split("@", 1)[1] for t in tokens], problems)
            if times is None:
                return None
            ends = [*times[1:], math.inf]
            return [(start, end, chord) for start, end, chord in zip(times, ends, parsed)]
        if bpm is None or metre is None or clip is None:
            if bpm_absent:
                problems.add(index, "chords", f"got {short_repr(chords)}, one chord per bar, but no bpm; allowed: "
                                              "a bpm with it, or timed chords (\"Am@0 F@2\")")
            return None
        bar = 60.0 / bpm * metre.beats_per_bar
        start, end = clip.start, clip.start + self.frames / self.frame_rate
        first, last = max(0, math.floor((start - offset) / bar)), math.ceil((end - offset) / bar)
        return [(offset + m * bar, offset + (m + 1) * bar, parsed[m % len(parsed)]) for m in range(first, last + 1)]

    @staticmethod
    def _times(index: int, texts: Sequence[str], problems: Problems) -> list[float] | None:
        times = []
        for text in texts:
            try:
                time = float(text)
            except ValueError:
                time = math.nan
            if not math.isfinite(time) or time < 0:
                problems.add(index, "chords", f"got the time {short_repr(text)}; allowed: seconds >= 0 after '@' "
                                              "(\"Am@0 F@2.5\")")
                return None
            if times and time - times[-1] < MIN_GAP:
                problems.add(index, "chords", f"got the time {time:g} after {times[-1]:g}; allowed: times that "
                                              "increase from chord to chord")
                return None
            times.append(time)
        return times

    @staticmethod
    def _sidecar(index: int, entries: Sequence[Mapping[str, Any]], problems: Problems
                 ) -> list[tuple[float, float, ChordSymbol]] | None:
        segments: list[tuple[float, float, ChordSymbol]] = []
        for k, entry in enumerate(entries):
            start, end = entry.get("start"), entry.get("end")
            symbol = entry.get("symbol")
            try:
                chord = parse_chord(symbol)  # type: ignore[arg-type]
            except ConditioningInputError:
                problems.add(index, f"chords[{k}].symbol", f"got {short_repr(symbol)}, which cannot be read; "
                                                           f"allowed: {CHORD_ALLOWED}")
                return None
            if not is_number(start) or start < 0 or (segments and start - segments[-1][0] < MIN_GAP):
                problems.add(index, f"chords[{k}].start", f"got {short_repr(start)}; allowed: seconds >= 0, "
                                                          "increasing from chord to chord")
                return None
            if end is not None and (not is_number(end) or end <= start):
                problems.add(index, f"chords[{k}].end", f"got {short_repr(end)}; allowed: seconds after its start "
                                                        f"({start:g}), or none (until the next chord)")
                return None
            segments.append((float(start), math.inf if end is None else float(end), chord))
        # a chord without an end lasts until the next one starts
        return [(s, min(e, segments[k + 1][0]) if k + 1 < len(segments) and math.isinf(e) else e, c)
                for k, (s, e, c) in enumerate(segments)]

    def render(self, plans: Sequence[ChordPlan]) -> torch.Tensor:
        times = self.frame_times([plan.clip.start for plan in plans])  # [B', T]
        width = 1 + max(len(plan.starts) for plan in plans)  # the last row of every item stays zero: no chord
        starts = torch.full((len(plans), width), math.inf, dtype=torch.float64)  # [B', S]; inf pads sort last
        ends = torch.full((len(plans), width), -math.inf, dtype=torch.float64)
        rows = torch.zeros(len(plans), width, self.channels)  # [B', S, 24]
        for b, plan in enumerate(plans):
            count = len(plan.starts)
            starts[b, :count], ends[b, :count], rows[b, :count] = plan.starts, plan.ends, plan.rows
        segment = torch.searchsorted(starts, times, right=True) - 1  # [B', T]: the last segment begun
        inside = (segment >= 0) & (times < ends.gather(1, segment.clamp(min=0)))
        segment = torch.where(inside, segment, width - 1)  # frames in no chord read the zero row
        return rows.view(-1, self.channels)[segment + width * torch.arange(len(plans)).unsqueeze(1)]  # [B', T, 24]
