"""``beats``: tempo and metre, or beat and downbeat times, as frame-aligned curves and phases.

Notation: B batch, T frames, N beats of an item. Output [B, T, 6] (raw) or [B, T, output_dim].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from cuecraft.attributes import SELF_WAV_KEY, SymbolicCondition
from cuecraft.audio.beats import TRACKERS, track_beats
from cuecraft.cache import DEFAULT_MEMORY_BYTES, EmbeddingCache
from cuecraft.conditioners.base import check_real
from cuecraft.conditioners.registry import register_conditioner
from cuecraft.conditioners.timeline import Clip, FrameConditioner, Metre, Problems, padded_search
from cuecraft.errors import ConfigError

BEAT_CHANNELS = ("beat", "downbeat", "beat_sin", "beat_cos", "bar_sin", "bar_cos")


@dataclass(frozen=True)
class BeatPlan:
    """One item's beats and downbeats on the piece's clock, extended to bracket every frame:
    float64 [N] and [M], increasing."""

    clip: Clip
    beats: torch.Tensor
    downbeats: torch.Tensor


def extend(times: Sequence[float], start: float, end: float, head: float, tail: float) -> torch.Tensor:
    """``times`` cut to the span [start, end] (with one time beyond each side) and continued
    before its first time every ``head`` seconds and after its last every ``tail`` seconds, so
    that a time below ``start`` and one above ``end`` are in it: float64 [N]."""
    x = torch.tensor(times, dtype=torch.float64)
    low = max(int(torch.searchsorted(x, torch.tensor(start, dtype=torch.float64))) - 1, 0)
    high = min(int(torch.searchsorted(x, torch.tensor(end, dtype=torch.float64), right=True)) + 1, len(x))
    x = x[low:high]
    before = max(0, math.ceil((float(x[0]) - start) / head)) + 1
    after = max(0, math.ceil((end - float(x[-1])) / tail)) + 1
    return torch.cat((x[0] - head * torch.arange(before, 0, -1, dtype=torch.float64), x,
                      x[-1] + tail * torch.arange(1, after + 1, dtype=torch.float64)))


def grid(offset: float, period: float, start: float, end: float) -> torch.Tensor:
    """``offset + k * period`` for every k that brackets [start, end]: float64 [N]."""
    first, last = math.floor((start - offset) / period) - 1, math.ceil((end - offset) / period) + 1
    return offset + period * torch.arange(first, last + 1, dtype=torch.float64)


@register_conditioner("beats")
class BeatsConditioner(FrameConditioner):
    """Rhythm as frame-aligned channels (MusiConGen's beat curve, Music ControlNet's activations,
    and the positions within beat and bar).

    Value (metadata fields, whatever the condition's id; times on the piece's clock, see
    ``cuecraft.conditioners.timeline``):
    - ``beats`` and ``downbeats``: beat and downbeat times (the corpus sidecars' labels). Before
      the first and after the last, the grid continues at the first and last interval. Without
      ``downbeats`` every ``beats_per_bar``-th beat from the first is a downbeat. One beat alone
      needs a ``bpm`` for its period.
    - else ``bpm`` and ``time_signature`` (default: the config's), with ``downbeat_offset`` (the
      time of a downbeat, default 0): beats every 60 / bpm s, a downbeat every bar. In 6/8 (any
      compound metre) the beat is the dotted quarter: 2 beats per bar, and bpm counts them, as
      the corpus does.
    - else, with ``track``, beats tracked from the item's audio (``self_wav``, as
      ``AudioItem.to_metadata`` gives it) with ``cuecraft.audio.beats.track_beats``.
    - else the null condition.

    Channels (float32 [B, T, 6]): 0 beat activation (each beat a Gaussian of ``beat_width``
    frames' standard deviation, the maximum where they overlap: 1 on a beat, ~0 between), 1
    downbeat activation (the same at downbeats), 2-3 sin and cos of 2π x the beat phase (0 on a
    beat, rising linearly to 1 at the next), 4-5 sin and cos of 2π x the bar phase (the same
    between downbeats). Mask: the frames inside the clip. A tempo grid and the beat list of a
    piece at that tempo that starts on a downbeat give the same tensor.

    Args:
        output_dim, frame_rate, duration, time_signature, min_bpm, max_bpm, project_out: see
            FrameConditioner (defaults: 6 raw channels, 50 frames per second, 30 s, "4/4",
            30-300 bpm, no projection).
        beat_width: the Gaussian's standard deviation, in frames (> 0).
        track: track beats from the audio of items without labels (reads ``self_wav``).
        tracker: ``librosa`` (extra ``audio``) or ``madmom`` (extra ``beats``).
        cache_path: a folder for an EmbeddingCache of tracked beats (None: no cache).
    """

    channels = len(BEAT_CHANNELS)
    fields = ("bpm", "time_signature", "downbeat_offset", "beats", "downbeats", "seek_time", "duration")

    def __init__(self, output_dim: int | None = None, frame_rate: float = 50.0, duration: float = 30.0,
                 time_signature: str = "4/4", min_bpm: float = 30.0, max_bpm: float = 300.0,
                 beat_width: float = 1.0, track: bool = False, tracker: str = "librosa",
                 cache_path: str | None = None, project_out: bool = False):
        problems = check_real("beat_width", beat_width)
        if not problems and not 0 < beat_width <= 100:
            problems.append(f"beat_width: must be in (0, 100] frames; got {beat_width}")
        if not isinstance(track, bool):
            problems.append(f"track: expected true or false; got {track!r}")
        if tracker not in TRACKERS:
            problems.append(f"tracker: expected one of {', '.join(TRACKERS)}; got {tracker!r}")
        cache = None
        if cache_path is not None:
            try:
                cache = EmbeddingCache(cache_path, "beats", {}, max_memory_bytes=DEFAULT_MEMORY_BYTES)
            except ConfigError as error:
                problems += error.problems
        try:
            super().__init__(output_dim, frame_rate, duration, time_signature, min_bpm, max_bpm, project_out)
        except ConfigError as error:
            problems = error.problems + problems
        if problems:
            raise ConfigError(problems)
        self.beat_width = float(beat_width)
        self.track = track
        self.tracker = tracker
        self.cache = cache

    @property
    def metadata_keys(self) -> tuple[str, ...]:
        return self.fields + ((SELF_WAV_KEY,) if self.track else ())

    def plan_item(self, index: int, value: SymbolicCondition, problems: Problems) -> BeatPlan | None:
        before = len(problems)
        clip = self.read_clip(index, value, problems)
        bpm = self.read_bpm(index, value.bpm, problems)
        metre = self.read_metre(index, value.time_signature, problems)
        offset = self.read_seconds(index, "downbeat_offset", value.downbeat_offset, problems) or 0.0
        beats = self.read_times(index, "beats", value.beats, problems)
        downbeats = self.read_times(index, "downbeats", value.downbeats, problems)
        if value.downbeats is not None and value.beats is None:
            problems.add(index, "beats", "got None with downbeats; allowed: the beat times that go with the "
                                         "downbeats")
        if beats is not None and len(beats) == 1 and bpm is None:
            problems.add(index, "beats", "got one beat time, which gives no period; allowed: two or more beat "
                                         "times, or one with a bpm")
        if len(problems) > before or clip is None or metre is None:
            return None
        if beats:
            return self._labelled(clip, metre, beats, downbeats, bpm)
        if bpm is not None:
            start, end = clip.start, clip.start + self.frames / self.frame_rate
            period = 60.0 / bpm
            return BeatPlan(clip, grid(offset, period, start, end),
                            grid(offset, period * metre.beats_per_bar, start, end))
        if self.track and value.wav is not None and value.wav.length:
            return self._tracked(clip, metre, value)
        return None

    def _labelled(self, clip: Clip, metre: Metre, beats: list[float], downbeats: list[float] | None,
                  bpm: float | None) -> BeatPlan:
        start, end = clip.start, clip.start + self.frames / self.frame_rate
        head = beats[1] - beats[0] if len(beats) > 1 else 60.0 / bpm  # type: ignore[operator]
        tail = beats[-1] - beats[-2] if len(beats) > 1 else head
        downbeats = downbeats or beats[::metre.beats_per_bar]
        bar_head = downbeats[1] - downbeats[0] if len(downbeats) > 1 else head * metre.beats_per_bar
        bar_tail = downbeats[-1] - downbeats[-2] if len(downbeats) > 1 else tail * metre.beats_per_bar
        return BeatPlan(clip, extend(beats, start, end, head, tail), extend(downbeats, start, end, bar_head, bar_tail))

    def _tracked(self, clip: Clip, metre: Metre, value: SymbolicCondition) -> BeatPlan | None:
        wav = value.wav
        assert wav is not None and wav.length is not None
        info = track_beats(wav.wav[..., : wav.length], wav.sample_rate, beats_per_bar=metre.beats_per_bar,
                           tracker=self.tracker, cache=self.cache)  # type: ignore[arg-type]
        if len(info.beats) < 2:
            return None  # silence or too short: nothing to follow
        clip = Clip(clip.start, min(clip.valid_seconds, wav.length / wav.sample_rate))
        beats = [clip.start + t for t in info.beats]  # tracked times are from the clip's start
        downbeats = [clip.start + t for t in info.downbeats]
        return self._labelled(clip, metre, beats, downbeats, None)

    def render(self, plans: Sequence[BeatPlan]) -> torch.Tensor:
        times = self.frame_times([plan.clip.start for plan in plans])  # [B', T]
        beat_before, beat_after = padded_search([plan.beats for plan in plans], times)
        bar_before, bar_after = padded_search([plan.downbeats for plan in plans], times)
        sigma = self.beat_width / self.frame_rate  # seconds
        out = torch.empty(*times.shape, self.channels)  # [B', T, 6]
        # times in float64 (a piece's clock); distances and phases are small: float32 from there
        for channel, (before, after) in enumerate(((beat_before, beat_after), (bar_before, bar_after))):
            nearest = (torch.minimum(times - before, after - times) / sigma).float()
            out[..., channel] = torch.exp(-0.5 * nearest.square())
            phase = ((times - before) / (after - before)).float().mul_(2 * math.pi)
            out[..., 2 + 2 * channel] = phase.sin()
            out[..., 3 + 2 * channel] = phase.cos()
        return out

    def extra_repr(self) -> str:
        return f"beat_width={self.beat_width:g}, track={self.track}, " + super().extra_repr()
