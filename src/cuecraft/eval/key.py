"""Key adherence: a measured key against the asked one.

- CK (``key_exact``): the same key (after ``parse_key``: "Am" and "A minor" are one key).
- CKD (``key_with_relative``): the same key, or its relative major / minor (C major and A minor),
  as Mustango's evaluation counts "correct key with duplicates".
- MIREX weighted score (``key_mirex``): ``mir_eval.key.weighted_score``: 1 same key, 0.5 a fifth
  away (same mode, the estimate's tonic a perfect fifth above the reference's), 0.3 relative,
  0.2 parallel, else 0.
"""

from __future__ import annotations

from cuecraft._optional import require
from cuecraft.audio.key import KEYS, key_parts, parse_key


def relative_key(key: str) -> str:
    """The relative minor of a major key (C major -> A minor) or relative major of a minor key."""
    tonic, mode = key_parts(key)
    return KEYS[(tonic + 9) % 12 + 12] if mode == "major" else KEYS[(tonic + 3) % 12]


def mirex_score(asked: str, measured: str) -> float:
    """``mir_eval.key.weighted_score(reference=asked, estimated=measured)`` on canonical names."""
    mir_eval_key = require("mir_eval.key", extra="eval", purpose="the MIREX key score")
    return float(mir_eval_key.weighted_score(parse_key(asked), parse_key(measured)))


def key_scores(asked: str, measured: str) -> dict[str, float | bool]:
    """CK, CKD and the MIREX score of one item (asked and measured in any ``parse_key`` spelling)."""
    asked, measured = parse_key(asked), parse_key(measured)
    return {"key_exact": asked == measured,
            "key_with_relative": measured in (asked, relative_key(asked)),
            "key_mirex": mirex_score(asked, measured)}
