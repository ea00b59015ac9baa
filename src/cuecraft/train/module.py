"""``DiffusionModule``: the conditioners and the DiT as one trainable module (what DDP wraps).

Notation: B batch, D latent channels, L frames.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cuecraft.fuser import FusedInputs


class DiffusionModule(nn.Module):
    """``forward(x [B, D, L], t [B], tokens, x_mask [B, L], known=None) -> prediction [B, D, L]``.

    ``tokens`` are the stack's tokens (``AudioBatch.tokens``); the provider turns them into
    conditions and the fuser (without an input) into the DiT's ``FusedInputs``, every step, so
    the conditioners' trainable parts learn with the backbone.
    """

    def __init__(self, stack: Any, dit: nn.Module):
        super().__init__()
        self.provider = stack.provider
        self.fuser = stack.fuser
        self.dit = dit

    def fuse(self, tokens: dict[str, Any]) -> FusedInputs:
        return self.fuser(self.provider(tokens))

    def forward(self, x: torch.Tensor, t: torch.Tensor, tokens: dict[str, Any],
                x_mask: torch.Tensor | None = None,
                known: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``known``: (latent [B, D, L], mask bool [B, L]) for a DiT with ``inpaint`` (None: not passed)."""
        if known is None:
            return self.dit(x, t, self.fuse(tokens), x_mask=x_mask)
        return self.dit(x, t, self.fuse(tokens), x_mask=x_mask, known=known)


def trainable_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that train (``requires_grad``), by name: what a checkpoint stores."""
    return {name: p.detach() for name, p in module.named_parameters() if p.requires_grad}


def trainable_shapes(module: nn.Module) -> dict[str, torch.Size]:
    return {name: p.shape for name, p in module.named_parameters() if p.requires_grad}


@torch.no_grad()
def load_trainable(module: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy ``tensors`` (checked beforehand) into the named parameters of ``module``."""
    parameters = dict(module.named_parameters())
    for name, value in tensors.items():
        parameters[name].copy_(value.to(parameters[name].dtype))
