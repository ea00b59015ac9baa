"""``ConditionedModel``: a backbone and its conditioning, from metadata to prediction.

It plays the part of stable-audio-tools' ConditionedDiffusionModelWrapper. Notation: B batch,
S cross-attention length, P prepended length, C channels, T time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cuecraft.errors import ConditioningInputError, FusionError
from cuecraft.fuser import FusedInputs
from cuecraft.guidance import apply_guidance
from cuecraft.stack import ConditioningStack

# (FusedInputs field, its mask field or None): the fields the backbone reads; sequences of the
# two guidance halves are right-padded to one length (zeros, mask False) before they are stacked.
_FIELDS = (("cross_attention_src", "cross_attention_mask"), ("prepend_cond", "prepend_mask"),
           ("global_cond", None), ("input_concat", None))


def _pad_to(value: torch.Tensor, length: int) -> torch.Tensor:
    """``value`` [B, T, ...] or [B, T] right-padded with zeros (False) to ``length`` along T."""
    if value.shape[1] == length:
        return value
    pad = value.new_zeros((value.shape[0], length - value.shape[1], *value.shape[2:]))
    return torch.cat([value, pad], dim=1)


def _stack_halves(conditional: FusedInputs, other: FusedInputs) -> FusedInputs:
    """One [2B, ...] FusedInputs: the conditional half, then the unconditional / negative one."""
    fields: dict[str, torch.Tensor | None] = {}
    for name, mask_name in _FIELDS:
        first, second = getattr(conditional, name), getattr(other, name)
        if (first is None) != (second is None):
            raise FusionError(f"guidance: {name} is given in one branch only")
        if first is None:
            continue
        if name != "global_cond":
            length = max(first.shape[1], second.shape[1])
            first, second = _pad_to(first, length), _pad_to(second, length)
            if mask_name is not None:
                masks = [_pad_to(getattr(half, mask_name), length) for half in (conditional, other)]
                fields[mask_name] = torch.cat(masks)
        fields[name] = torch.cat([first, second])
    return FusedInputs(**fields)


class ConditionedModel(nn.Module):
    """Turn metadata into the backbone's keyword inputs and call it.

    The inputs, each present only when a condition feeds it:
        cross_attn_cond [B, S, D], cross_attn_mask bool [B, S],
        global_cond [B, ΣD], prepend_cond [B, P, D], prepend_cond_mask bool [B, P],
        input_concat_cond [B, ΣD, T_c] (channels first, as diffusion backbones take it).
    The backbone is called as ``backbone(x, t, **inputs, **kwargs)``.
    """

    def __init__(self, stack: ConditioningStack, backbone: nn.Module):
        super().__init__()
        self.stack = stack
        self.provider = stack.provider  # registered, so .to() and state_dict cover the conditioners
        self.backbone = backbone

    @classmethod
    def from_config(cls, config: Any, backbone: nn.Module, *, seed: int | None = None) -> ConditionedModel:
        """Build the conditioning from a config (path, mapping or loaded config) around ``backbone``."""
        from cuecraft.config.build import build_stack

        return cls(build_stack(config, seed=seed), backbone)

    def conditioning_inputs(self, metadata: Sequence[Any], negative_metadata: Sequence[Any] | None = None, *,
                            guidance: bool = False, train: bool = False,
                            generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Metadata (dicts, ConditioningAttributes, ...) -> the backbone's conditioning inputs.

        With ``guidance`` the batch is doubled: the items, then their negative metadata (when
        given) or their unconditional branch, for one backbone pass, both from
        ``stack.guidance_inputs`` (so the config's ``guidance.keep_roles`` / ``guidance.null``
        apply: a stable-audio-tools config keeps the global conditions in both halves). The
        halves' cross-attention and prepend sequences are right-padded to one length (zeros,
        mask False). ``train`` applies the config's dropouts (not with guidance).
        """
        if negative_metadata is not None and not guidance:
            raise ConditioningInputError("negative metadata only takes part with guidance=True")
        if guidance:
            fused = _stack_halves(*self.stack.guidance_inputs(metadata, negative_metadata))
        else:
            fused = self.stack.fuse(self.stack.condition(metadata, train=train, generator=generator))
        inputs = {
            "cross_attn_cond": fused.cross_attention_src,
            "cross_attn_mask": fused.cross_attention_mask,
            "global_cond": fused.global_cond,
            "prepend_cond": fused.prepend_cond,
            "prepend_cond_mask": fused.prepend_mask,
            "input_concat_cond": None if fused.input_concat is None else fused.input_concat.transpose(1, 2),
        }
        return {name: value for name, value in inputs.items() if value is not None}

    def forward(self, x: torch.Tensor, t: torch.Tensor, metadata: Sequence[Any],
                negative_metadata: Sequence[Any] | None = None, *, cfg_scale: float | None = None,
                rescale_phi: float | None = None, **kwargs: Any) -> torch.Tensor:
        """Predict for ``x`` [B, ...] at ``t`` [B], with classifier-free guidance when the scale
        (default: the config's ``guidance.scale``) is not 1."""
        scale = self.stack.guidance_scale if cfg_scale is None else cfg_scale
        phi = self.stack.rescale_phi if rescale_phi is None else rescale_phi
        if len(metadata) != x.shape[0]:
            raise ConditioningInputError(f"{len(metadata)} metadata items for a batch of {x.shape[0]}")
        if scale == 1.0:
            if negative_metadata is not None:
                raise ConditioningInputError("negative metadata needs guidance: give cfg_scale other than 1")
            return self.backbone(x, t, **self.conditioning_inputs(metadata), **kwargs)
        inputs = self.conditioning_inputs(metadata, negative_metadata, guidance=True)
        prediction = self.backbone(torch.cat([x, x]), torch.cat([t, t]), **inputs, **kwargs)
        return apply_guidance(prediction, scale, phi)
