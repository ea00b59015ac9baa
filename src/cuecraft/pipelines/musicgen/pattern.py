"""MusicGen's codebook delay pattern (AudioCraft's ``delay`` pattern with delays 0..K-1).

Notation: M sequences, K codebooks, F frames, P frames of an audio prompt, L = F + K steps.

Codebook k is shifted right by k + 1 steps: step 0 holds the start token in every codebook,
steps 1..k of codebook k are start tokens too, its frame f is at step f + k + 1, and its steps
after F + k are start tokens again. So one decoder step predicts frame t - 1 of codebook 0,
frame t - 2 of codebook 1, ..., and a frame is complete K steps after its first codebook::

    k=0  S a0 a1 a2 .. S  S  S
    k=1  S S  b0 b1 .. S  S
    k=2  S S  S  c0 .. S
    k=3  S S  S  S  ..

This is the layout transformers' ``build_delay_pattern_mask`` makes for mono models (its pad
token is the decoder start token), so the decoder reads exactly what it reads under
transformers' ``generate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

UNKNOWN = -1  # a step not generated yet


@dataclass(frozen=True)
class DelayPattern:
    """The delay pattern of ``num_codebooks`` codebooks over ``frames`` frames.

    num_codebooks: K. frames: F, every frame of the result (an audio prompt's frames included).
    start_token: the decoder start token, also written at every masked step.
    """

    num_codebooks: int
    frames: int
    start_token: int

    @property
    def steps(self) -> int:
        """L = F + K: the start step, F frames and K - 1 steps of delay."""
        return self.frames + self.num_codebooks

    def build(self, sequences: int, prompt: torch.Tensor | None = None,
              device: torch.device | str = "cpu") -> torch.Tensor:
        """The step grid long [M, K, L]: start tokens where the pattern masks, ``prompt``
        codes [M, K, P] at their delayed steps, UNKNOWN (-1) where tokens are to be generated."""
        grid = torch.full((sequences, self.num_codebooks, self.steps), UNKNOWN, dtype=torch.long, device=device)
        for k in range(self.num_codebooks):
            grid[:, k, : k + 1] = self.start_token
            grid[:, k, self.frames + k + 1:] = self.start_token
            if prompt is not None:
                grid[:, k, k + 1: k + 1 + prompt.shape[-1]] = prompt[:, k]
        return grid

    def first_step(self, prompt_frames: int = 0) -> int:
        """The first step predicted: 1 + P (steps 0..P are known: start tokens and the prompt)."""
        return 1 + prompt_frames

    def revert(self, grid: torch.Tensor) -> torch.Tensor:
        """The step grid [M, K, L] -> codes [M, K, F] (frame f of codebook k from step f + k + 1)."""
        return torch.stack([grid[:, k, k + 1: k + 1 + self.frames] for k in range(self.num_codebooks)], dim=1)
