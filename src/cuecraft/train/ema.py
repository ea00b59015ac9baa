"""An exponential moving average of a model's trainable weights: the model a run exports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    """Shadow copies (float32) of ``module``'s trainable parameters, updated after each step.

    ``decay`` ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates n, so the
    average does not stay anchored to the random initialisation in short runs.
    """

    def __init__(self, module: nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {name: p.detach().float().clone() for name, p in module.named_parameters() if p.requires_grad}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        decay = self.current_decay()
        for name, p in module.named_parameters():
            if name in self.shadow:
                self.shadow[name].lerp_(p.detach().float(), 1.0 - decay)
        self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, tensors: dict[str, torch.Tensor], updates: int) -> None:
        missing, unexpected = sorted(set(self.shadow) - set(tensors)), sorted(set(tensors) - set(self.shadow))
        if missing or unexpected:
            raise KeyError(f"EMA weights do not fit the model: missing {missing or 'none'}, "
                           f"unexpected {unexpected or 'none'}")
        for name, value in tensors.items():
            self.shadow[name].copy_(value)
        self.updates = int(updates)

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Write the averaged weights into ``module`` (in its dtype)."""
        for name, p in module.named_parameters():
            if name in self.shadow:
                p.copy_(self.shadow[name].to(p.dtype))

    @contextmanager
    def applied(self, module: nn.Module) -> Iterator[nn.Module]:
        """``module`` with the averaged weights inside the block, its own weights restored after."""
        saved = {name: p.detach().clone() for name, p in module.named_parameters() if name in self.shadow}
        self.copy_to(module)
        try:
            yield module
        finally:
            with torch.no_grad():
                for name, p in module.named_parameters():
                    if name in saved:
                        p.copy_(saved[name])
