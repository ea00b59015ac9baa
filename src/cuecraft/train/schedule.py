"""The learning-rate schedule: linear warm-up, then cosine decay to ``lr * min_lr_ratio``.

A pure function of the step, so a resumed run needs no scheduler state.
"""

from __future__ import annotations

import math


def learning_rate(step: int, *, lr: float, warmup_steps: int, max_steps: int, min_lr_ratio: float = 0.0) -> float:
    """The learning rate of optimizer step ``step`` (0-based).

    Warm-up: ``lr * (step + 1) / warmup_steps`` for the first ``warmup_steps`` steps; then a half
    cosine from ``lr`` down to ``lr * min_lr_ratio`` at ``max_steps - 1``; constant after.
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(1, max_steps - 1 - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    floor = lr * min_lr_ratio
    return floor + (lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
