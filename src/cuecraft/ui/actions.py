"""What the web UI's buttons do, as plain functions over ``GenerationPipeline`` (no gradio here).

The page hands these functions the raw values of its widgets (``GenerateInputs``); they turn
them into a ``GenerationRequest``, run the pipeline and return what the page shows: one audio
clip, spectrogram and chroma image per kept candidate, and a table of what was asked beside what
was measured. Bad values raise ``GenerationInputError`` (the pipeline's, or one for a widget
value), whose text the page shows as its message.

Widget conventions: an empty text box, ``"any"`` in a dropdown, drums ``"any"``, a blank number box
and an unticked tempo box all leave that condition out (its null); a blank guidance box is the
model's own scale. The time signature, first downbeat and chords go with the tempo (models with a
``beats`` or ``chords`` conditioner).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from cuecraft.errors import GenerationInputError
from cuecraft.pipelines.generate import GenerationPipeline, GenerationRequest, GenerationResult

ANY = "any"  # the dropdown / radio choice that leaves a condition out
MAX_CANDIDATES = 4  # candidates one click may ask for; each kept one gets a player and two images
MEASURED_HEADER = ("candidate", "score", "tempo asked", "tempo measured", "key asked", "key measured")
CONDITIONS_HEADER = ("condition", "type", "roles", "shape", "mask coverage")
Progress = Callable[[int, int], None]  # (steps done, total)


@dataclass(frozen=True)
class GenerateInputs:
    """The Generate tab's widget values, in the order the page (and its ``/generate`` API) passes them."""

    prompt: str | None = None
    negative_prompt: str | None = None
    tempo_on: bool = False  # the "set tempo" box: off leaves tempo out
    bpm: float | None = None
    key: str | None = ANY
    instrument: str | None = ANY
    drums: str | None = ANY  # "on", "off" or "any"
    melody: str | None = None  # a file path (an upload or a recording)
    seconds: float | None = None  # None: the model's training length
    steps: int | float = 25
    guidance: float | None = None  # None: the model's scale
    seed: int | float = 0
    candidates: int | float = 1
    # after the sampling settings, so the /generate API's earlier positions stay as they were
    time_signature: str | None = ANY  # "4/4", "3/4", "6/8", ... (a typed value too)
    chords: str | None = None  # "Am F C G" (one per bar) or "Am@0 F@2" (seconds)
    downbeat_offset: float | None = None  # seconds; None (a blank box): the model's default, 0

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


SAMPLING_INPUTS = ("steps", "guidance", "seed", "candidates")
CONDITION_INPUTS = tuple(name for name in GenerateInputs.names() if name not in SAMPLING_INPUTS)  # Conditions tab


@dataclass
class GenerateOutput:
    """What one Generate click shows, best candidate first."""

    result: GenerationResult
    audio: list[tuple[int, np.ndarray]]  # (sample_rate, int16 [T]) per kept candidate
    spectrograms: list[np.ndarray]  # RGB uint8 [H, W, 3] per kept candidate
    chromas: list[np.ndarray]  # RGB uint8 [H, W, 3] per kept candidate
    table: list[list[Any]]  # rows under MEASURED_HEADER
    asked: str  # one line: what was asked
    warnings: list[str] = field(default_factory=list)  # shown as notices, not errors


def _choice(value: Any) -> Any:
    """A dropdown / radio value: None for "any" or nothing chosen."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", ANY)):
        return None
    return value


def _text(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def whole_number(name: str, value: Any, problems: list[str]) -> int | None:
    """A number box's value as an int (gradio hands numbers over as floats)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value):
        problems.append(f"{name}: expected a whole number; got {value!r}")
        return None
    return int(value)


def request_of(inputs: GenerateInputs) -> GenerationRequest:
    """The pipeline request for the widget values (see the module docstring for the conventions)."""
    bpm = inputs.bpm if inputs.tempo_on else None
    if inputs.tempo_on and bpm is None:
        raise GenerationInputError("tempo: the tempo box is ticked but no tempo is given; give one or untick it")
    melody = _text(inputs.melody)
    return GenerationRequest(prompt=_text(inputs.prompt), negative_prompt=_text(inputs.negative_prompt), bpm=bpm,
                             key=_choice(inputs.key), instrument=_choice(inputs.instrument),
                             drums=_choice(inputs.drums), melody=melody, seconds=inputs.seconds,
                             time_signature=_choice(inputs.time_signature), chords=_text(inputs.chords),
                             downbeat_offset=inputs.downbeat_offset)


def _settings(inputs: GenerateInputs) -> dict[str, Any]:
    problems: list[str] = []
    steps, seed = whole_number("steps", inputs.steps, problems), whole_number("seed", inputs.seed, problems)
    candidates = whole_number("candidates", inputs.candidates, problems)
    if candidates is not None and not 1 <= candidates <= MAX_CANDIDATES:
        problems.append(f"candidates: expected 1 to {MAX_CANDIDATES} (the page shows that many players); "
                        f"got {candidates}")
    if problems:
        raise GenerationInputError(problems)
    return {"steps": steps, "seed": seed, "candidates": candidates, "guidance": inputs.guidance}


def generate_clicked(pipe: GenerationPipeline, inputs: GenerateInputs, progress: Progress | None = None,
                     ) -> GenerateOutput:
    """Generate what ``inputs`` ask: every kept candidate (all of them, ranked), its images and measurements."""
    from cuecraft.ui.images import chroma_image, spectrogram_image

    request, settings = request_of(inputs), _settings(inputs)
    [result] = pipe.generate([request], **settings, progress=progress)
    warnings = []
    if settings["candidates"] > 1 and result.request.bpm is None and result.request.key is None:
        warnings.append("candidates are ranked by how well they follow the asked tempo and key; "
                        "neither was asked, so they are shown in the order they were sampled")
    audio = [(result.sample_rate, pcm16(clip)) for clip in result.audio]
    spectrograms = [spectrogram_image(pipe.representation, clip, title=f"candidate {i + 1}: log-mel")
                    for i, clip in enumerate(result.audio)]
    chromas = [chroma_image(clip, result.sample_rate, title=f"candidate {i + 1}: chroma")
               for i, clip in enumerate(result.audio)]
    return GenerateOutput(result, audio, spectrograms, chromas, measured_table(result),
                          asked_line(result), warnings)


def measured_table(result: GenerationResult) -> list[list[Any]]:
    """One row per kept candidate under MEASURED_HEADER; a control not asked is "-"."""
    asked_bpm = "-" if result.request.bpm is None else round(result.request.bpm, 2)
    asked_key = result.request.key or "-"
    return [[i + 1, round(score, 3), asked_bpm, found.get("tempo", "-"), asked_key, found.get("key") or "-"]
            for i, (found, score) in enumerate(zip(result.measured, result.scores))]


def asked_line(result: GenerationResult) -> str:
    asked = result.asked
    return "asked: " + (", ".join(f"{name} {value}" for name, value in asked.items()) if asked else "nothing")


def conditions_for(pipe: GenerationPipeline, inputs: GenerateInputs) -> list[list[Any]]:
    """What the model receives for ``inputs``: rows under CONDITIONS_HEADER (``cuecraft condition``'s)."""
    rows = pipe.conditions(request_of(inputs))
    return [[row["name"], row["type"], ", ".join(row["roles"]), " x ".join(str(n) for n in row["shape"]),
             f"{row['mask_coverage']:.0%}"] for row in rows]


def pcm16(clip: np.ndarray) -> np.ndarray:
    """float [T] in [-1, 1] -> int16 [T] (what an audio player is handed; NaN -> 0)."""
    return np.round(np.clip(np.nan_to_num(clip), -1.0, 1.0) * 32767).astype(np.int16)
