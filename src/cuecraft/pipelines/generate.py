"""``GenerationPipeline``: conditioned generation with a model trained by cuecraft (the built-in one or yours).

The pipeline turns what a person asks (a prompt, a tempo, a key, an instrument, drums on or off,
a melody recording, a length) into the model's metadata, checks every value against what the
model knows, samples, decodes, cuts each clip to exactly the asked length and measures its tempo
and key::

    pipe = cuecraft.load_builtin()
    result = pipe("lofi piano", bpm=80, key="F major", melody=(wav, rate), seconds=8, seed=0)
    result.audio[0]      # float32 [seconds * sample_rate]
    result.measured[0]   # {"tempo": 80.2, "key": "F major"}

Controls. A model's controls come from its conditioning config: its first text-encoder
conditioner is ``prompt`` (and ``negative_prompt``, the guidance branch), a ``chroma_stem``
conditioner is ``melody``, a ``seconds_total`` number is set from the length, and every other
``number`` / ``list`` conditioner is a control under its own id (``bpm``, ``key``,
``instrument``, ``drums`` in the built-in model). A ``beats`` or ``chords`` conditioner adds the
time-axis controls ``bpm``, ``time_signature``, ``downbeat_offset`` and (chords) ``chords``,
``key`` (``cuecraft.pipelines.time_controls``). A value the model does not know is a
``GenerationInputError`` listing what it knows; a control the model lacks is one too.

Guidance. ``guidance`` is the classifier-free guidance scale of all conditions, ``guidance_text``
the scale of a group of them, by default the text prompt (the conditioners that carry a prompt, or
the config's ``guidance.group.conditions``), in one batched pass of the conditional, group and
unconditional branches: ``cuecraft.guidance_groups`` gives the formula and the settings that
reproduce MusicGen-Style's double CFG and JASCO's two scales. Both default to the model config's
(``guidance.scale``, ``guidance.group.scale``); ``guidance_text=0`` is plain guidance.

Candidates. With ``candidates=N`` each request is sampled N times and the ``keep`` best are
returned, ranked by how well they follow the asked tempo and key (``adherence_score``).

Reproducibility: the same requests, settings and ``seed`` give the same audio; each request's
starting noise is drawn from its own generator (seed, request index, candidate), so a request's
audio does not depend on the batch it was sampled in.

Windows. A model trained with ``backbone.inpaint`` also makes pieces longer than its training
length, continues a recording and regenerates a region of one (``context=Recording...``,
``overlap``), by windows that continue each other: ``cuecraft.pipelines.windows``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cuecraft._numbers import is_finite_number
from cuecraft._text import short_repr
from cuecraft.errors import ConditioningInputError, GenerationError, GenerationInputError
from cuecraft.guidance_groups import PROMPT_TYPES
from cuecraft.pipelines.time_controls import TIME_FIELDS, TIME_KINDS, check_time_value, check_together, time_controls
from cuecraft.pipelines.windows import check_windowed, inpaint_problems, is_windowed

TEXT_TYPES = PROMPT_TYPES  # conditioner types read as the prompt
TIMING = ("seconds_start", "seconds_total")  # stable-audio-tools' timing numbers: set, not asked
# Bounds of a call's settings (issue 23: --candidates 10^9 built a 7 GB job list, --steps 2**63 a traceback).
MAX_STEPS, MAX_CANDIDATES, MAX_BATCH, MAX_GUIDANCE = 1_000, 64, 1_024, 100.0
MIN_SECONDS = 0.1  # a shorter clip has no frame to decode and nothing to measure
MAX_MELODY_SECONDS = 600.0  # a melody recording (file or waveform), checked before it is decoded
Progress = Callable[[int, int], None]  # (sampler steps done, total)


_finite = is_finite_number


@dataclass(frozen=True)
class Control:
    """One thing a user can ask of a model: its name, kind and allowed values."""

    name: str  # "prompt", "bpm", "key", "instrument", "drums", "melody", ...
    kind: str  # "text", "number", "list", "melody"; time_controls' "metre", "chords", "key"
    conditioner: str  # the conditioner id (the metadata key the model reads; for time controls the field)
    options: tuple[str, ...] | None = None  # list controls
    range: tuple[float, float] | None = None  # number controls, inclusive


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. Every field is optional; None leaves that condition out (its null)."""

    prompt: str | None = None
    negative_prompt: str | None = None
    bpm: float | None = None
    key: str | None = None
    instrument: str | None = None
    drums: bool | str | None = None  # True / "on", False / "off"
    melody: Any = None  # a path, or (waveform [T] or [C, T], sample_rate)
    seconds: float | None = None  # None: the model's training length
    time_signature: str | None = None  # "4/4", "3/4", "6/8" (beats / chords models; with a bpm)
    downbeat_offset: float | None = None  # seconds: where the first bar starts (with a bpm)
    chords: str | None = None  # "Am F C G" (one per bar at the bpm) or "Am@0 F@2" (seconds)
    extra: Mapping[str, Any] = field(default_factory=dict)  # other controls of a user's model, by id
    # Models with backbone.inpaint (cuecraft.pipelines.windows): a Recording to continue or inpaint
    # (checked: a LoadedRecording), and the seconds each window keeps of the previous one.
    context: Any = None
    overlap: float | None = None  # None: a quarter of the training window

    def asked(self) -> dict[str, Any]:
        """The given controls (the melody as its path or ``"<waveform>"``)."""
        out = {name: getattr(self, name) for name in ("prompt", "negative_prompt", "bpm", "key", "instrument",
                                                        "drums", "seconds", *TIME_FIELDS)
               if getattr(self, name) is not None}
        if self.melody is not None:
            out["melody"] = os.fspath(self.melody) if isinstance(self.melody, (str, os.PathLike)) else "<waveform>"
        if self.context is not None:  # {"continue": path} or {"inpaint": path, "region": [start, end]}
            out[self.context.mode] = self.context.name
            if self.context.region is not None:
                out["region"] = list(self.context.region) if isinstance(self.context.region, tuple) \
                    else self.context.region
        if self.overlap is not None:
            out["overlap"] = self.overlap
        return {**out, **dict(self.extra)}


@dataclass
class GenerationResult:
    """One request's outputs: the kept candidates, best first."""

    request: GenerationRequest  # normalised values (canonical key, "on"/"off" drums, seconds set)
    audio: list[np.ndarray]  # float32 [T], T = round(seconds * sample_rate)
    sample_rate: int
    measured: list[dict[str, Any]]  # per kept candidate: {"tempo": bpm, "key": name}
    scores: list[float]  # adherence_score per kept candidate

    @property
    def asked(self) -> dict[str, Any]:
        return self.request.asked()


def adherence_score(request: GenerationRequest, measured: Mapping[str, Any]) -> float:
    """How well a clip follows its request, for ranking candidates: 1 for the asked key, and for the
    asked tempo 1 minus the relative error in units of 4 % (floored at 0). 0 when neither is asked."""
    score = 0.0
    if request.key is not None:
        score += float(measured.get("key") == request.key)
    if request.bpm is not None and measured.get("tempo"):
        score += max(0.0, 1.0 - abs(measured["tempo"] / request.bpm - 1.0) / 0.04)
    return score


def measure(wav: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """The tempo (bpm) and key of a clip, as ``cuecraft eval`` measures them."""
    from cuecraft.audio.beats import estimate_tempo
    from cuecraft.audio.key import estimate_key

    tensor = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    key, scores = estimate_key(tensor, sample_rate)
    return {"tempo": round(float(estimate_tempo(tensor, sample_rate)), 2),
            "key": key if max(scores.values()) > 0 else None}


def clip_frames(representation: Any, clip: np.ndarray) -> np.ndarray:
    """The normalised log-mel frames [D, L] of ``clip`` float [T] under ``representation`` (what the
    spectrogram PNG of ``cuecraft generate`` and the web UI draw)."""
    with torch.no_grad():
        frames = representation.encode(torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32))[None, None])
    return frames[0].float().cpu().numpy()


def _controls_of(stack: Any) -> dict[str, Control]:
    controls: dict[str, Control] = {}
    for name, conditioner in stack.provider.conditioners.items():
        kind = stack.types[name]
        if kind in TEXT_TYPES and "prompt" not in controls:
            controls["prompt"] = Control("prompt", "text", name)
            controls["negative_prompt"] = Control("negative_prompt", "text", name)
        elif kind == "chroma_stem" and "melody" not in controls:
            controls["melody"] = Control("melody", "melody", name)
        elif kind == "number" and name in TIMING:
            continue  # set from the clip's length, not asked
        elif kind == "number":
            controls[name] = Control(name, "number", name, range=(float(conditioner.min_val),
                                                                  float(conditioner.max_val)))
        elif kind == "list":
            controls[name] = Control(name, "list", name, options=tuple(conditioner.options))
    return {**controls, **time_controls(stack, controls)}  # beats / chords: bpm, time_signature, chords, ...


class GenerationPipeline:
    """Generation with an exported cuecraft model (``ModelParts``); see the module docstring."""

    def __init__(self, parts: Any, config: Any, *, device: str | torch.device = "cpu", name: str = "model"):
        self.stack, self.representation, self.dit, self.objective = parts
        self.config = config
        self.name = name
        self.device = torch.device(device)
        self.dit.to(self.device).eval()
        self.stack.provider.to(self.device).eval()
        self.representation.to(self.device)
        self.sample_rate = int(self.representation.sample_rate)
        self.max_seconds = float(config.training.segment_seconds)
        self.controls = _controls_of(self.stack)
        self.frames = self.representation.frames(round(self.max_seconds * self.sample_rate))
        self.inpaint = bool(self.dit.config.inpaint)  # windows, continuation, inpainting (pipelines.windows)

    @classmethod
    def from_dir(cls, directory: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> GenerationPipeline:
        """The pipeline of a model exported by ``cuecraft train`` (``runs/NAME/model``)."""
        from cuecraft.config.model import parse_model_config
        from cuecraft.train.export import load_trained, read_export

        info, _ = read_export(directory)
        return cls(load_trained(directory), parse_model_config(info["config"]), device=device,
                   name=os.fspath(directory))

    # -- requests -------------------------------------------------------------------------

    def _check(self, request: GenerationRequest) -> tuple[GenerationRequest, dict[str, Any]]:
        """(the normalised request, the model's metadata for it); GenerationInputError listing every problem."""
        from cuecraft.attributes import WavCondition
        from cuecraft.audio.key import parse_key

        controls, problems = self.controls, []
        metadata: dict[str, Any] = self._null_metadata()
        values: dict[str, Any] = {}

        def lacks(name: str) -> bool:
            if name in controls:
                return False
            known = ", ".join(sorted(controls)) or "none"
            problems.append(f"{name}: this model has no {name} control; its controls: {known}")
            return True

        for name in ("prompt", "negative_prompt"):
            text = getattr(request, name)
            if text is None or lacks(name):
                continue
            if not isinstance(text, str):
                problems.append(f"{name}: expected text; got {type(text).__name__}")
            elif text.strip():
                values[name] = text.strip()
                if name == "prompt":
                    metadata[controls[name].conditioner] = text.strip()
        for name in ("bpm", "key", "instrument", "drums", *TIME_FIELDS):
            value = getattr(request, name)
            if value is None or lacks(name):
                continue
            control = controls[name]
            if name == "key" and isinstance(value, str):
                try:
                    value = parse_key(value) or value
                except ConditioningInputError as error:
                    problems.append(f"key: {error}")
                    continue
            if name == "drums" and isinstance(value, bool):
                value = "on" if value else "off"
            checked = self._check_value(control, value, problems)
            if checked is not None:
                values[name] = metadata[control.conditioner] = checked
        for name, value in dict(request.extra).items():
            if name in ("prompt", "negative_prompt", "bpm", "key", "instrument", "drums", "melody", "seconds",
                        *TIME_FIELDS):
                problems.append(f"extra.{name}: give {name} as its own argument")
            elif value is not None and not lacks(name):
                checked = self._check_value(controls[name], value, problems)
                if checked is not None:
                    metadata[controls[name].conditioner] = checked
        seconds = self.max_seconds if request.seconds is None else request.seconds
        overlap = context = None
        if self.inpaint:  # longer than the window, continue, inpaint: cuecraft.pipelines.windows
            seconds, overlap, context = check_windowed(self, request, problems)
        elif not _finite(seconds) \
                or not 0 < seconds <= self.max_seconds:
            problems.append(f"seconds: expected a number in (0, {self.max_seconds:g}] (the length this model was "
                            f"trained on); got {seconds!r}")
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 < seconds < MIN_SECONDS:
            problems.append(f"seconds: {seconds:g} is shorter than the shortest clip, {MIN_SECONDS:g} s")
        if not self.inpaint:
            problems += inpaint_problems(self, request)
        if request.melody is not None and not lacks("melody"):
            try:
                wav, rate = _melody_waveform(request.melody)
                metadata[controls["melody"].conditioner] = WavCondition(wav, rate)
            except Exception as error:  # AudioReadError, a bad tuple: one line in the report
                problems.append(f"melody: {error}")
        for name in self.stack.provider.conditioners:
            if name in TIMING and self.stack.types[name] == "number":  # every clip is made at the trained length
                metadata[name] = float(self.max_seconds) if name == "seconds_total" else 0.0
        check_together(self.stack, request, metadata, problems)  # chords with the bpm and metre, ...
        if problems:
            raise GenerationInputError(problems)
        normal = replace(request, seconds=float(seconds), context=context, overlap=overlap,
                         **{k: v for k, v in values.items()})
        return normal, metadata

    def _null_metadata(self) -> dict[str, Any]:
        """Every metadata key the model reads (a beats / chords conditioner reads several), each None (its null)."""
        return {key: None for route in self.stack.provider.routes for key in route.keys}

    @staticmethod
    def _check_value(control: Control, value: Any, problems: list[str]) -> Any:
        name = control.name
        if control.kind in TIME_KINDS:
            return check_time_value(control, value, problems)
        if control.kind == "number":
            low, high = control.range or (-math.inf, math.inf)
            if not _finite(value) \
                    or not low <= value <= high:
                problems.append(f"{name}: expected a number in [{low:g}, {high:g}] (the range this model knows); "
                                f"got {value!r}")
                return None
            return float(value)
        options = control.options or ()
        if isinstance(value, str):
            match = {o.lower(): o for o in options}.get(value.strip().lower())
            if match is not None:
                return match
        problems.append(f"{name}: unknown value {value!r}; this model knows: {', '.join(options)}")
        return None

    def conditions(self, request: GenerationRequest) -> list[dict[str, Any]]:
        """What the model receives for ``request``: one row per condition (``cuecraft condition``'s)."""
        _, metadata = self._check(request)
        with torch.no_grad():
            conditions = self.stack.condition([metadata])
        return [{"name": row.name, "type": row.type, "roles": list(row.roles), "shape": list(row.shape),
                 "mask_coverage": row.unmasked} for row in self.stack.summarize(conditions)]

    # -- generation -----------------------------------------------------------------------

    def __call__(self, prompt: str | None = None, *, steps: int = 25, guidance: float | None = None,
                 guidance_text: float | None = None, sampler: str = "dpmpp_2m", seed: int = 0, candidates: int = 1,
                 keep: int | None = None, progress: Progress | None = None, **controls: Any) -> GenerationResult:
        """Generate one request: ``pipe(prompt, bpm=..., key=..., melody=(wav, rate), seconds=...)``."""
        known = {f for f in GenerationRequest.__dataclass_fields__ if f not in ("prompt", "extra")}
        extra = {k: controls.pop(k) for k in list(controls) if k not in known}
        request = GenerationRequest(prompt=prompt, extra=extra, **controls)
        return self.generate([request], steps=steps, guidance=guidance, guidance_text=guidance_text,
                             sampler=sampler, seed=seed, candidates=candidates, keep=keep, progress=progress)[0]

    def generate(self, requests: Sequence[GenerationRequest], *, steps: int = 25, guidance: float | None = None,
                 sampler: str = "dpmpp_2m", seed: int = 0, candidates: int = 1, keep: int | None = None,
                 batch_size: int = 8, progress: Progress | None = None, measured: bool = True,
                 guidance_text: float | None = None) -> list[GenerationResult]:
        """Generate every request (see the module docstring); returns one result per request, in order."""
        problems = []
        for name, value, low, high in (("steps", steps, 1, MAX_STEPS), ("candidates", candidates, 1, MAX_CANDIDATES),
                                       ("batch_size", batch_size, 1, MAX_BATCH), ("seed", seed, 0, 2**63 - 1)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                bound = f", at most {high:,}" if isinstance(value, int) and value > high else ""
                problems.append(f"{name}: expected an int >= {low}{bound}; got {short_repr(value)}")
        keep = candidates if keep is None else keep
        most = candidates if isinstance(candidates, int) and 1 <= candidates <= MAX_CANDIDATES else 1
        if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= most:
            problems.append(f"keep: expected an int in [1, candidates = {short_repr(candidates)}]; "
                            f"got {short_repr(keep)}")
        scale = self.stack.guidance_scale if guidance is None else guidance
        if not _finite(scale) or not 0 <= scale <= MAX_GUIDANCE:
            bound = f", at most {MAX_GUIDANCE:g}" if isinstance(scale, (int, float)) and not scale <= MAX_GUIDANCE \
                else ""
            problems.append(f"guidance: expected a number >= 0{bound}; got {short_repr(guidance)}")
        group_scale = self.stack.guidance_group_scale if guidance_text is None else guidance_text
        if not _finite(group_scale) or not 0 <= group_scale <= MAX_GUIDANCE:
            bound = f", at most {MAX_GUIDANCE:g}" if isinstance(group_scale, (int, float)) \
                and not group_scale <= MAX_GUIDANCE else ""
            problems.append(f"guidance_text: expected a number >= 0 (0: off){bound}; got {short_repr(guidance_text)}")
        elif group_scale != 0 and not self.stack.guidance_group_conditions():
            problems.append(f"guidance_text: this model has no text conditions (conditioner types "
                            f"{', '.join(PROMPT_TYPES)}) and its config names no guidance.group; use guidance alone")
        if not isinstance(requests, Sequence) or not requests:
            problems.append("requests: expected a non-empty list of GenerationRequest")
        if problems:
            raise GenerationInputError(problems)
        checked = [self._check(r if isinstance(r, GenerationRequest) else _not_a_request(i, r))
                   for i, r in enumerate(requests)]
        jobs = [(i, c) for i in range(len(checked)) for c in range(candidates)]
        total = math.ceil(len(jobs) / batch_size) * steps
        audio: dict[tuple[int, int], np.ndarray] = {}
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start: start + batch_size]
            done = start // batch_size * steps

            def step_callback(info: Any, done: int = done) -> None:
                if progress is not None:
                    progress(done + int(info.i) + 1, total)

            wavs = self._sample(chunk, checked, steps=steps, scale=float(scale), group_scale=float(group_scale),
                                sampler=sampler, seed=seed, callback=step_callback)
            audio.update(zip(chunk, wavs))
        results = []
        for i, (request, _) in enumerate(checked):
            length = round(request.seconds * self.sample_rate)
            clips = [audio[(i, c)][:length] for c in range(candidates)]
            if not all(np.isfinite(clip).all() for clip in clips):  # not measured into a misleading error
                raise GenerationError(f"request {i}: the sampled audio is not finite (NaN or infinity): the model's "
                                      f"weights or the guidance ({float(scale):g}) diverged; lower the guidance or "
                                      "check the model")
            found = [measure(clip, self.sample_rate) for clip in clips] if measured or candidates > 1 else \
                [{} for _ in clips]
            scores = [adherence_score(request, m) for m in found]
            order = sorted(range(candidates), key=lambda c: -scores[c])[:keep]  # stable: ties keep their order
            results.append(GenerationResult(request, [clips[c] for c in order], self.sample_rate,
                                            [found[c] for c in order] if measured else [{} for _ in order],
                                            [scores[c] for c in order]))
        return results

    def _sample(self, chunk: list[tuple[int, int]], checked: list, *, steps: int, scale: float, group_scale: float,
                sampler: str, seed: int, callback: Callable) -> list[np.ndarray]:
        from cuecraft.sampling import sample

        if any(is_windowed(self, checked[i][0]) for i, _ in chunk):  # a model with inpaint: by windows
            from cuecraft.pipelines.windows import sample_windows

            return sample_windows(self, chunk, checked, steps=steps, scale=scale, group_scale=group_scale,
                                  sampler=sampler, seed=seed, callback=callback)
        metadata = [checked[i][1] for i, _ in chunk]
        negatives = [checked[i][0].negative_prompt for i, _ in chunk]
        negative_metadata = None
        if any(n is not None for n in negatives):
            text = self.controls["negative_prompt"].conditioner
            negative_metadata = [{**self._null_metadata(), text: n} for n in negatives]
        with torch.no_grad():
            conditional, negative, group = self._branches(metadata, negative_metadata, scale, group_scale)
            noise = torch.stack([torch.randn(self.dit.config.latent_dim, self.frames,
                                             generator=torch.Generator().manual_seed(_noise_seed(seed, i, c)))
                                 for i, c in chunk]).to(self.device)
            latents = sample(self.dit, self.objective, conditional, shape=tuple(noise.shape), steps=steps,
                             sampler=sampler, guidance_scale=scale, negative=negative,
                             rescale_phi=self.stack.rescale_phi, callback=callback, noise=noise,
                             group_scale=group_scale, group=group, group_branch=self.stack.guidance_group_branch)
            # one item at a time: Griffin-Lim's starting phase is drawn per call, so a batch would make an
            # item's audio depend on its neighbours
            length = round(self.max_seconds * self.sample_rate)
            wavs = [self.representation.decode(z[None].float(), length=length)[0] for z in latents]
        return [w.mean(0).clamp(-1, 1).cpu().numpy().astype(np.float32) for w in wavs]

    def _branches(self, metadata: list[dict[str, Any]], negative_metadata: list[dict[str, Any]] | None, scale: float,
                  group_scale: float) -> tuple[Any, Any, Any]:
        """(conditional, negative or None, group or None) FusedInputs of a batch's metadata: only the
        branches the guidance setting reads (the Denoiser batches those whose weights are not 0)."""
        if group_scale != 0.0:
            return self.stack.group_guidance_inputs(metadata, None, negative_metadata)
        if scale != 1.0:
            return (*self.stack.guidance_inputs(metadata, negative_metadata), None)
        return self.stack.fuse(self.stack.condition(metadata)), None, None  # no guidance: no other branch


def _noise_seed(seed: int, index: int, candidate: int) -> int:
    return (seed * 1_000_003 + index * 1_009 + candidate) % (2**63 - 1)


def _not_a_request(index: int, value: Any) -> GenerationRequest:
    raise GenerationInputError(f"requests[{index}]: expected a GenerationRequest; got {type(value).__name__}")


def _melody_waveform(melody: Any) -> tuple[torch.Tensor, int]:
    """(waveform [C, T], rate) of a melody given as a path or a (waveform, rate) pair."""
    from cuecraft.audio.io import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, load_audio

    if isinstance(melody, (str, os.PathLike)):
        return load_audio(melody, max_seconds=MAX_MELODY_SECONDS,
                          limit_hint=f"a melody recording is at most {MAX_MELODY_SECONDS:g} s")
    if isinstance(melody, tuple) and len(melody) == 2:
        wav, rate = melody
        tensor = torch.as_tensor(np.asarray(wav, dtype=np.float32) if not isinstance(wav, torch.Tensor) else wav)
        if tensor.ndim == 1:
            tensor = tensor[None]
        if tensor.ndim != 2 or tensor.shape[-1] == 0:
            raise GenerationInputError(f"expected a waveform [T] or [C, T]; got shape {tuple(tensor.shape)}")
        if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
            raise GenerationInputError(f"expected a positive int sample rate; got {short_repr(rate)}")
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE or tensor.shape[-1] > MAX_MELODY_SECONDS * rate:
            raise GenerationInputError(f"expected a rate in [{MIN_SAMPLE_RATE:,}, {MAX_SAMPLE_RATE:,}] Hz and at most "
                                       f"{MAX_MELODY_SECONDS:g} s; got {tensor.shape[-1]:,} samples at {rate:,} Hz")
        if not torch.isfinite(tensor).all():
            raise GenerationInputError("the waveform has NaN or infinite samples")
        return tensor.float(), rate
    raise GenerationInputError(f"expected a file path or (waveform, sample_rate); got {type(melody).__name__}")


BUILTIN_DIR = Path(__file__).resolve().parent.parent / "builtin" / "model"


def load_builtin(*, device: str | torch.device = "cpu") -> GenerationPipeline:
    """The built-in model shipped inside the package (see its ``MODEL_CARD.md``), ready to generate."""
    from cuecraft.errors import CheckpointError

    if not (BUILTIN_DIR / "model.json").is_file():
        raise CheckpointError(f"{BUILTIN_DIR}: the built-in model is not installed (model.json missing); "
                              "reinstall cuecraft or pass --model DIR")
    pipe = GenerationPipeline.from_dir(BUILTIN_DIR, device=device)
    pipe.name = "builtin"
    return pipe
