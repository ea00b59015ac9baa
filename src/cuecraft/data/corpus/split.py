"""The corpus' training and held-out parts: combinations of lead instrument, key and drums.

A share of every (lead instrument, key, drums) combination is held out: corpus pieces with one
of them are written to ``heldout.jsonl``, the rest to ``train.jsonl``. A model trained on
``train.jsonl`` has heard every instrument, every key and both drum settings, but never these
pairings, so an evaluation on them (``cuecraft eval``'s shipped prompts) measures whether the
controls combine rather than whether the model remembers pieces.
"""

from __future__ import annotations

import itertools

import numpy as np

from cuecraft.audio.key import KEYS
from cuecraft.data.corpus.spec import LEAD_INSTRUMENTS

DRUM_LABELS = ("on", "off")  # the sidecar's "drums" field
HELDOUT_SHARE = 0.1  # of all combinations
_SPLIT_SEED = 20261201  # fixed: the split is part of the corpus format, not of a run


def _combinations() -> list[tuple[str, str, str]]:
    return list(itertools.product(LEAD_INSTRUMENTS, KEYS, DRUM_LABELS))


def heldout_combinations() -> frozenset[tuple[str, str, str]]:
    """The held-out (lead instrument, key, drums label) triples: ``HELDOUT_SHARE`` of all of them,
    drawn once from a fixed seed so that every corpus and every evaluation agree."""
    combos = _combinations()
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(combos))
    return frozenset(combos[i] for i in order[: round(HELDOUT_SHARE * len(combos))])


_HELDOUT = heldout_combinations()


def split_of(instrument: str, key: str, drums: str) -> str:
    """``"heldout"`` when the combination is held out, else ``"train"``."""
    return "heldout" if (instrument, key, drums) in _HELDOUT else "train"
