"""``sample``: one call from noise to latents, sampler picked by name, guidance included."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cuecraft.errors import GenerationInputError
from cuecraft.fuser import FusedInputs
from cuecraft.models.objectives import Objective, get_objective
from cuecraft.sampling.denoiser import Denoiser, GuidanceOptions, Model, keep_known, known_problem
from cuecraft.sampling.fused import fused_batch_size
from cuecraft.sampling.samplers import SAMPLERS, Callback, get_sampler
from cuecraft.sampling.schedule import timesteps as make_timesteps


def _device_of(fused: FusedInputs) -> torch.device:
    for value in vars(fused).values():
        if isinstance(value, torch.Tensor):
            return value.device
    return torch.device("cpu")


def sample(model: Model, objective: Objective | str, fused: FusedInputs, *, shape: Sequence[int], steps: int,
           sampler: str = "dpmpp_2m", guidance_scale: float = 1.0, negative: FusedInputs | None = None,
           rescale_phi: float = 0.0, interval: tuple[float, float] = (0.0, 1.0),
           generator: torch.Generator | None = None, callback: Callback | None = None,
           x_mask: torch.Tensor | None = None, t_max: float = 1.0, shift: float = 1.0, eta: float = 0.0,
           dtype: torch.dtype = torch.float32, noise: torch.Tensor | None = None, group_scale: float = 0.0,
           group: FusedInputs | None = None, group_branch: str = "without",
           known: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Sample latents [B, D, L] from ``model`` conditioned on ``fused``.

    Args:
        model: ``model(x [B, D, L], t [B], fused, *, x_mask=None) -> prediction [B, D, L]``.
        objective: the objective it was trained with (an Objective or ``"v"`` / ``"rectified_flow"``).
        fused: ``FusedInputs`` with batch B.
        shape: (B, D, L): exactly the frames asked for.
        steps: sampler steps (the timesteps are ``cuecraft.sampling.timesteps(steps, t_max=, shift=)``).
        sampler: one of ``euler``, ``heun``, ``dpmpp_2m``, ``ddim`` (DDIM only for ``v``).
        guidance_scale, rescale_phi, interval: classifier-free guidance (``GuidanceOptions``).
        negative: the unconditional branch (null conditions) or negative conditions, batch B;
            required when ``guidance_scale != 1`` (and with ``group_branch="only"``).
        group_scale, group, group_branch: guidance per condition group
            (``cuecraft.guidance_groups``): the group's scale (0: off), the group branch's
            conditions, batch B (``ConditioningStack.group_guidance_inputs``), and which branch
            it is (``"without"`` the group or ``"only"`` the group).
        generator: draws the starting noise (on the conditions' device) and DDIM's fresh noise:
            the same generator state gives the same samples.
        callback: called with a ``SamplerStep`` after each step's first evaluation.
        x_mask: bool [B, L], True on real frames; the model sees it, and frames where it is
            False are zero in the result.
        eta: DDIM's noise (0 deterministic); only with ``sampler="ddim"``.
        dtype: of the noise and the sampler state.
        noise: the unit-variance starting noise [B, D, L] (None: drawn from ``generator``), e.g.
            drawn per item so that an item's result does not depend on its batch.
        known: (latent [B, D, L], mask bool [B, L], True = a known frame), for a model with
            inpainting channels (``backbone.inpaint``): the model reads it at every step, in
            every guidance branch, and the result equals the latent exactly on the known frames
            (``Denoiser`` keeps the estimate there at the latent; the result is replaced there).
    """
    problems = []
    if not isinstance(fused, FusedInputs):
        problems.append(f"fused: expected FusedInputs (stack.fuse(...) or stack.guidance_inputs(...)); "
                        f"got {type(fused).__name__}")
    if isinstance(objective, str):
        try:
            objective = get_objective(objective)
        except ValueError as error:
            problems.append(str(error).split("\n  ", 1)[-1])
    elif not isinstance(objective, Objective):
        problems.append(f"objective: expected an Objective or one of 'v', 'rectified_flow'; got {type(objective).__name__}")
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        problems.append(f"sampler: unknown sampler {sampler!r}; valid samplers: {', '.join(SAMPLERS)}")
    elif isinstance(objective, Objective) and sampler not in objective.samplers:
        extra = " (DDIM with eta = 0 is exactly the Euler step there: use 'euler')" \
            if sampler == "ddim" and objective.name == "rectified_flow" else ""
        problems.append(f"sampler: {sampler!r} does not fit the {objective.name!r} objective{extra}; "
                        f"samplers for it: {', '.join(objective.samplers)}")
    if (not isinstance(shape, (tuple, list)) or len(shape) != 3
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        problems.append(f"shape: expected (B, D, L), three positive integers; got {shape!r}")
    elif isinstance(fused, FusedInputs) and fused_batch_size(fused) not in (None, shape[0]):
        problems.append(f"shape: batch {shape[0]} but the conditions have batch {fused_batch_size(fused)}")
    if eta != 0.0 and sampler != "ddim":
        problems.append(f"eta: only DDIM draws fresh noise; got eta={eta!r} with sampler {sampler!r}")
    if x_mask is not None and isinstance(shape, (tuple, list)) and len(shape) == 3 and (
            not isinstance(x_mask, torch.Tensor) or x_mask.dtype != torch.bool or tuple(x_mask.shape) != (shape[0], shape[2])):
        problems.append(f"x_mask: expected bool [B, L] = [{shape[0]}, {shape[2]}]; got "
                        f"{getattr(x_mask, 'dtype', type(x_mask).__name__)} {tuple(getattr(x_mask, 'shape', ()))}")
    problem = known_problem(known, None)
    if problem:
        problems.append(problem)
    elif known is not None and isinstance(shape, (tuple, list)) and tuple(known[0].shape) != tuple(shape):
        problems.append(f"known latent: expected shape {tuple(shape)}; got {tuple(known[0].shape)}")
    if noise is not None and (not isinstance(noise, torch.Tensor) or tuple(noise.shape) != tuple(shape)):
        problems.append(f"noise: expected a tensor of shape {tuple(shape)}; got "
                        f"{tuple(getattr(noise, 'shape', ())) or type(noise).__name__}")
    if problems:
        raise GenerationInputError(problems)
    grid = make_timesteps(steps, t_max=t_max, shift=shift)
    assert isinstance(objective, Objective) and isinstance(fused, FusedInputs)
    guidance = GuidanceOptions(guidance_scale, rescale_phi, interval, group_scale, group_branch)
    device = _device_of(fused)
    if generator is not None and generator.device.type != device.type:
        raise GenerationInputError(f"generator: on {generator.device} but the conditions are on {device}; "
                                   f"make it with torch.Generator(device={str(device)!r})")
    if known is not None:
        known = (known[0].to(device=device, dtype=dtype), known[1].to(device))
    denoiser = Denoiser(model, objective, fused, negative=negative, guidance=guidance, x_mask=x_mask, group=group,
                        known=known)
    options = {"eta": eta} if sampler == "ddim" else {}
    with torch.no_grad():
        if noise is None:
            noise = torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)
        noise = noise.to(device=device, dtype=dtype)
        _, sigma_start = objective.alpha_sigma(grid[0])
        x = float(sigma_start) * noise
        result = get_sampler(sampler)(denoiser, x, grid, objective=objective, generator=generator,
                                      callback=callback, **options)
    if known is not None:
        result = keep_known(result, known)  # the known frames exactly, whatever the last step left
    if x_mask is not None:
        result = result * x_mask.unsqueeze(1).to(result.dtype)
    return result
