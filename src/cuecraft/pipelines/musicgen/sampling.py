"""Choosing each step's tokens from the decoder's logits: guidance, then the sampling warpers.

Notation: R sequences (M) times K codebooks, V the codebook size; logits are float32 [R, V].

Order and arithmetic are transformers' ``generate`` for MusicGen (so that the same logits give
the same tokens, and the same generator draws the same samples): classifier-free guidance
``u + (c - u) * s``, then temperature (``logits / t``), top-k (every logit below the k-th largest
set to -inf), top-p (the smallest set of tokens whose probability exceeds p kept, at least one),
then ``softmax`` and one ``torch.multinomial`` draw per row, or the argmax.

AudioCraft's ``LMModel._sample_next_token`` applies the same guidance and temperature; it uses
top-p *instead of* top-k when p > 0 (here both apply, top-k first: pass ``top_k=0`` for
AudioCraft's top-p) and draws from the renormalised top-k probabilities (the same distribution,
drawn differently). Temperature 0 is greedy, as in AudioCraft.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cuecraft.guidance import combine_guidance
from cuecraft.guidance_groups import branch_weights, combine_group_guidance

BRANCHES = ("conditional", "group", "unconditional")


@dataclass(frozen=True)
class Guidance:
    """Guidance of a token step. scale: s, all conditions (AudioCraft's ``cfg_coef``);
    group_scale: s_g, the text on top of it (double CFG; 0: off). See ``guidance_groups``."""

    scale: float
    group_scale: float = 0.0

    def branches(self) -> tuple[str, ...]:
        """The predictions the combination reads, in batch order: the conditional one always,
        the group branch when s_g != 0, the unconditional (or negative) one when its weight is not 0."""
        if self.group_scale == 0.0:
            return BRANCHES[:1] if self.scale == 1.0 else (BRANCHES[0], BRANCHES[2])
        weight_u = branch_weights(self.scale, self.group_scale, "without")[2]
        return BRANCHES[:2] if weight_u == 0.0 else BRANCHES

    def combine(self, predictions: dict[str, torch.Tensor]) -> torch.Tensor:
        """The guided logits [R, V] from ``{branch: logits [R, V]}``."""
        conditional = predictions["conditional"]
        if self.group_scale == 0.0:
            if self.scale == 1.0:
                return conditional
            return combine_guidance(conditional, predictions["unconditional"], self.scale)
        return combine_group_guidance(conditional, predictions["group"], predictions.get("unconditional"),
                                      self.scale, self.group_scale, "without")


@dataclass(frozen=True)
class Sampler:
    """Token selection. top_k: keep the k most likely tokens (0: all); top_p: keep the most likely
    tokens up to probability p (0 or 1: all); temperature: divides the logits (0: greedy)."""

    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0

    @property
    def greedy(self) -> bool:
        """Argmax decoding: temperature 0 or top-k 1 (the same tokens as sampling would give,
        without drawing from the generator)."""
        return self.temperature == 0.0 or self.top_k == 1

    def warp(self, logits: torch.Tensor) -> torch.Tensor:
        """Temperature, top-k, top-p on float32 logits [R, V] (transformers' warpers, in order)."""
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if self.top_k > 0:
            k = min(self.top_k, logits.shape[-1])
            kth = torch.topk(logits, k)[0][..., -1, None]
            logits = logits.masked_fill(logits < kth, -float("inf"))
        if 0.0 < self.top_p < 1.0:
            ordered, order = torch.sort(logits, descending=False)
            cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
            drop = cumulative <= (1 - self.top_p)
            drop[..., -1:] = False  # the most likely token always stays
            logits = logits.masked_fill(drop.scatter(1, order, drop), -float("inf"))
        return logits

    def select(self, logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Tokens long [R] from guided logits float32 [R, V]."""
        if self.greedy:
            return torch.argmax(logits, dim=-1)
        probabilities = torch.softmax(self.warp(logits), dim=-1)
        return torch.multinomial(probabilities, num_samples=1, generator=generator).squeeze(1)
