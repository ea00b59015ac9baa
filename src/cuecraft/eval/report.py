"""Writing an evaluation: report.json, the scored audio with sidecars, the plots, and the table.

Every file is written atomically (``cuecraft._files.atomic_write``). Layout of ``out``:

    report.json        {"metrics", "items", "ceiling", "floor", "settings", "wall_seconds"}
    audio/NNN.wav      the generated audio (generation runs only), 16-bit mono
    audio/NNN.json     what was asked (a prompt row: ``cuecraft eval --audio out/audio`` re-scores it)
    tempo.png key_confusion.png instrument_confusion.png   (plots; see cuecraft.eval.plots)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from cuecraft._files import atomic_write
from cuecraft._optional import require
from cuecraft.eval.run import EvalResult
from cuecraft.eval.score import METRICS


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    soundfile = require("soundfile", extra="audio", purpose="writing WAV files")
    samples = np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0), -1.0, 1.0)
    with atomic_write(path) as handle:
        soundfile.write(handle, samples, sample_rate, format="WAV", subtype="PCM_16")


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_outputs(result: EvalResult, out: str | Path, *, plots: bool = True) -> list[Path]:
    """Write ``result`` into ``out`` (see the module docstring); returns the files written."""
    out = Path(out)
    written = []
    if result.generated:
        for i, (audio, row) in enumerate(zip(result.audio, result.rows)):
            wav = out / "audio" / f"{i:03d}.wav"
            _write_wav(wav, audio, result.sample_rate)
            result.report["items"][i]["file"] = f"audio/{wav.name}"
            with atomic_write(wav.with_suffix(".json"), "w", encoding="utf-8") as handle:
                json.dump(row.to_json(), handle, indent=2)
            written += [wav, wav.with_suffix(".json")]
    if plots:
        from cuecraft.eval.plots import write_plots

        written += write_plots(result.report, out)
    with atomic_write(out / "report.json", "w", encoding="utf-8") as handle:
        json.dump(_json_ready(result.report), handle, indent=2)
    written.append(out / "report.json")
    return written


def format_table(report: dict[str, Any]) -> str:
    """The metrics of ``report`` beside its ceiling and floors, one row per metric."""
    columns = [("model" if report["settings"]["mode"] == "generate" else "audio", report["metrics"])]
    if "ceiling" in report:
        columns.append(("ceiling (corpus)", report["ceiling"]))
    for name in ("dropped", "shuffled"):
        if name in report.get("floor", {}):
            columns.append((f"floor: {name}", report["floor"][name]))
    names = [m for m in METRICS if any(m in values for _, values in columns)]
    rows = [[name] + [f"{values[name]:.3f}" if name in values else "-" for _, values in columns] for name in names]
    header = ["metric"] + [c for c, _ in columns]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
