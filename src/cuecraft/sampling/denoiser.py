"""``Denoiser``: a conditioned model and its objective as ``denoiser(x_t, t) -> x0_hat``, with
classifier-free guidance at sampling time.

The model is any callable ``model(x [B, D, L], t [B], fused: FusedInputs, *, x_mask=None) ->
prediction [B, D, L]`` (``cuecraft.models.DiT``'s forward) that predicts the objective's target.

Guidance acts on the model's prediction (v for the v objective, the velocity for rectified flow),
as stable-audio-tools guides v: ``cuecraft.guidance.apply_guidance`` splits a [2B] prediction into
conditional and negative/unconditional halves. The combination u + s (c - u) is the same whether
taken on the prediction or on x0_hat (both objectives' ``denoised`` is affine in the prediction
with the same x_t), so only the rescale differs by the choice: with ``rescale_phi`` the std
(over channels D, per frame) matched is that of the conditional *prediction*.

Guidance per condition group (``group_scale``, ``cuecraft.guidance_groups``) adds a third
branch, the conditions with the group nulled (or only the group kept): the conditional, group and
unconditional/negative branches a setting needs go through the model in one call of up to 3B.

Known frames (continuation and inpainting, a model with ``inpaint``): ``known = (latent [B, D, L],
mask bool [B, L])`` reaches the model at every step, in every guidance branch (what is known is
not a condition that guidance drops), and the estimate x0_hat is the known latent on the known
frames: the sampler's state there stays ``alpha_t * latent + sigma_t * eps``, as in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from cuecraft._numbers import is_finite_number
from cuecraft.errors import GenerationInputError
from cuecraft.fuser import FusedInputs
from cuecraft.guidance import apply_guidance
from cuecraft.guidance_groups import GROUP_BRANCHES, branch_weights, combine_group_guidance
from cuecraft.models.objectives import Objective
from cuecraft.sampling.fused import concat_fused, fused_batch_size

Model = Callable[..., torch.Tensor]


_is_number = is_finite_number


@dataclass(frozen=True)
class GuidanceOptions:
    """Classifier-free guidance at sampling time."""

    scale: float = 1.0  # 1: the conditional prediction alone (no second pass); 0: the unconditional
    rescale_phi: float = 0.0  # in [0, 1]: blend towards the conditional prediction's std (0: off)
    interval: tuple[float, float] = (0.0, 1.0)  # guide only for t_lo <= t <= t_hi; else conditional only
    group_scale: float = 0.0  # the group's own scale s_g (cuecraft.guidance_groups); 0: plain guidance
    group_branch: str = "without"  # the group branch: "without" the group (MusicGen-Style) or "only" it (JASCO)

    def __post_init__(self) -> None:
        problems = []
        if not _is_number(self.scale):
            problems.append(f"guidance scale: expected a finite number; got {self.scale!r}")
        if not _is_number(self.rescale_phi) or not 0.0 <= self.rescale_phi <= 1.0:
            problems.append(f"rescale_phi: expected a number in [0, 1]; got {self.rescale_phi!r}")
        interval = self.interval
        if (not isinstance(interval, (tuple, list)) or len(interval) != 2 or not all(map(_is_number, interval))
                or not 0.0 <= interval[0] <= interval[1] <= 1.0):
            problems.append(f"guidance interval: expected (t_lo, t_hi) with 0 <= t_lo <= t_hi <= 1; got {interval!r}")
        if not _is_number(self.group_scale):
            problems.append(f"group guidance scale: expected a finite number; got {self.group_scale!r}")
        if self.group_branch not in GROUP_BRANCHES:
            problems.append(f"group_branch: expected one of {', '.join(GROUP_BRANCHES)}; got {self.group_branch!r}")
        if problems:
            raise GenerationInputError(problems)
        object.__setattr__(self, "interval", (float(interval[0]), float(interval[1])))

    @property
    def guides(self) -> bool:
        """Whether a guided step needs more than the conditional prediction."""
        return self.needs_unconditional or self.needs_group

    @property
    def needs_group(self) -> bool:
        """Whether the group branch takes part (``group_scale != 0``)."""
        return self.group_scale != 0.0

    @property
    def needs_unconditional(self) -> bool:
        """Whether the unconditional / negative branch takes part (its weight is not 0)."""
        if not self.needs_group:
            return self.scale != 1.0
        return branch_weights(self.scale, self.group_scale, self.group_branch)[2] != 0.0


class Denoiser:
    """``denoiser(x_t [B, D, L], t [B]) -> x0_hat [B, D, L]`` for ``model`` under ``objective``.

    Args:
        model: ``model(x, t, fused, *, x_mask=None) -> prediction`` (see the module docstring).
        objective: the objective the model was trained with.
        fused: the conditions, ``FusedInputs`` with batch B (fused without an input sequence:
            the model receives x itself).
        negative: the other half of the guidance batch, also B: the null conditions (the stack
            on ``cuecraft.guidance.unconditional(attributes)``) or negative conditions. Needed
            when ``guidance.needs_unconditional`` (``scale != 1`` without a group).
        group: the group branch, also B (``ConditioningStack.group_guidance_inputs``); needed
            when ``guidance.group_scale != 0``.
        guidance: ``GuidanceOptions`` (default: none).
        x_mask: bool [B, L], True on real frames, handed to the model (repeated per branch in guided passes).
        known: (latent [B, D, L], mask bool [B, L], True = known) for a model with inpainting channels,
            handed to it as ``known=`` (repeated per branch); None: not passed.

    ``model_calls`` counts the model's forward calls; ``items`` the batch items they carried.
    A guided step is one call on 2B items (conditional then negative, concatenated by
    ``concat_fused``), or 3B with a group (conditional, group, negative; 2B where a branch's
    weight is 0); outside the guidance interval a step is one call on B items.
    """

    def __init__(self, model: Model, objective: Objective, fused: FusedInputs, *,
                 negative: FusedInputs | None = None, guidance: GuidanceOptions | None = None,
                 x_mask: torch.Tensor | None = None, group: FusedInputs | None = None,
                 known: tuple[torch.Tensor, torch.Tensor] | None = None):
        guidance = GuidanceOptions() if guidance is None else guidance
        problems = []
        if not isinstance(objective, Objective):
            problems.append(f"objective: expected an Objective (cuecraft.models.objectives.get_objective); "
                            f"got {type(objective).__name__}")
        if not isinstance(fused, FusedInputs):
            problems.append(f"fused: expected FusedInputs; got {type(fused).__name__}")
        if not isinstance(guidance, GuidanceOptions):
            problems.append(f"guidance: expected GuidanceOptions; got {type(guidance).__name__}")
        else:
            if guidance.needs_unconditional and negative is None:
                problems.append(f"guidance scale {guidance.scale} needs the unconditional branch: pass negative= the "
                                "null FusedInputs (conditions of cuecraft.guidance.unconditional(attributes)) or "
                                "negative conditions")
            if guidance.needs_group and group is None:
                problems.append(f"group guidance scale {guidance.group_scale} needs the group branch: pass group= "
                                "its FusedInputs (ConditioningStack.group_guidance_inputs)")
        for name, value in (("negative", negative), ("group", group)):
            if value is not None and not isinstance(value, FusedInputs):
                problems.append(f"{name}: expected FusedInputs; got {type(value).__name__}")
        if problems:
            raise GenerationInputError(problems)
        self.batch_size = fused_batch_size(fused)
        for name, value in (("negative", negative), ("group", group)):
            if value is not None and fused_batch_size(value) != self.batch_size:
                raise GenerationInputError(f"{name} conditions must match the batch: {fused_batch_size(value)} "
                                           f"items for {self.batch_size}")
        if x_mask is not None and (x_mask.dtype != torch.bool or x_mask.dim() != 2):
            raise GenerationInputError(f"x_mask: expected bool [B, L]; got {x_mask.dtype} {tuple(x_mask.shape)}")
        problem = known_problem(known, self.batch_size)
        if problem:
            raise GenerationInputError(problem)
        self.known = known
        self.model = model
        self.objective = objective
        self.fused = fused
        self.guidance = guidance
        self.x_mask = x_mask
        # The branches of a guided pass, in this order: conditional, group, unconditional / negative.
        branches = [fused] + ([group] if guidance.needs_group else []) + ([negative] if guidance.needs_unconditional
                                                                          else [])
        self._parts = len(branches)
        self._guided_fused = concat_fused(*branches) if guidance.guides else None  # type: ignore[arg-type]
        self.model_calls = 0
        self.items = 0

    def _call(self, x: torch.Tensor, t: torch.Tensor, fused: FusedInputs, x_mask: torch.Tensor | None,
              parts: int = 1) -> torch.Tensor:
        """The model on x [parts * B, D, L] (``parts`` guidance branches of B items each)."""
        self.model_calls += 1
        self.items += x.shape[0]
        if self.known is None:
            return self.model(x, t, fused, x_mask=x_mask)
        latent, mask = self.known
        known = (latent, mask) if parts == 1 else (torch.cat((latent,) * parts), torch.cat((mask,) * parts))
        return self.model(x, t, fused, x_mask=x_mask, known=known)

    def prediction(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The (guided) model prediction at (x [B, D, L], t [B]): [B, D, L]."""
        if self.batch_size is not None and x.shape[0] != self.batch_size:
            raise GenerationInputError(f"x has batch {x.shape[0]} but the conditions have {self.batch_size}")
        if self.x_mask is not None and self.x_mask.shape != (x.shape[0], x.shape[-1]):
            raise GenerationInputError(f"x_mask must be [B, L] = [{x.shape[0]}, {x.shape[-1]}]; "
                                       f"got {tuple(self.x_mask.shape)}")
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        if self._guided_fused is None:
            return self._call(x, t, self.fused, self.x_mask)
        low, high = self.guidance.interval
        inside = (t >= low) & (t <= high)  # [B]
        if not bool(inside.any()):
            return self._call(x, t, self.fused, self.x_mask)
        parts = self._parts
        mask = None if self.x_mask is None else torch.cat((self.x_mask,) * parts)
        # [parts * B, D, L]: every branch's prediction, in the order of _guided_fused
        every = self._call(torch.cat((x,) * parts), torch.cat((t,) * parts), self._guided_fused, mask, parts)
        guided = self._combine(every)
        if bool(inside.all()):
            return guided
        conditional = every[: x.shape[0]]
        return torch.where(inside.view(-1, *([1] * (x.dim() - 1))), guided, conditional)

    def _combine(self, every: torch.Tensor) -> torch.Tensor:
        """The guided prediction [B, ...] from the branches' predictions [parts B, ...]."""
        options = self.guidance
        if not options.needs_group:  # plain guidance, exactly as without groups
            return apply_guidance(every, options.scale, options.rescale_phi)
        chunks = every.chunk(self._parts, dim=0)
        unconditional = chunks[2] if options.needs_unconditional else None
        return combine_group_guidance(chunks[0], chunks[1], unconditional, options.scale, options.group_scale,
                                      options.group_branch, options.rescale_phi)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x0_hat [B, D, L] at (x [B, D, L], t [B]); the known latent on known frames."""
        denoised = self.objective.denoised(x, t, self.prediction(x, t))
        return denoised if self.known is None else keep_known(denoised, self.known)


def keep_known(x: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """x [B, D, L] with the known frames (mask [B, L] True) replaced by the known latent [B, D, L], exactly."""
    latent, mask = known
    return torch.where(mask.unsqueeze(1), latent.to(x.dtype), x)


def known_problem(known: object, batch: int | None) -> str | None:
    """Why ``known`` is not (latent float [B, D, L], mask bool [B, L]) with finite values (None: it is,
    or it is None). ``batch``: the B it must have, when known."""
    if known is None:
        return None
    if not (isinstance(known, tuple) and len(known) == 2 and all(isinstance(k, torch.Tensor) for k in known)):
        return f"known: expected (latent [B, D, L], mask bool [B, L]); got {type(known).__name__}"
    latent, mask = known
    if latent.dim() != 3 or not latent.is_floating_point():
        return f"known latent: expected float [B, D, L]; got {latent.dtype} {list(latent.shape)}"
    if mask.dtype != torch.bool or tuple(mask.shape) != (latent.shape[0], latent.shape[2]):
        return f"known mask: expected bool [B, L] = [{latent.shape[0]}, {latent.shape[2]}]; got {mask.dtype} " \
               f"{list(mask.shape)}"
    if batch is not None and latent.shape[0] != batch:
        return f"known: batch {latent.shape[0]} but the conditions have batch {batch}"
    if not bool(torch.isfinite(latent).all()):
        return "known latent: has NaN or infinite values"
    return None
