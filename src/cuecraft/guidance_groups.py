"""Guidance per condition group: one scale for all conditions, another for a group of them.

Three predictions of the model at the same (x_t, t), batched in one pass of 3B items:

    c   the conditional prediction (every condition as asked),
    g   the group branch (``branch``, below),
    u   the unconditional prediction (every condition null) or the negative one.

With s = ``scale`` (all conditions) and s_g = ``group_scale`` (the group)::

    branch "without"  (g: the group's conditions null, the others kept)
        out = u + s (c - u) + s_g (c - g)
    branch "only"     (g: the group's conditions kept, the others null)
        out = u + s (c - u) + s_g (g - u)

s_g = 0 is plain classifier-free guidance, u + s (c - u), computed by the plain path
(``cuecraft.guidance.combine_guidance``) bit for bit; s = 1 and s_g = 0 is c alone. As weights,
out = w_c c + w_g g + w_u u with

    without:  w_c = s + s_g,  w_g = -s_g,  w_u = 1 - s
    only:     w_c = s,        w_g = s_g,   w_u = 1 - s - s_g

and a branch whose weight is exactly 0 is not computed (c always is: it is the prediction outside
the guidance interval and the std reference of ``rescale_phi``). So with the default branch both
scales active (s != 1, s_g != 0) is one pass of 3B, one of them active 2B, neither B.

What the peers do, and the setting that reproduces it (read from facebookresearch/audiocraft):

- MusicGen-Style's double CFG (``LMModel._sample_next_token`` with ``cfg_coef_beta``):
  ``logits = u + α (w + β (c - w) - u)``, w the prediction with the text (``description``)
  dropped and the style (``self_wav``) kept. Expanded, u + α (c - u) + α (β - 1) (c - w): branch
  ``without``, the group the text condition, s = α (``cfg_coef``), s_g = α (β - 1) (β =
  ``cfg_coef_beta``); e.g. α = 3, β = 5 is scale 3, group scale 12. Equal up to float rounding.
- JASCO's multi-source CFG (``FlowMatchingModel._multi_source_cfg_preprocess`` / ``_postprocess``):
  ``v = a c + b t + (1 - a - b) u``, t the prediction with the text kept and the temporal
  controls (its ``symbolic`` and ``wav`` attributes) dropped: branch ``only``, the group the text
  condition, s = a (``cfg_coef_all``), s_g = b (``cfg_coef_txt``), the same numbers (all 1.75,
  text 3.5). JASCO leaves out a term whose weight is below 1e-6; here only an exact 0 is.

The group branch's attributes come from the one null path (``ConditioningAttributes.with_nulls``),
as training dropout and the unconditional branch do, so the group's null is the one the model
learnt under attribute dropout. Predictions are [B, C, ...] (channels on dim 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from cuecraft._numbers import is_finite_number
from cuecraft.attributes import ATTRIBUTE_KINDS, AttributeKind, ConditioningAttributes
from cuecraft.errors import ConditioningInputError, ConfigError
from cuecraft.guidance import _check_batch, check_keep_kinds, rescale_guided

# The group branch: the group's conditions null and the rest kept (MusicGen-Style's), or only the
# group's conditions kept and the rest null (JASCO's text term).
GROUP_BRANCHES = ("without", "only")
# Conditioner types that carry a text prompt: the default group (the "text" of --guidance-text).
PROMPT_TYPES = ("sentence", "t5", "clap_text", "clap", "text")


def prompt_conditions(types: Mapping[str, str]) -> tuple[str, ...]:
    """The ids among ``types`` (``{id: conditioner type}``) of prompt text encoders, in order."""
    return tuple(name for name, kind in types.items() if kind in PROMPT_TYPES)


_is_number = is_finite_number


def check_guidance_group(conditions: object, scale: object, branch: object, types: Mapping[str, str]) -> list[str]:
    """ConfigError lines (paths under ``guidance``) for the group of a conditioning config.

    ``conditions``: the group's condition ids, or None for the prompt text encoders of ``types``
    (``{id: conditioner type}``, every conditioner of the config); ``scale``: the group's scale,
    a finite number >= 0; ``branch``: one of ``GROUP_BRANCHES``.
    """
    problems = []
    if not _is_number(scale) or scale < 0:  # type: ignore[operator]
        problems.append(f"group.scale: expected a finite number >= 0 (0: off); got {scale!r}")
    if branch not in GROUP_BRANCHES:
        problems.append(f"group.branch: expected one of {', '.join(GROUP_BRANCHES)}; got {branch!r}")
    ids = list(types)
    if conditions is None:
        group = list(prompt_conditions(types))
        if not group:
            problems.append(f"group.conditions: not given, and no conditioner carries a text prompt (types "
                            f"{', '.join(PROMPT_TYPES)}); name the group's condition ids, e.g. [{ids[0]!r}]"
                            if ids else "group.conditions: not given, and the config has no conditioners")
            return problems
    elif isinstance(conditions, str) or not isinstance(conditions, Sequence) or not conditions:
        return problems + [f"group.conditions: expected a non-empty list of condition ids; got {conditions!r}"]
    else:
        group = []
        for i, name in enumerate(conditions):
            if not isinstance(name, str) or name not in types:
                problems.append(f"group.conditions[{i}]: no conditioner has id {name!r}; ids: {ids}")
            elif name in group:
                problems.append(f"group.conditions[{i}]: {name!r} is listed twice")
            else:
                group.append(name)
    if group and set(group) == set(ids):
        problems.append("group.conditions: the group holds every condition, so its branch would repeat the "
                        "unconditional or the conditional one; leave a condition out, or use guidance.scale alone")
    return problems


def names_by_kind(group: Sequence[str], kinds: Mapping[str, AttributeKind]) -> dict[AttributeKind, list[str]]:
    """``{attribute kind: [condition id, ...]}`` of ``group``, from ``kinds`` (``{id: kind}``, the
    provider's routes); a ConditioningInputError names an id that is not a condition."""
    unknown = [name for name in group if name not in kinds]
    if unknown:
        raise ConditioningInputError(f"guidance group: no condition is named {unknown}; conditions: {list(kinds)}")
    out: dict[AttributeKind, list[str]] = {}
    for name in group:
        out.setdefault(kinds[name], []).append(name)
    return out


def group_attributes(attributes: Sequence[ConditioningAttributes], group: Mapping[AttributeKind, Sequence[str]],
                     branch: str = "without", keep_kinds: Sequence[str] = ()) -> list[ConditioningAttributes]:
    """The group branch's attributes: ``group`` (``{kind: [name, ...]}``) set to None
    (``"without"``), or every attribute but the group's set to None (``"only"``; attributes of
    ``keep_kinds`` stay as they are, as in ``cuecraft.guidance.unconditional``). New items; the
    given ones are not modified."""
    _check_batch(attributes)
    problems = check_keep_kinds(keep_kinds)
    if branch not in GROUP_BRANCHES:
        problems.append(f"branch: expected one of {', '.join(GROUP_BRANCHES)}; got {branch!r}")
    if problems:
        raise ConfigError(problems)
    if branch == "without":
        return [item.with_nulls(group) for item in attributes]
    result = []
    for item in attributes:
        rest = {kind: [name for name in getattr(item, kind) if name not in group.get(kind, ())]
                for kind in ATTRIBUTE_KINDS if kind not in keep_kinds}
        result.append(item.with_nulls(rest))
    return result


def branch_weights(scale: float, group_scale: float, branch: str = "without") -> tuple[float, float, float]:
    """(w_c, w_g, w_u): the result is w_c c + w_g g + w_u u (see the module docstring)."""
    if branch == "without":
        return scale + group_scale, -group_scale, 1.0 - scale
    if branch == "only":
        return scale, group_scale, 1.0 - scale - group_scale
    raise ValueError(f"branch: expected one of {', '.join(GROUP_BRANCHES)}; got {branch!r}")


def combine_group_guidance(conditional: torch.Tensor, group: torch.Tensor, unconditional: torch.Tensor | None,
                           scale: float, group_scale: float, branch: str = "without",
                           rescale_phi: float = 0.0) -> torch.Tensor:
    """Guidance per group from the three predictions [B, C, ...] (see the module docstring).

    ``unconditional`` may be None only where its weight ``w_u`` is 0 (then it takes no part).
    ``rescale_phi`` rescales the result towards the conditional prediction's std, as
    ``cuecraft.guidance.combine_guidance`` does.
    """
    if conditional.shape != group.shape or (unconditional is not None and unconditional.shape != conditional.shape):
        shapes = [tuple(p.shape) for p in (conditional, group, unconditional) if p is not None]
        raise ValueError(f"predictions differ in shape: {shapes}")
    if not 0.0 <= rescale_phi <= 1.0:
        raise ValueError(f"rescale_phi must be in [0, 1]; got {rescale_phi}")
    weight_u = branch_weights(scale, group_scale, branch)[2]
    if unconditional is None and weight_u != 0.0:
        raise ValueError(f"the unconditional prediction is needed (its weight is {weight_u})")
    if branch == "without":
        base = conditional if unconditional is None else unconditional + (conditional - unconditional) * scale
        guided = base + (conditional - group) * group_scale
    elif unconditional is None:  # "only" with s + s_g = 1
        guided = conditional * scale + group * group_scale
    else:
        guided = unconditional + (conditional - unconditional) * scale + (group - unconditional) * group_scale
    return guided if rescale_phi == 0.0 else rescale_guided(guided, conditional, rescale_phi)
