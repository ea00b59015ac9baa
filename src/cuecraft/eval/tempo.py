"""Tempo adherence: a measured tempo (bpm) against the asked one.

- ``within_tolerance``: |measured - asked| <= 4 % of asked (the tolerance of MIREX tempo
  estimation's "Accuracy 1"); with ``octave=True`` a measured tempo at double or half the asked one
  also counts (MIREX's "Accuracy 2" idea, restricted to factors 2 and 1/2).
- ``tempo_bin`` / TB and TBT: Mustango's tempo bins (Melechovsky et al. 2024, "Mustango: Toward
  Controllable Text-to-Music Generation"; its evaluation script) with the edges
  ``TEMPO_BIN_EDGES = [40, 60, 70, 90, 110, 140, 160, 210]`` (the Grave .. Prestissimo marks).
  Edge rule, as Mustango computes it (``np.sum(bpm > edges)``): a tempo's bin is the number of
  edges strictly below it, so bins are left-open, right-closed - (40, 60] is bin 1 and exactly
  60 bpm is in bin 1, 60.5 bpm in bin 2; at most 40 bpm is bin 0, above 210 bin 8. TB: the measured
  tempo falls in the asked tempo's bin; TBT ("with tolerance"): in that bin or a neighbouring one
  (bin difference < 2).

A measured tempo of 0 (no beat found) fails every test but is still a defined result.
"""

from __future__ import annotations

import bisect
import math

from cuecraft.errors import EvaluationInputError

TEMPO_BIN_EDGES = (40, 60, 70, 90, 110, 140, 160, 210)
TEMPO_TOLERANCE = 0.04  # relative; MIREX tempo accuracy


def _check(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise EvaluationInputError(f"{name}: a tempo must be a finite number of bpm >= 0; got {value!r}")
    return float(value)


def tempo_bin(bpm: float) -> int:
    """Mustango's bin of ``bpm``: the number of ``TEMPO_BIN_EDGES`` strictly below it (0-8)."""
    return bisect.bisect_left(TEMPO_BIN_EDGES, _check("bpm", bpm))


def within_tolerance(asked: float, measured: float, *, tolerance: float = TEMPO_TOLERANCE,
                     octave: bool = False) -> bool:
    """Whether ``measured`` is within ``tolerance`` (relative) of ``asked``; with ``octave`` also of
    2 x asked or asked / 2."""
    asked, measured = _check("asked", asked), _check("measured", measured)
    if asked <= 0:
        raise EvaluationInputError(f"asked: an asked tempo must be > 0 bpm; got {asked!r}")
    targets = (asked, 2 * asked, asked / 2) if octave else (asked,)
    return any(abs(measured - target) <= tolerance * target for target in targets)


def tempo_scores(asked: float, measured: float) -> dict[str, bool]:
    """The four tempo results of one item: within 4 %, within 4 % at any octave, TB, TBT."""
    asked_bin, measured_bin = tempo_bin(asked), tempo_bin(measured)
    return {"tempo_within_4pct": within_tolerance(asked, measured),
            "tempo_within_4pct_octave": within_tolerance(asked, measured, octave=True),
            "tempo_bin": asked_bin == measured_bin,
            "tempo_bin_tolerant": abs(asked_bin - measured_bin) < 2}
