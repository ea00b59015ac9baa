"""The plots of an evaluation, as PNG (matplotlib, extra ``eval``; no global backend is set: each
figure draws on its own Agg canvas).

- ``tempo.png``: asked against measured tempo, one point per item, with the +-4 % band and the
  double / half tempo lines.
- ``key_confusion.png``: 24 x 24 counts, rows the asked key, columns the measured key (KEYS order:
  the 12 major keys from C, then the 12 minor keys).
- ``instrument_confusion.png``: asked against classified lead instrument (when a classifier ran).
A plot whose data no item has (no asked tempo, no classifier) is not drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cuecraft._files import atomic_write
from cuecraft._optional import require
from cuecraft.audio.key import KEYS


def _figure(width: float, height: float):
    require("matplotlib", extra="eval", purpose="the evaluation plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    with atomic_write(path) as handle:
        figure.savefig(handle, format="png", bbox_inches="tight")
    return path


def confusion_matrix(asked: list[str], measured: list[str], labels: list[str]) -> np.ndarray:
    """Counts [len(labels), len(labels)]: row = asked label, column = measured label; pairs with a
    label outside ``labels`` are left out."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, m in zip(asked, measured):
        if a in index and m in index:
            matrix[index[a], index[m]] += 1
    return matrix


def _confusion_plot(matrix: np.ndarray, labels: list[str], title: str, path: Path, size: float) -> Path:
    figure = _figure(size, size)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    axes.set_xlabel("measured")
    axes.set_ylabel("asked")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.046)
    return _save(figure, path)


def write_plots(report: dict[str, Any], out: str | Path) -> list[Path]:
    """Draw the plots of ``report`` (its ``items``) into ``out``; returns the files written."""
    out = Path(out)
    items = report["items"]
    written = []
    tempo = [(i["asked"]["bpm"], i["measured"]["tempo"]) for i in items if "bpm" in i["asked"]]
    if tempo:
        asked, measured = np.array(tempo, dtype=np.float64).T
        figure = _figure(5, 5)
        axes = figure.add_subplot()
        line = np.linspace(min(40.0, asked.min()), max(220.0, asked.max()), 2)
        axes.fill_between(line, line * 0.96, line * 1.04, color="0.85", label="within 4 %")
        axes.plot(line, line * 2, ":", color="0.5", label="double / half")
        axes.plot(line, line / 2, ":", color="0.5")
        axes.scatter(asked, measured, s=14)
        axes.set_xlabel("asked bpm")
        axes.set_ylabel("measured bpm")
        axes.set_title("tempo")
        axes.legend(loc="upper left", fontsize=8)
        written.append(_save(figure, out / "tempo.png"))
    keys = [(i["asked"]["key"], i["measured"]["key"]) for i in items if "key" in i["asked"]]
    if keys:
        matrix = confusion_matrix([a for a, _ in keys], [m for _, m in keys], list(KEYS))
        written.append(_confusion_plot(matrix, list(KEYS), "key", out / "key_confusion.png", 8))
    instruments = [(i["asked"]["instrument"], i["measured"]["instrument"]) for i in items
                   if "instrument" in i["asked"] and "instrument" in i["measured"]]
    if instruments:
        labels = sorted({a for a, _ in instruments} | {m for _, m in instruments})
        matrix = confusion_matrix([a for a, _ in instruments], [m for _, m in instruments], labels)
        written.append(_confusion_plot(matrix, labels, "lead instrument", out / "instrument_confusion.png", 6))
    return written
