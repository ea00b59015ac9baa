"""An evaluation run: generate for every prompt row (or read audio), score, and place the figures
between a ceiling and floors.

- ``evaluate_pipeline(pipe, rows, ...)``: generates with a cuecraft generation pipeline (any object
  with ``generate``, ``controls``, ``sample_rate`` and ``max_seconds``, e.g.
  ``cuecraft.pipelines.generate.GenerationPipeline``), batched, then scores. A row's controls
  that the model does not have are not given to it (they are still scored: the report's
  ``settings.controls_not_in_model`` lists them). Floors: ``dropped`` generates every request with
  no control at all (the unconditional model), ``shuffled`` gives request i the controls of row
  ``permutation[i]`` (a fixed-seed permutation without fixed points where possible); both are
  scored against the original asked values.
- ``evaluate_audio(folder, ...)``: scores existing WAVs, each with a JSON sidecar of its asked
  values (``cuecraft.eval.prompts``); no generation and no floor.
- The ceiling (both): the same metrics on corpus audio with the same asked values
  (``cuecraft.eval.references.ceiling_audio``).

Instrument accuracy needs an instrument classifier (``cuecraft.eval.instrument``), CLAP score a
CLAP model directory, novelty (SIM_AA) reference audio; each metric is absent without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cuecraft._bounded import MAX_SIDECAR_BYTES, is_folder, is_regular, parse_json, read_regular
from cuecraft._text import shorten
from cuecraft.errors import EvaluationInputError
from cuecraft.eval.prompts import MAX_SECONDS, PromptRow, parse_row, sidecar_fields
from cuecraft.eval.references import REFERENCE_RATE, ceiling_audio, resolve_path, row_reference
from cuecraft.eval.score import add_instruments, aggregate, score_item

SHUFFLE_SEED = 1234
MAX_SAMPLES = 2**27  # audio scored at once, all clips (512 MiB of float32 mono; 2.3 h at 16 kHz)
NOVELTY_THRESHOLD = 0.9  # cosine; SIM_AA@0.9
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class Extras:
    """Optional scorers: an instrument classifier, a CLAP model directory, novelty reference audio."""

    classifier: Any = None  # cuecraft.eval.instrument.InstrumentClassifier or None
    clap_model: str | None = None
    novelty_reference: Sequence[np.ndarray] | None = None  # training audio at novelty_rate
    novelty_rate: int = REFERENCE_RATE
    novelty_threshold: float = NOVELTY_THRESHOLD


@dataclass
class EvalResult:
    """A finished run: the report (JSON-ready) and the scored audio (float32 [T] each)."""

    report: dict[str, Any]
    audio: list[np.ndarray]
    sample_rate: int
    rows: list[PromptRow]
    generated: bool
    files: list[str] = field(default_factory=list)  # --audio: the scored WAVs


def _score_set(audio: Sequence[np.ndarray], rate: int, rows: Sequence[PromptRow], extras: Extras, *, pitch: bool,
               references: Sequence[Any], stage: str, progress: Progress | None) -> list[dict]:
    items = []
    for i, (wav, row, reference) in enumerate(zip(audio, rows, references, strict=True)):
        items.append(score_item(wav, rate, row, reference, pitch=pitch))
        if progress is not None:
            progress(stage, i + 1, len(rows))
    if extras.classifier is not None:
        add_instruments(items, extras.classifier.predict(list(audio), rate), rows)
    return items


def _extra_metrics(audio: Sequence[np.ndarray], rate: int, rows: Sequence[PromptRow], extras: Extras) -> dict:
    metrics: dict[str, float] = {}
    if extras.clap_model is not None:
        from cuecraft.eval.clap import clap_score

        pairs = [(wav, row.prompt) for wav, row in zip(audio, rows) if row.prompt is not None]
        if pairs:
            scores = clap_score(extras.clap_model, [w for w, _ in pairs], rate, [t for _, t in pairs])
            metrics["clap_score"] = float(np.mean(scores))
    if extras.classifier is not None and extras.novelty_reference:
        from cuecraft.eval.novelty import sim_aa

        generated = extras.classifier.embed(list(audio), rate)
        reference = extras.classifier.embed(list(extras.novelty_reference), extras.novelty_rate)
        metrics["novelty_sim_aa"] = float(sim_aa(generated, reference, extras.novelty_threshold))
    return metrics


def sample_statistics(pipe: Any, audio: Sequence[np.ndarray], rate: int, data: Sequence[np.ndarray],
                      extras: Extras) -> dict[str, float]:
    """Do the generated clips look like the data? (``cuecraft.eval.sample_stats``)

    Both sets go through the same round trip: each waveform is encoded by the model's own
    representation (``pipe.representation``), so the generated clips are measured as the model
    made them (decoding and re-encoding a latent changes its roughness little) and the data
    (``data``: the corpus renders of the prompt set at ``rate``) as the model was trained on it.
    Gives roughness, standard deviation, band-mean gap and band-std ratio as ratios to the data's;
    with a classifier, the Fréchet distance between the classifier embeddings of generated and
    data clips, and its ratio to the distance between the two halves of the data (how far apart
    two samples of the data itself are); it needs 2 generated clips and 4 data clips.
    """
    import torch

    from cuecraft.eval.sample_stats import frechet_distance, sample_quality

    representation = getattr(pipe, "representation", None)
    if representation is None or len(data) < 2 or not audio:
        return {}

    def encode(clips: Sequence[np.ndarray]) -> torch.Tensor:
        length = min(len(c) for c in clips)
        wav = torch.from_numpy(np.stack([np.asarray(c[:length], dtype=np.float32) for c in clips]))[:, None]
        with torch.no_grad():
            return torch.cat([representation.encode(wav[i:i + 16].to(pipe.device)).float().cpu()
                              for i in range(0, len(wav), 16)])

    metrics = {f"sample_{k}": v for k, v in sample_quality(encode(audio), encode(data)).summary().items()}
    if extras.classifier is not None and len(audio) >= 2 and len(data) >= 4:  # each half of the data >= 2
        generated, reference = extras.classifier.embed(list(audio), rate), extras.classifier.embed(list(data), rate)
        half = len(reference) // 2
        metrics["frechet_classifier"] = frechet_distance(generated, reference)
        metrics["frechet_classifier_data_halves"] = frechet_distance(reference[:half], reference[half:])
        metrics["frechet_classifier_ratio"] = (metrics["frechet_classifier"]
                                               / max(metrics["frechet_classifier_data_halves"], 1e-12))
    return metrics


def _ceiling(rows: Sequence[PromptRow], extras: Extras, *, pitch: bool, references: Sequence[Any],
             progress: Progress | None) -> tuple[dict[str, float], int]:
    kept = [(row, audio, ref) for row, ref in zip(rows, references) if (audio := ceiling_audio(row)) is not None]
    if not kept:
        return {}, 0
    ceiling_rows, audio, refs = [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]
    items = _score_set(audio, REFERENCE_RATE, ceiling_rows, extras, pitch=pitch, references=refs, stage="ceiling",
                       progress=progress)
    return aggregate(items), len(kept)


def shuffle_permutation(count: int, seed: int = SHUFFLE_SEED) -> list[int]:
    """A fixed-seed permutation of ``range(count)`` with no fixed point (for count >= 2)."""
    order = [int(i) for i in np.random.default_rng(seed).permutation(count)]
    for i in range(count):
        if order[i] == i and count > 1:
            j = (i + 1) % count
            order[i], order[j] = order[j], order[i]
    return order


ASKED_CONTROLS = ("prompt", "bpm", "key", "instrument", "drums", "chords", "time_signature", "downbeat_offset")


def _controls(row: PromptRow, reference: Any, names: set[str]) -> dict[str, Any]:
    values: dict[str, Any] = {n: getattr(row, n) for n in ASKED_CONTROLS if getattr(row, n) is not None and n in names}
    if reference is not None and reference.audio.size and "melody" in names:
        values["melody"] = (reference.audio, reference.sample_rate)
    return values


def _request(controls: dict[str, Any], seconds: float) -> Any:
    """A GenerationRequest: its own fields as such, other controls (a model's chords, metre) in ``extra``."""
    from cuecraft.pipelines.generate import GenerationRequest

    known = set(GenerationRequest.__dataclass_fields__) - {"extra"}
    extra = {k: v for k, v in controls.items() if k not in known}
    return GenerationRequest(**{k: v for k, v in controls.items() if k in known}, extra=extra, seconds=seconds)


def evaluate_pipeline(pipe: Any, rows: Sequence[PromptRow], *, steps: int = 25, guidance: float | None = None,
                      guidance_text: float | None = None,
                      seed: int = 0, batch_size: int = 8, seconds: float | None = None, floor: bool = True,
                      ceiling: bool = True, pitch: bool = False, extras: Extras | None = None,
                      progress: Progress | None = None) -> EvalResult:
    """Generate for every row with ``pipe``, score, and add the ceiling and floors (see the module
    docstring). ``seconds`` overrides every row's length; lengths are capped at ``pipe.max_seconds``."""
    from cuecraft.pipelines.generate import GenerationRequest

    extras = extras or Extras()
    start = time.perf_counter()
    rows = list(rows)
    names = set(pipe.controls)
    references = [row_reference(row) for row in rows]
    lengths = [min(float(seconds or row.seconds or pipe.max_seconds), float(pipe.max_seconds)) for row in rows]
    asked_names = {n for row in rows for n in row.asked()} - {"melody_seed"}
    if any(row.melody_seed is not None for row in rows):
        asked_names.add("melody")
    missing = sorted(asked_names - names)

    def generate(requests: list, stage: str) -> list[np.ndarray]:
        def step(done: int, total: int) -> None:
            if progress is not None:
                progress(stage, done, total)

        group = {} if guidance_text is None else {"guidance_text": guidance_text}  # only pipelines that have it
        results = pipe.generate(requests, steps=steps, guidance=guidance, seed=seed, batch_size=batch_size, **group,
                                progress=step, measured=False)
        return [np.asarray(r.audio[0], dtype=np.float32) for r in results]

    requests = [_request(_controls(row, ref, names), length) for row, ref, length in zip(rows, references, lengths)]
    audio = generate(requests, "generate")
    rate = int(pipe.sample_rate)
    items = _score_set(audio, rate, rows, extras, pitch=pitch, references=references, stage="score", progress=progress)
    metrics = {**aggregate(items), **_extra_metrics(audio, rate, rows, extras)}
    report: dict[str, Any] = {"metrics": metrics, "items": items}
    ceiling_rows = None
    if ceiling:
        report["ceiling"], ceiling_rows = _ceiling(rows, extras, pitch=pitch, references=references,
                                                   progress=progress)
        data = [clip for row in rows if (clip := ceiling_audio(row)) is not None]
        if rate == REFERENCE_RATE:
            metrics.update(sample_statistics(pipe, audio, rate, data, extras))
    if floor:
        dropped = generate([GenerationRequest(seconds=length) for length in lengths], "floor: dropped")
        order = shuffle_permutation(len(rows))
        shuffled = generate([_request(_controls(rows[j], references[j], names), lengths[i])
                             for i, j in enumerate(order)], "floor: shuffled")
        report["floor"] = {}
        for name, floor_audio in (("dropped", dropped), ("shuffled", shuffled)):
            floor_items = _score_set(floor_audio, rate, rows, extras, pitch=pitch, references=references,
                                     stage=f"score {name}", progress=progress)
            report["floor"][name] = aggregate(floor_items)
        report["floor"]["shuffle_permutation"] = order
    report["settings"] = {"mode": "generate", "rows": len(rows), "steps": steps, "guidance": guidance,
                          "guidance_text": guidance_text, "seed": seed,
                          "batch_size": batch_size, "seconds": sorted(set(lengths)), "sample_rate": rate,
                          "controls_in_model": sorted(names), "controls_not_in_model": missing,
                          "pitch_accuracy": pitch, "classifier": extras.classifier is not None,
                          "clap_model": extras.clap_model, "floor": floor, "ceiling_rows": ceiling_rows}
    report["wall_seconds"] = round(time.perf_counter() - start, 2)
    return EvalResult(report, audio, rate, rows, generated=True)


class AudioFolder(NamedTuple):
    """What ``read_audio_folder`` found: the WAVs, their sidecar rows, the sidecar fields ignored."""

    wavs: list[Path]
    rows: list[PromptRow]
    ignored: list[str]  # AudioCraft's and the corpus' fields that are not asked values (cuecraft.eval.prompts)


def read_audio_folder(folder: str | Path) -> AudioFolder:
    """The WAVs of ``folder`` (sorted, not recursive) and their sidecar rows (NAME.json beside NAME.wav).

    A sidecar is read only when it is a regular file of at most MAX_SIDECAR_BYTES (a FIFO or a link
    to a device is refused, never waited on), as JSON nested at most 64 deep."""
    folder = Path(folder)
    if not is_folder(folder):
        raise EvaluationInputError(f"--audio {shorten(str(folder), 300)}: no such folder; give a folder of WAVs "
                                   "with JSON sidecars")
    wavs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav" and is_regular(p))
    if not wavs:
        raise EvaluationInputError(f"--audio {folder}: holds no .wav files")
    rows, ignored = [], set()
    for wav in wavs:
        sidecar = wav.with_suffix(".json")
        if not sidecar.exists():
            raise EvaluationInputError(f"{wav}: no sidecar {sidecar.name} with the asked values beside it")
        try:
            data = parse_json(read_regular(sidecar, MAX_SIDECAR_BYTES))
        except (OSError, ValueError) as error:  # not a regular file, too large, not JSON, nested too deep
            raise EvaluationInputError(f"{sidecar}: not readable as JSON ({error})") from None
        data, left_out = sidecar_fields(data, str(sidecar))
        ignored.update(left_out)
        row = parse_row(data, str(sidecar), sidecar=True)
        if row.melody_path is not None:
            from dataclasses import replace

            row = replace(row, melody_path=resolve_path(row.melody_path, sidecar))
        rows.append(row)
    return AudioFolder(wavs, rows, sorted(ignored))


LIMIT_HINT = f"cuecraft eval scores clips of at most {MAX_SECONDS:g} s; cut longer audio into clips"


def load_clips(paths: Sequence[Path], what: str) -> tuple[list[np.ndarray], int]:
    """Mono float32 [T] clips of the audio files ``paths`` (one sample rate), in bounded memory:
    every header is checked first (each file at most MAX_SECONDS, all of them at most MAX_SAMPLES
    samples), then the files are decoded one at a time. ``what`` names the set in errors."""
    from cuecraft.audio.io import audio_info, load_audio

    total = 0
    for path in paths:
        frames, _, _ = audio_info(path, max_seconds=MAX_SECONDS, limit_hint=LIMIT_HINT)
        total += frames
        if total > MAX_SAMPLES:
            raise EvaluationInputError(f"{what}: more than {MAX_SAMPLES:,} samples of audio in all (at {path.name}); "
                                       "cuecraft eval scores at most that many at once: score the folder in parts")
    clips, rates = [], set()
    for path in paths:
        wav, rate = load_audio(path, max_seconds=MAX_SECONDS, limit_hint=LIMIT_HINT)
        clips.append(wav.mean(dim=0).numpy().astype(np.float32))  # only the mono clip is kept
        rates.add(rate)
    if len(rates) > 1:
        raise EvaluationInputError(f"{what}: the WAVs have several sample rates ({sorted(rates)}); give one rate")
    return clips, rates.pop() if rates else REFERENCE_RATE


def evaluate_audio(folder: str | Path, *, ceiling: bool = True, pitch: bool = False, extras: Extras | None = None,
                   progress: Progress | None = None) -> EvalResult:
    """Score the WAVs of ``folder`` against their sidecars (see ``read_audio_folder``); no floor.
    Every clip is at most MAX_SECONDS long and all of them at most MAX_SAMPLES samples (``load_clips``)."""

    extras = extras or Extras()
    start = time.perf_counter()
    wavs, rows, ignored = read_audio_folder(folder)
    audio, rate = load_clips(wavs, f"--audio {folder}")
    references = [row_reference(row) for row in rows]
    items = _score_set(audio, rate, rows, extras, pitch=pitch, references=references, stage="score", progress=progress)
    for item, path in zip(items, wavs):
        item["file"] = path.name
    report: dict[str, Any] = {"metrics": {**aggregate(items), **_extra_metrics(audio, rate, rows, extras)},
                              "items": items}
    ceiling_rows = None
    if ceiling:
        report["ceiling"], ceiling_rows = _ceiling(rows, extras, pitch=pitch, references=references,
                                                   progress=progress)
    report["settings"] = {"mode": "audio", "folder": str(folder), "rows": len(rows), "sample_rate": rate,
                          "pitch_accuracy": pitch, "classifier": extras.classifier is not None,
                          "clap_model": extras.clap_model, "ceiling_rows": ceiling_rows,
                          "ignored_sidecar_fields": ignored}
    report["wall_seconds"] = round(time.perf_counter() - start, 2)
    return EvalResult(report, audio, rate, rows, generated=False, files=[p.name for p in wavs])
