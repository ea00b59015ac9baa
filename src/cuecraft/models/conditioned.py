"""``ConditionedModel``: a backbone and its conditioning, from metadata to prediction.

It plays the part of stable-audio-tools' ConditionedDiffusionModelWrapper. Notation: B batch,
S cross-attention length, P prepended length, C channels, T time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cuecraft.errors import ConditioningInputError
from cuecraft.guidance import apply_guidance, guidance_batch
from cuecraft.stack import ConditioningStack


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
        given) or their null conditions, for one backbone pass. ``train`` applies the config's
        dropouts (not with guidance).
        """
        provider = self.stack.provider
        if negative_metadata is not None and not guidance:
            raise ConditioningInputError("negative metadata only takes part with guidance=True")
        if guidance:
            attributes = provider.to_attributes(metadata)
            negative = None if negative_metadata is None else provider.to_attributes(negative_metadata)
            conditions = self.stack.condition(guidance_batch(attributes, negative))
        else:
            conditions = self.stack.condition(metadata, train=train, generator=generator)
        fused = self.stack.fuse(conditions)
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
