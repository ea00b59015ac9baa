"""Known-frame masks for training continuation and inpainting (``backbone.inpaint``).

Notation: B batch, D latent channels, L frames, V an item's valid (unpadded) frames.

Each item draws its mask from its own generator, seeded by (seed, "inpaint", step, path, seek)
like its noise (``cuecraft.train.loop.item_noise``) but from a separate stream, so turning
inpainting on leaves every timestep and noise draw as it was, and a resumed or distributed run
draws exactly the same masks. An item's mask is one of (``training.inpaint``):

- ``none``: nothing known: plain generation, the known channels are zero;
- ``continuation``: a known prefix of ``f * V`` frames (f uniform in [min_fraction,
  max_fraction]), the rest unknown: what ``cuecraft generate --seconds`` / ``--continue`` ask;
- ``span``: one unknown span of ``f * V`` frames at a uniform position, every other valid frame
  known: what ``--inpaint --region`` asks (a span that touches an end is a continuation to the
  right or to the left).

stable-audio-tools draws among random segments, a full mask and a causal (prefix) mask with
probabilities 0.1 / 0.8 / 0.1; cuecraft's defaults (0.5 / 0.25 / 0.25) spend more of a small
model's steps on the two uses generation has.

The loss stays over every valid frame, known ones included. The sampler replaces the estimate on
known frames by the known latent at every step (``cuecraft.sampling.Denoiser``), so the model's
output there is never used; but training it there costs little (the latent is in the input) and
gives the shared layers a denser signal. Measured on the 4-item test corpus (800 steps, dim 64,
depth 2): the mean squared latent step at a continuation's seam was 0.22-0.38 with the loss on
every frame (12 runs) and 0.22-0.49 with it on the unknown frames only (4 runs), so the simpler
choice stays.
"""

from __future__ import annotations

from typing import Any

import torch

from cuecraft.data.segments import stable_seed

KINDS = ("none", "continuation", "span")


def draw_known_mask(valid: int, length: int, generator: torch.Generator, options: Any) -> tuple[torch.Tensor, str]:
    """(bool [length], kind): one item's known frames among its first ``valid`` frames.

    ``options`` holds ``none``, ``continuation``, ``span`` (probabilities summing to 1) and
    ``min_fraction`` / ``max_fraction`` (``cuecraft.config.model.InpaintSpec``). Padded frames
    (from ``valid`` on) are never known. An item with fewer than 2 valid frames knows nothing.
    """
    mask = torch.zeros(length, dtype=torch.bool)
    choice = float(torch.rand((), generator=generator))
    fraction = float(options.min_fraction) + (float(options.max_fraction) - float(options.min_fraction)) * float(
        torch.rand((), generator=generator))
    position = float(torch.rand((), generator=generator))
    if choice < float(options.none) or valid < 2:
        return mask, "none"
    count = min(max(round(fraction * valid), 1), valid - 1)  # at least one known and one unknown frame
    if choice < float(options.none) + float(options.continuation):
        mask[:count] = True
        return mask, "continuation"
    start = min(int(position * (valid - count + 1)), valid - count)  # uniform in [0, valid - count]
    mask[:valid] = True
    mask[start:start + count] = False
    return mask, "span"


def item_known(batch: Any, seed: int, step: int, x0: torch.Tensor, x_mask: torch.Tensor,
               options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``known`` input of a training step: (latent [B, D, L], zero where unknown; mask bool [B, L]).

    ``batch`` gives each item's path and seek time (``AudioBatch``); x0 [B, D, L] are the clean
    latents and x_mask bool [B, L] their valid frames.
    """
    length = x0.shape[-1]
    valid = x_mask.sum(dim=1).tolist()
    masks = []
    for path, seek, count in zip(batch.paths, batch.seek_times, valid):
        generator = torch.Generator().manual_seed(stable_seed(seed, "inpaint", step, path, round(seek, 6)))
        masks.append(draw_known_mask(int(count), length, generator, options)[0])
    mask = torch.stack(masks).to(x0.device) & x_mask  # [B, L]
    return x0 * mask.unsqueeze(1).to(x0.dtype), mask
