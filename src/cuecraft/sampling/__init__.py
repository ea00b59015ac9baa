"""Diffusion samplers with one signature, and classifier-free guidance at sampling time.

``sample(model, objective, fused, shape=(B, D, L), steps=..., sampler=...)`` is the one call;
the pieces are public for other loops: ``timesteps`` (the grid), the samplers
``sample_NAME(denoiser, x, timesteps, *, objective, generator=None, callback=None)``, the
``Denoiser`` that wraps a model and its objective (guidance included) into
``denoiser(x_t, t) -> x0_hat``, and ``concat_fused`` for batching conditional and negative
conditions into one model pass.
"""

from cuecraft.sampling.denoiser import Denoiser, GuidanceOptions
from cuecraft.sampling.fused import concat_fused, fused_batch_size
from cuecraft.sampling.loop import sample
from cuecraft.sampling.samplers import (
    SAMPLERS,
    SamplerStep,
    get_sampler,
    sample_ddim,
    sample_dpmpp_2m,
    sample_euler,
    sample_heun,
)
from cuecraft.sampling.schedule import timesteps

__all__ = [
    "SAMPLERS",
    "Denoiser",
    "GuidanceOptions",
    "SamplerStep",
    "concat_fused",
    "fused_batch_size",
    "get_sampler",
    "sample",
    "sample_ddim",
    "sample_dpmpp_2m",
    "sample_euler",
    "sample_heun",
    "timesteps",
]
