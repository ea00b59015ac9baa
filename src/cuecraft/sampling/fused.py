"""Batch operations on ``FusedInputs``: concatenation along B (for one guided model pass), size.

Notation: B batch, S cross-attention length, P prepended length, T input length, D width.
"""

from __future__ import annotations

from dataclasses import fields

import torch
import torch.nn.functional as F

from cuecraft.errors import FusionError
from cuecraft.fuser import FusedInputs

# Sequences that may differ in length between the parts: padded at the end with zeros and a
# False mask (never attended), as the fuser pads nothing itself.
_PADDED = (("cross_attention_src", "cross_attention_mask"), ("prepend_cond", "prepend_mask"))


def fused_batch_size(fused: FusedInputs) -> int | None:
    """B of ``fused`` (None when every field is None); FusionError when the fields disagree."""
    sizes = {f.name: getattr(fused, f.name).shape[0] for f in fields(fused) if getattr(fused, f.name) is not None}
    if len(set(sizes.values())) > 1:
        raise FusionError(f"FusedInputs fields disagree on the batch size: {sizes}")
    return next(iter(sizes.values()), None)


def _pad_to(tensor: torch.Tensor, length: int) -> torch.Tensor:
    """[B, S, ...] -> [B, length, ...], zeros (or False) appended along dim 1."""
    extra = length - tensor.shape[1]
    if extra == 0:
        return tensor
    padding = [0, 0] * (tensor.dim() - 2) + [0, extra]  # F.pad lists the last dim first
    return F.pad(tensor, padding)


def concat_fused(*parts: FusedInputs) -> FusedInputs:
    """Concatenate ``FusedInputs`` along the batch: [B_1 + B_2 + ..., ...] for every field.

    The cross-attention source and the prepended tokens may differ in length S / P between the
    parts (a long prompt and a short negative one): shorter ones are padded at the end with zero
    tokens whose mask is False, so the padding is never attended and every real token keeps its
    position. A part given without a mask counts as fully valid. ``input`` / ``input_mask`` (which
    hold the prepended tokens in front of the input, so cannot be padded at their end),
    ``global_cond`` and ``input_concat`` must match in shape beyond B. Every part must carry the
    same fields (a null condition is zeros, never a missing field). Inputs are not modified.
    """
    if not parts or not all(isinstance(p, FusedInputs) for p in parts):
        raise FusionError(f"concat_fused takes FusedInputs; got {[type(p).__name__ for p in parts]}")
    for part in parts:
        fused_batch_size(part)  # each part consistent on its own
    values: dict[str, torch.Tensor | None] = {}
    padded_names = {name for pair in _PADDED for name in pair}
    for tokens_name, mask_name in _PADDED:
        tokens = [getattr(p, tokens_name) for p in parts]
        _check_presence(tokens_name, tokens)
        if tokens[0] is None:
            values[tokens_name] = values[mask_name] = None
            continue
        widths = {t.shape[2:] for t in tokens}
        if len(widths) > 1:
            raise FusionError(f"{tokens_name}: the parts differ in width: {[tuple(t.shape) for t in tokens]}")
        masks = [getattr(p, mask_name) if getattr(p, mask_name) is not None
                 else torch.ones(t.shape[:2], dtype=torch.bool, device=t.device) for p, t in zip(parts, tokens)]
        length = max(t.shape[1] for t in tokens)
        values[tokens_name] = torch.cat([_pad_to(t, length) for t in tokens], dim=0)
        values[mask_name] = torch.cat([_pad_to(m, length) for m in masks], dim=0)
    for f in fields(FusedInputs):
        if f.name in padded_names:
            continue
        tensors = [getattr(p, f.name) for p in parts]
        _check_presence(f.name, tensors)
        if tensors[0] is None:
            values[f.name] = None
            continue
        shapes = {t.shape[1:] for t in tensors}
        if len(shapes) > 1:
            raise FusionError(f"{f.name}: the parts differ in shape beyond the batch: "
                              f"{[tuple(t.shape) for t in tensors]}")
        values[f.name] = torch.cat(tensors, dim=0)
    return FusedInputs(**values)


def _check_presence(name: str, tensors: list[torch.Tensor | None]) -> None:
    present = [t is not None for t in tensors]
    if any(present) and not all(present):
        raise FusionError(f"{name}: present in some parts and not in others ({present}); conditions of every "
                          "part must feed the same roles (a null condition is zeros, not a missing field)")
