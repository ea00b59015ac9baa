"""Longer pieces, continuations and inpainting by windows that continue each other.

For a model trained with ``backbone.inpaint`` (``cuecraft.train.inpaint``), the pipeline fills a
latent *canvas* (``cuecraft.pipelines.recording.Canvas``: latent [D, N], known bool [N]) one
training-length window of F frames at a time:

1. The canvas: nothing known for a piece longer than the window; the recording's frames for a
   continuation; every frame but the region's for an inpainting.
2. The next window (``next_window``) covers the first run of unknown frames. When the run fits
   beside ``overlap`` seconds of context it is centred in the window, else the window starts
   ``overlap`` before it; a window never passes the canvas's end. So a long piece has windows
   starting every F - O frames, the last one moved back to end exactly at the asked length
   (overlapping its predecessor by O or more), and a short region gets context on both sides.
3. Each window is sampled with its known frames (``sample(..., known=...)``): the model sees
   them at every step, and they come back exactly. Its conditions are the request's with the
   piece's clock moved to the window's start: ``seek_time`` (read by the time-aligned
   ``beats`` / ``chords`` conditions, so the beat grid and the chords run on across windows)
   and the melody's waveform cut from there (its null once the melody has ended).
4. The filled canvas is decoded once, as one sequence (no seam from decoding windows apart),
   and the output assembled (``recording.assemble``: the original audio outside what was
   regenerated, with short crossfades).

Seams: the latents of a window's known prefix are the previous window's exactly, so the join
between windows is made by the model (trained to continue a known prefix), not by a crossfade.

Each window draws its own starting noise, from (seed, request, candidate, window), so a request's
audio does not depend on its batch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from cuecraft.pipelines.recording import (Canvas, LoadedRecording, assemble, check_seconds, edge_frames,
                                          load_recording, make_canvas)

DEFAULT_OVERLAP = 0.25  # of the training window: each window keeps this much of the previous one
MAX_SECONDS = 3600.0  # the longest output a request may ask for


def inpaint_problems(pipe: Any, request: Any) -> list[str]:
    """What a model without inpainting channels refuses: a recording to continue or inpaint, an overlap."""
    problems = []
    context = request.context
    if context is not None:
        mode = getattr(context, "mode", "context")
        what = "regenerate a region of a recording" if mode == "inpaint" else "continue a recording"
        problems.append(f"{mode}: this model cannot {what}: it was trained without inpainting channels "
                        "(backbone.inpaint false); use a model trained with backbone.inpaint true")
    if request.overlap is not None:
        problems.append("overlap: only for a model trained with backbone.inpaint true (windows that continue "
                        f"each other); this one generates one window of its training length ({pipe.max_seconds:g} s)")
    return problems


def check_windowed(pipe: Any, request: Any,
                   problems: list[str]) -> tuple[float | None, float | None, LoadedRecording | None]:
    """(output seconds, overlap seconds, loaded recording) of a request to a model with inpainting;
    each problem appended to ``problems`` (its value then None).

    seconds: the output's length, up to MAX_SECONDS (default the training length); with a
    recording to continue, the seconds added after it (the output holds both); with one to
    inpaint, not given (the output has the recording's length).
    """
    window = pipe.max_seconds
    overlap = window * DEFAULT_OVERLAP if request.overlap is None else check_seconds(
        request.overlap, "overlap", 0.0, window, problems, inclusive=False)
    recording = None
    if request.context is not None:
        hop = pipe.representation.hop
        recording, found = load_recording(request.context, pipe.sample_rate,
                                          (edge_frames(pipe.representation) + 1) * hop)
        problems += found
    mode = getattr(request.context, "mode", None)
    if mode == "inpaint":
        if request.seconds is not None:
            problems.append("seconds: an inpainting keeps the recording's length; leave seconds out")
            return None, overlap, recording
        return (None if recording is None else recording.seconds), overlap, recording
    seconds = window if request.seconds is None else check_seconds(request.seconds, "seconds", 0.0, MAX_SECONDS,
                                                                   problems)
    if mode == "continue":
        if seconds is None or recording is None:
            return None, overlap, recording
        added = round(seconds * pipe.sample_rate)
        return (recording.wav.shape[-1] + added) / pipe.sample_rate, overlap, recording
    return seconds, overlap, recording


def is_windowed(pipe: Any, request: Any) -> bool:
    """Whether a checked request is made by windows: a recording, or longer than the training window."""
    return bool(pipe.inpaint) and (request.context is not None or request.seconds > pipe.max_seconds)


def next_window(known: torch.Tensor, window: int, overlap: int) -> tuple[int, int] | None:
    """The frames [start, end) of the next window over ``known`` bool [N] (N >= window), or None
    when every frame is known (see the module docstring, step 2)."""
    total = known.shape[0]
    unknown = (~known).nonzero().flatten()
    if unknown.numel() == 0:
        return None
    first = int(unknown[0])
    after = (known[first:]).nonzero().flatten()
    run = int(after[0]) if after.numel() else total - first  # the unknown run [first, first + run)
    context = min(overlap, first)
    left = max(context, (window - run) // 2) if run + context <= window else context
    start = min(max(first - left, 0), total - window)
    return start, start + window


def plan_windows(known: torch.Tensor, window: int, overlap: int) -> list[tuple[int, int]]:
    """Every window, in order, that fills ``known`` bool [N] (each marks its frames known)."""
    known = known.clone()
    windows = []
    while (span := next_window(known, window, overlap)) is not None:
        windows.append(span)
        known[span[0]: span[1]] = True
    return windows


def window_metadata(pipe: Any, metadata: dict[str, Any], start: float, seconds: float) -> dict[str, Any]:
    """The metadata of a window starting ``start`` seconds into the piece, ``seconds`` long: the
    piece's clock (``seek_time``) moved by ``start``, the melody's waveform cut from there."""
    from cuecraft.attributes import WavCondition

    out = {**metadata, "seek_time": float(metadata.get("seek_time") or 0.0) + start}
    melody = pipe.controls.get("melody")
    value = out.get(melody.conditioner) if melody is not None else None
    if isinstance(value, WavCondition):
        first = round(start * value.sample_rate)
        piece = value.wav[..., first: first + math.ceil(seconds * value.sample_rate)]
        out[melody.conditioner] = WavCondition(piece, value.sample_rate) if piece.shape[-1] else None
    return out


def _overlap_frames(pipe: Any, request: Any) -> int:
    hop_seconds = pipe.representation.hop / pipe.sample_rate
    return min(max(1, round(request.overlap / hop_seconds)), pipe.frames - 1)


def window_plan(pipe: Any, request: Any, canvas: Canvas) -> list[tuple[int, int]]:
    return plan_windows(canvas.known, pipe.frames, _overlap_frames(pipe, request))


def sample_windows(pipe: Any, chunk: Sequence[tuple[int, int]], checked: Sequence[tuple[Any, dict[str, Any]]], *,
                   steps: int, scale: float, group_scale: float, sampler: str, seed: int,
                   callback: Callable[[Any], None]) -> list[np.ndarray]:
    """The audio float32 [T] of each job (request index, candidate) of ``chunk``, in order.

    Jobs of one request are sampled together, window by window; requests that need no windows go
    through the pipeline's one-window path. ``callback`` gets the chunk's progress on its own
    scale of ``steps`` ticks, every window's steps folded into it.
    """
    groups: dict[int, list[int]] = {}
    for i, candidate in chunk:
        groups.setdefault(i, []).append(candidate)
    plans = {}
    for i in groups:
        request = checked[i][0]
        if is_windowed(pipe, request):
            canvas = make_canvas(pipe.representation, pipe.dit.config.latent_dim, pipe.frames,
                                 round(request.seconds * pipe.sample_rate), request.context, pipe.device)
            plans[i] = (canvas, window_plan(pipe, request, canvas))
    passes = sum(len(plans[i][1]) if i in plans else 1 for i in groups) * steps
    ticks = _Ticks(callback, passes, steps)
    audio: dict[tuple[int, int], np.ndarray] = {}
    for i, candidates in groups.items():
        jobs = [(i, c) for c in candidates]
        if i not in plans:
            wavs = pipe._sample(jobs, checked, steps=steps, scale=scale, group_scale=group_scale, sampler=sampler,
                                seed=seed, callback=ticks)
        else:
            canvas, windows = plans[i]
            wavs = _fill(pipe, jobs, checked[i], canvas, windows, steps=steps, scale=scale, group_scale=group_scale,
                         sampler=sampler, seed=seed, callback=ticks)
        audio.update(zip(jobs, wavs))
    return [audio[job] for job in chunk]


class _Ticks:
    """Folds ``passes`` sampler steps into ``steps`` ticks of the caller's progress callback."""

    def __init__(self, callback: Callable[[Any], None], passes: int, steps: int):
        self.callback, self.passes, self.steps, self.done, self.shown = callback, passes, steps, 0, -1

    def __call__(self, info: Any) -> None:
        self.done += 1
        tick = self.done * self.steps // self.passes - 1
        if tick > self.shown:
            self.shown = tick
            self.callback(dataclasses.replace(info, i=tick))


def _fill(pipe: Any, jobs: list[tuple[int, int]], checked: tuple[Any, dict[str, Any]], canvas: Canvas,
          windows: list[tuple[int, int]], *, steps: int, scale: float, group_scale: float, sampler: str, seed: int,
          callback: Callable[[Any], None]) -> list[np.ndarray]:
    """Fill the canvas of one request for each of its candidates, window by window; decode; assemble."""
    from cuecraft.data.segments import stable_seed
    from cuecraft.sampling import sample

    request, metadata = checked
    batch, rate, hop = len(jobs), pipe.sample_rate, pipe.representation.hop
    latent = canvas.latent.unsqueeze(0).repeat(batch, 1, 1).to(pipe.device)  # [B, D, N]
    known = canvas.known.clone()
    negative_prompt = request.negative_prompt
    for w, (start, end) in enumerate(windows):
        shifted = window_metadata(pipe, metadata, start * hop / rate, pipe.max_seconds)
        negative = None
        if negative_prompt is not None:
            negative = window_metadata(pipe, {**pipe._null_metadata(), pipe.controls["negative_prompt"].conditioner:
                                              negative_prompt}, start * hop / rate, pipe.max_seconds)
        with torch.no_grad():
            conditional, other, group = pipe._branches([shifted] * batch, [negative] * batch if negative else None,
                                                       scale, group_scale)
            noise = torch.stack([torch.randn(latent.shape[1], end - start,
                                             generator=torch.Generator().manual_seed(stable_seed(seed, i, c, w)))
                                 for i, c in jobs]).to(pipe.device)
            mask = known[start:end].to(pipe.device).expand(batch, -1)
            latent[..., start:end] = sample(
                pipe.dit, pipe.objective, conditional, shape=tuple(noise.shape), steps=steps, sampler=sampler,
                guidance_scale=scale, negative=other, rescale_phi=pipe.stack.rescale_phi, callback=callback,
                noise=noise, group_scale=group_scale, group=group, group_branch=pipe.stack.guidance_group_branch,
                known=(latent[..., start:end], mask))
        known[start:end] = True
    first = min(start for start, _ in windows)
    last = max(end for _, end in windows) if canvas.recording is not None else latent.shape[-1]
    offset = first * hop
    length = min(canvas.samples, last * hop) - offset
    out = []
    with torch.no_grad():
        for z in latent:  # one at a time, as the one-window path (Griffin-Lim draws its phase per call)
            wav = pipe.representation.decode(z[None, :, first:last].float(), length=length)[0].mean(0).cpu()
            out.append(assemble(canvas, wav, offset).clamp(-1, 1).numpy().astype(np.float32))
    return out
