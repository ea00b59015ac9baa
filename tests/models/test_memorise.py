"""A tiny DiT memorises a handful of smooth clips, and why the network outputs x0 when its patch is
wider than its token (the README's "Sample quality": generated latents six times rougher than the data)."""

from __future__ import annotations

import math

import pytest
import torch

from cuecraft.eval.sample_stats import sample_quality
from cuecraft.fuser import FusedInputs
from cuecraft.models.dit import DiT
from cuecraft.models.dit_config import DiTConfig
from cuecraft.models.objectives import get_objective, get_timestep_sampler
from cuecraft.sampling import sample
from tests.train.helpers import one_thread


def smooth_clips(count: int = 4, channels: int = 16, frames: int = 64) -> torch.Tensor:
    """[count, channels, frames] slow sinusoids of unit standard deviation (roughness ~0.1)."""
    generator = torch.Generator().manual_seed(0)
    frequency = 0.05 + 0.1 * torch.rand(count, channels, 1, generator=generator)
    phase = 2 * math.pi * torch.rand(count, channels, 1, generator=generator)
    return math.sqrt(2) * torch.sin(frequency * torch.arange(frames) + phase)


def memorise(output: str, clips: torch.Tensor, *, patch: int, dim: int, steps: int = 400, conv: int = 0,
             lr: float = 3e-3) -> torch.Tensor:
    """Train a DiT on ``clips`` for ``steps`` and return 4 samples from fixed noises."""
    torch.manual_seed(0)
    model = DiT(DiTConfig(latent_dim=clips.shape[1], patch_size=patch, dim=dim, depth=2, heads=4, mlp_ratio=2.0,
                          timestep_dim=64, output_conv=conv))
    objective = get_objective("v", output)
    timesteps = get_timestep_sampler("uniform")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x0 = clips[torch.randint(0, clips.shape[0], (8,), generator=generator)]
        t = timesteps(8, generator=generator)
        eps = torch.randn(x0.shape, generator=generator)
        loss = objective.loss(model(objective.noise(x0, eps, t), t, FusedInputs()), objective.target(x0, eps, t), t=t)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    noise = torch.randn((4, *clips.shape[1:]), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return sample(model, objective, FusedInputs(), shape=noise.shape, steps=20, sampler="dpmpp_2m", noise=noise)


def nearest_over_energy(samples: torch.Tensor, clips: torch.Tensor) -> torch.Tensor:
    """Each sample's squared distance to its nearest clip over that clip's energy [S] (zeros score 1)."""
    distances = torch.cdist(samples.flatten(1), clips.flatten(1)).square()
    energy = clips.flatten(1).square().sum(1)
    return distances.min(1).values / energy[distances.argmin(1)]


def test_a_patch_wider_than_the_token_memorises_with_x0_output_and_stays_noisy_with_v():
    clips = smooth_clips()
    with one_thread():
        # patch 4 x 16 channels = 64 values per token in a width of 48
        x0_samples = memorise("x0", clips, patch=4, dim=48, steps=800)
        v_samples = memorise("target", clips, patch=4, dim=48, steps=800)
    x0_quality, v_quality = sample_quality(x0_samples, clips), sample_quality(v_samples, clips)
    # measured: x0 roughness x1.38, std x1.01, nearest 0.01-0.25; v roughness x7.96, nearest 0.55-1.14
    assert x0_quality.roughness_ratio < 1.6, x0_quality.summary()
    assert abs(x0_quality.std_ratio - 1) < 0.15, x0_quality.summary()
    assert float(nearest_over_energy(x0_samples, clips).max()) < 0.5
    # v output: what the token cannot carry passes through denoised() as alpha * x_t, noise in every sample
    assert v_quality.roughness_ratio > 3 * x0_quality.roughness_ratio, (v_quality.summary(), x0_quality.summary())
    assert float(nearest_over_energy(v_samples, clips).min()) > 0.4
