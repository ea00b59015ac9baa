"""A recording to continue or to inpaint: what a person gives, its checks, its latent canvas, its output audio.

Notation: D latent channels, N canvas frames, T samples; ``hop`` samples per frame, frame i
starting at sample ``i * hop`` (``cuecraft.models.representation``).

``Recording.continued(audio)`` continues a recording; ``Recording.inpainted(audio, region)``
regenerates the span ``region = (start, end)`` seconds of it (or ``"start:end"``). ``audio`` is a
path or ``(waveform [T] or [C, T], sample_rate)``; it is down-mixed to mono and resampled to the
model's rate, then encoded through the model's representation.

Output. A continuation holds the recording followed by the new seconds (its length: the
recording's plus ``seconds``); an inpainting has the recording's length, its samples outside the
region untouched. Where the original and the decoded audio meet, a linear crossfade of
``CROSSFADE_SECONDS`` (shorter where less decoded audio lies outside the region) runs on the
original's side: the regenerated span itself is decoded audio throughout.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from cuecraft._numbers import is_finite_number

MODES = ("continue", "inpaint")
CROSSFADE_SECONDS = 0.1  # original -> decoded audio at a join (decoded: Griffin-Lim / vocoder phase)


@dataclass(frozen=True)
class Recording:
    """A recording for ``GenerationRequest.context``: continue it, or regenerate a region of it."""

    audio: Any  # a path, or (waveform [T] or [C, T], sample_rate)
    mode: str = "continue"  # "continue" or "inpaint"
    region: Any = None  # inpaint: (start, end) seconds or "start:end"; continue: None

    @classmethod
    def continued(cls, audio: Any) -> Recording:
        return cls(audio, "continue")

    @classmethod
    def inpainted(cls, audio: Any, region: Any) -> Recording:
        return cls(audio, "inpaint", region)

    @property
    def name(self) -> str:
        """The path, or ``"<waveform>"``."""
        return os.fspath(self.audio) if isinstance(self.audio, (str, os.PathLike)) else "<waveform>"


@dataclass(frozen=True)
class LoadedRecording:
    """A checked recording: mono at the model's rate (``GenerationResult.request.context``)."""

    mode: str  # "continue" or "inpaint"
    name: str  # the path, or "<waveform>"
    wav: torch.Tensor  # float32 [T] at ``sample_rate``
    sample_rate: int
    region: tuple[float, float] | None  # inpaint: (start, end) seconds; continue: None

    @property
    def seconds(self) -> float:
        return self.wav.shape[-1] / self.sample_rate


def parse_region(region: Any) -> tuple[tuple[float, float] | None, list[str]]:
    """((start, end), []) from ``(start, end)`` or ``"start:end"`` seconds, or (None, problems)."""
    given = region
    if isinstance(region, str):
        parts = region.split(":")
        if len(parts) != 2:
            return None, [f"region: expected START:END in seconds (e.g. 2.0:4.5); got {given!r}"]
        try:
            region = (float(parts[0]), float(parts[1]))
        except ValueError:
            return None, [f"region: expected START:END in seconds (e.g. 2.0:4.5); got {given!r}"]
    if not isinstance(region, (tuple, list)) or len(region) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in region):
        return None, [f"region: expected (start, end) in seconds or 'START:END'; got {given!r}"]
    start, end = float(region[0]), float(region[1])
    if not (math.isfinite(start) and math.isfinite(end)):
        return None, [f"region: start and end must be finite seconds; got {given!r}"]
    problems = []
    if start < 0:
        problems.append(f"region: starts at {start:g} s, before the recording's start (0 s)")
    if start >= end:
        problems.append(f"region: start {start:g} s is not before end {end:g} s")
    return (None, problems) if problems else ((start, end), [])


def load_recording(context: Any, sample_rate: int, min_samples: int) -> tuple[LoadedRecording | None, list[str]]:
    """(the recording, []) or (None, every problem): an unreadable file, a bad waveform, NaN, a
    recording shorter than ``min_samples`` at the model's rate, a region outside it."""
    from cuecraft.audio.resample import prepare_waveform
    from cuecraft.pipelines.generate import _melody_waveform

    if not isinstance(context, Recording):
        return None, [f"context: expected a Recording (Recording.continued / Recording.inpainted); got "
                      f"{type(context).__name__}"]
    mode = context.mode
    if mode not in MODES:
        return None, [f"context.mode: expected one of {', '.join(MODES)}; got {mode!r}"]
    problems: list[str] = []
    region = None
    if mode == "inpaint":
        region, problems = parse_region(context.region)
    elif context.region is not None:
        problems.append("region: only with inpaint (a continuation regenerates no region)")
    wav = None
    try:
        data, rate = _melody_waveform(context.audio)  # [C, T], rate; AudioReadError / GenerationInputError
        wav = prepare_waveform(data, rate, sample_rate)
    except Exception as error:  # one line in the report
        problems.append(f"{mode}: {_one_line(error)}")
    if wav is not None:
        seconds = wav.shape[-1] / sample_rate
        if wav.shape[-1] < min_samples:
            problems.append(f"{mode}: {context.name} holds {seconds:.3f} s of audio; at least "
                            f"{min_samples / sample_rate:.3f} s are needed")
        if region is not None and region[1] > seconds + 0.5 / sample_rate:
            problems.append(f"region: ends at {region[1]:g} s, past the end of {context.name} ({seconds:.3f} s)")
    if problems:
        return None, problems
    assert wav is not None
    return LoadedRecording(mode, context.name, wav.float(), sample_rate, region), []


def _one_line(error: Exception) -> str:
    problems = getattr(error, "problems", None)
    return "; ".join(problems) if problems else str(error)


def edge_frames(representation: Any) -> int:
    """Frames at a recording's end whose analysis window reaches past it (zero padding there): a
    continuation regenerates them rather than continue a fade to silence."""
    options = getattr(representation, "options", None)
    n_fft = getattr(options, "n_fft", None)
    if isinstance(n_fft, int) and n_fft > representation.hop:
        return math.ceil(((n_fft - representation.hop) // 2) / representation.hop)
    return 1


@dataclass
class Canvas:
    """The latent frames of one request being filled window by window."""

    latent: torch.Tensor  # [D, N] the known latent, zero where unknown
    known: torch.Tensor  # bool [N], True = known
    samples: int  # T, the output length in samples
    recording: LoadedRecording | None = None
    join: int = 0  # continue: the sample where the decoded audio takes over
    region: tuple[int, int] | None = None  # inpaint: the regenerated samples [start, end)


def make_canvas(representation: Any, latent_dim: int, window: int, samples: int,
                recording: LoadedRecording | None, device: torch.device | str = "cpu") -> Canvas:
    """The canvas of a request: ``samples`` output samples, at least ``window`` frames.

    Plain generation: nothing known. Continue: the recording's frames known up to the last
    ``edge_frames`` (the output is the recording and ``samples - len(recording)`` more).
    Inpaint: every frame known but those starting inside the region (at least one). The canvas is
    on the CPU; ``device`` is the representation's, where the recording is encoded.
    """
    hop = representation.hop
    frames = max(representation.frames(samples), window)
    latent = torch.zeros(latent_dim, frames)
    known = torch.zeros(frames, dtype=torch.bool)
    if recording is None:
        return Canvas(latent, known, samples)
    wav = recording.wav
    with torch.no_grad():
        signal = wav.reshape(1, 1, -1).expand(1, representation.channels, -1).to(device)  # [1, C, T]
        encoded = representation.encode(signal)[0]
    encoded = encoded.float().cpu()  # [D, M]
    if recording.mode == "continue":
        count = max(0, min(wav.shape[-1] // hop - edge_frames(representation), encoded.shape[-1]))
        latent[:, :count] = encoded[:, :count]
        known[:count] = True
        return Canvas(latent, known, samples, recording, join=count * hop)
    assert recording.region is not None
    start, end = (round(t * recording.sample_rate) for t in recording.region)
    end = min(end, wav.shape[-1])
    first = math.ceil(start / hop)
    last = max(first + 1, math.ceil(end / hop))  # frames [first, last) start inside the region
    latent[:, :encoded.shape[-1]] = encoded
    known[:encoded.shape[-1]] = True
    known[first:last] = False
    return Canvas(latent, known, samples, recording, region=(start, end))


def assemble(canvas: Canvas, decoded: torch.Tensor, offset: int) -> torch.Tensor:
    """The output float32 [T] of a canvas from its decoded audio [T_d] starting at sample ``offset``.

    Plain: the decoded audio. Continue: the recording up to ``join``, then the decoded audio,
    with a crossfade before the join. Inpaint: the recording, with the decoded audio on the region
    and crossfades just outside it.
    """
    total = canvas.samples
    full = torch.zeros(total)
    take = decoded[: max(0, total - offset)]
    full[offset: offset + take.shape[-1]] = take
    recording = canvas.recording
    if recording is None:
        return full
    original = torch.zeros(total)
    original[: min(total, recording.wav.shape[-1])] = recording.wav[:total]
    fade = round(CROSSFADE_SECONDS * recording.sample_rate)
    decoded_end = offset + take.shape[-1]
    if recording.mode == "continue":
        join = canvas.join
        width = max(0, min(fade, join - offset))
        out = torch.cat((original[:join], full[join:]))
        _crossfade(out, original, full, join - width, join, rising=True)
        return out
    assert canvas.region is not None
    start, end = canvas.region
    out = original.clone()
    out[start:end] = full[start:end]
    left = max(0, min(fade, start - offset))
    right = max(0, min(fade, decoded_end - end, total - end))
    _crossfade(out, original, full, start - left, start, rising=True)
    _crossfade(out, original, full, end, end + right, rising=False)
    return out


def _crossfade(out: torch.Tensor, original: torch.Tensor, decoded: torch.Tensor, start: int, end: int, *,
               rising: bool) -> None:
    """Write into out[start:end] a linear crossfade between original and decoded [T]: towards the
    decoded audio when ``rising``, back to the original otherwise."""
    if end <= start:
        return
    weight = (torch.arange(end - start, dtype=torch.float32) + 0.5) / (end - start)  # (0, 1), rising
    if not rising:
        weight = 1 - weight
    out[start:end] = (1 - weight) * original[start:end] + weight * decoded[start:end]


def check_seconds(value: Any, name: str, low: float, high: float, problems: list[str], *,
                  inclusive: bool = True) -> float | None:
    """``value`` as a float in (low, high] (``inclusive``) or (low, high), else a problem line."""
    ok = is_finite_number(value) and value > low and (value <= high if inclusive else value < high)
    if not ok:
        bracket = "]" if inclusive else ")"
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        problems.append(f"{name}: expected a number of seconds in ({low:g}, {high:g}{bracket}; got {shown}")
        return None
    return float(value)
