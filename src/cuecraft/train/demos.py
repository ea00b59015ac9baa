"""Demos during training: sample fixed prompts, decode them, write WAV + spectrogram PNG.

Notation: B prompts, D latent channels, L frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cuecraft.guidance import unconditional
from cuecraft.train.media import write_spectrogram, write_wav


def null_like(stack: Any, metadata: list[dict]) -> list:
    """The unconditional counterparts of ``metadata`` (the same null as training dropout)."""
    return unconditional(stack.provider.to_attributes(metadata))


@torch.no_grad()
def sample_latents(stack: Any, dit: torch.nn.Module, objective: Any, metadata: list[dict], *, frames: int,
                   steps: int, seed: int, device: torch.device, sampler: str = "dpmpp_2m",
                   guidance_scale: float | None = None) -> torch.Tensor:
    """Latents [B, D, frames] for ``metadata`` (guidance from the stack's config unless given)."""
    from cuecraft.sampling import sample

    provider, fuser = stack.provider, stack.fuser
    tokens = provider.tokenize(metadata)
    fused = fuser(provider({k: v.to(device) for k, v in tokens.items()}))
    scale = stack.guidance_scale if guidance_scale is None else guidance_scale
    negative = None
    if scale != 1.0:
        tokens = provider.tokenize(null_like(stack, metadata))
        negative = fuser(provider({k: v.to(device) for k, v in tokens.items()}))
    generator = torch.Generator(device=device).manual_seed(seed)
    return sample(dit, objective, fused, shape=(len(metadata), dit.config.latent_dim, frames), steps=steps,
                  sampler=sampler, guidance_scale=scale, negative=negative, rescale_phi=stack.rescale_phi,
                  generator=generator)


def write_demos(directory: Path, step: int, latents: torch.Tensor, representation: Any) -> list[Path]:
    """Decode ``latents`` [B, D, L] and write ``demo_{i}_step{step}.wav`` / ``.png``; returns the WAVs."""
    directory.mkdir(parents=True, exist_ok=True)
    wavs = representation.decode(latents.float()).cpu()
    paths = []
    for i, (wav, frames) in enumerate(zip(wavs, latents.float().cpu())):
        stem = directory / f"demo_{i}_step{step:08d}"
        paths.append(write_wav(stem.with_suffix(".wav"), wav.numpy(), representation.sample_rate))
        write_spectrogram(stem.with_suffix(".png"), frames.numpy(), title=f"demo {i}, step {step}")
    return paths
