"""``ConditioningStack``: a provider, a fuser and the dropouts, built together from one config.

Notation: B batch, T length, D width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cuecraft.attributes import ConditioningAttributes
from cuecraft.condition import Condition
from cuecraft.conditioners.base import Tokens
from cuecraft.errors import ConditioningInputError
from cuecraft.fuser import ConditionFuser, FusedInputs
from cuecraft.guidance import AttributeDropout, ClassifierFreeGuidanceDropout, unconditional, unconditional_inputs
from cuecraft.guidance_groups import group_attributes, names_by_kind, prompt_conditions
from cuecraft.provider import ConditionProvider


@dataclass(frozen=True)
class ConditionSummary:
    """One row of ``cuecraft condition``: a condition's shape and statistics for a batch."""

    name: str
    type: str
    roles: tuple[str, ...]
    shape: tuple[int, ...]
    unmasked: float  # share of (item, position) pairs whose mask is True
    mean: float  # over unmasked positions (NaN when none)
    std: float  # over unmasked positions (NaN when fewer than two values)


@dataclass
class ConditioningStack:
    """Everything that turns metadata into backbone inputs.

    types: ``{name: registered type name}`` of each conditioner, in provider order.
    """

    provider: ConditionProvider
    fuser: ConditionFuser
    types: dict[str, str]
    cfg_dropout: ClassifierFreeGuidanceDropout | None = None
    attribute_dropout: AttributeDropout | None = None
    guidance_scale: float = 1.0  # classifier-free guidance at inference (1: off)
    rescale_phi: float = 0.0
    # The unconditional branch: roles kept from the conditional branch, and how the rest is made
    # ("attributes": null conditions; "zeros": stable-audio-tools'); see guidance.unconditional_inputs.
    guidance_keep_roles: tuple[str, ...] = ()
    guidance_null: str = "attributes"
    # Attribute kinds the unconditional branch leaves as they are, as the CFG dropout does
    # (AudioCraft's keeps joint_embed, CLAP: ``dropout.cfg_keep_kinds``, compat exact).
    guidance_keep_kinds: tuple[str, ...] = ()
    # Guidance per condition group (cuecraft.guidance_groups): the group's condition ids (empty:
    # the prompt text encoders, ``text_conditions``), its scale (0: off) and its branch.
    guidance_group: tuple[str, ...] = ()
    guidance_group_scale: float = 0.0
    guidance_group_branch: str = "without"

    def dropout(self, attributes: list[ConditioningAttributes],
                generator: torch.Generator | None = None) -> list[ConditioningAttributes]:
        """The configured training dropouts: per-attribute dropout, then classifier-free guidance
        dropout, both drawn from ``generator``."""
        if self.attribute_dropout is not None:
            attributes = self.attribute_dropout(attributes, generator=generator)
        if self.cfg_dropout is not None:
            attributes = self.cfg_dropout(attributes, generator=generator)
        return attributes

    def tokenize(self, batch: Sequence[Any], *, train: bool = False,
                 generator: torch.Generator | None = None) -> dict[str, Tokens]:
        """Metadata -> ``{name: Tokens}``, on the CPU, reading no module state.

        Each item is checked and converted once (``provider.to_attributes``); with ``train`` the
        configured dropouts act on the attributes, then the conditioners tokenize in training
        behaviour (word dropout included), all drawn from ``generator`` in that order (torch's
        global generator when None). Safe in data-loader workers: the same batch, ``train`` and
        generator state give the same tokens in any process.
        """
        if not train or (self.attribute_dropout is None and self.cfg_dropout is None):
            return self.provider.tokenize(batch, train=train, generator=generator)  # checks each value once
        attributes = self.dropout(self.provider.to_attributes(batch), generator)
        return self.provider.tokenize(attributes, train=train, generator=generator)

    def condition(self, batch: Sequence[Any], *, train: bool = False,
                  generator: torch.Generator | None = None) -> dict[str, Condition]:
        """Metadata -> ``{name: Condition}``: ``provider(tokenize(batch, train=..., generator=...))``.

        The provider's module mode is left as it is (``model.train()`` / ``eval()`` remain the
        caller's): ``train`` alone decides the dropouts and the conditioners' training behaviour.
        """
        return self.provider(self.tokenize(batch, train=train, generator=generator))

    def fuse(self, conditions: dict[str, Condition], input: torch.Tensor | None = None) -> FusedInputs:
        return self.fuser(conditions, input)

    def guidance_inputs(self, batch: Sequence[Any], negative: Sequence[Any] | None = None, *,
                        input: torch.Tensor | None = None) -> tuple[FusedInputs, FusedInputs]:
        """(conditional, unconditional or negative) FusedInputs, each of batch B, for a guided pass.

        The unconditional branch follows the config's ``guidance.keep_roles`` and
        ``guidance.null`` (``guidance.unconditional_inputs``); a reader of stable-audio-tools
        configs keeps ``global`` and ``input_concat`` and zeroes the rest, as its DiT does.
        With ``guidance_keep_kinds`` the null attributes keep those kinds (AudioCraft's CLAP).
        """
        return self._branches(self.provider.to_attributes(batch), negative, input)

    def _branches(self, attributes: list[ConditioningAttributes], negative: Sequence[Any] | None,
                  input: torch.Tensor | None) -> tuple[FusedInputs, FusedInputs]:
        conditional = self.fuse(self.provider.condition(attributes), input)
        keep, mode = self.guidance_keep_roles, self.guidance_null
        if negative is not None:
            other = self.fuse(self.provider.condition(self.provider.to_attributes(negative)), input)
            return conditional, unconditional_inputs(conditional, other, keep_roles=keep) if keep else other
        if mode == "zeros":
            return conditional, unconditional_inputs(conditional, keep_roles=keep, mode="zeros")
        null = self.fuse(self.provider.condition(unconditional(attributes, self.guidance_keep_kinds)), input)
        return conditional, unconditional_inputs(conditional, null, keep_roles=keep) if keep else null

    def text_conditions(self) -> tuple[str, ...]:
        """Ids of the conditioners that carry a text prompt (types ``guidance_groups.PROMPT_TYPES``)."""
        return prompt_conditions(self.types)

    def guidance_group_conditions(self) -> tuple[str, ...]:
        """The group of group guidance: the config's ``guidance.group.conditions``, else the text
        conditions (empty when the model has neither)."""
        return self.guidance_group or self.text_conditions()

    def group_guidance_inputs(self, batch: Sequence[Any], group: Sequence[str] | None = None,
                              negative: Sequence[Any] | None = None, *, branch: str | None = None,
                              input: torch.Tensor | None = None) -> tuple[FusedInputs, FusedInputs, FusedInputs]:
        """(conditional, unconditional or negative, group branch) FusedInputs, each of batch B.

        The first two are ``guidance_inputs``'; the group branch holds the conditions with the
        ``group`` (condition ids; default ``guidance_group_conditions()``) nulled, the rest kept
        (``branch="without"``), or only the group kept (``"only"``; default: the config's
        ``guidance_group_branch``), through the null path of dropout
        (``guidance_groups.group_attributes``), and keeps the config's ``guidance.keep_roles``
        from the conditional branch as the unconditional one does.
        """
        group = self.guidance_group_conditions() if group is None else tuple(group)
        branch = self.guidance_group_branch if branch is None else branch
        if not group:
            raise ConditioningInputError("group guidance: no group given and the model has no text conditions; "
                                         "name the group's condition ids")
        kinds = {route.name: route.kind for route in self.provider.routes}
        attributes = self.provider.to_attributes(batch)
        conditional, other = self._branches(attributes, negative, input)
        nulled = group_attributes(attributes, names_by_kind(group, kinds), branch, self.guidance_keep_kinds)
        fused = self.fuse(self.provider.condition(nulled), input)
        keep = self.guidance_keep_roles
        return conditional, other, unconditional_inputs(conditional, fused, keep_roles=keep) if keep else fused

    def summarize(self, conditions: dict[str, Condition]) -> list[ConditionSummary]:
        rows = []
        for name, (embedding, mask) in conditions.items():
            values = embedding[mask].float()  # [N_unmasked, D]
            rows.append(ConditionSummary(
                name=name,
                type=self.types[name],
                roles=tuple(self.fuser.roles_of(name)),
                shape=tuple(embedding.shape),
                unmasked=mask.float().mean().item(),
                mean=values.mean().item() if values.numel() else float("nan"),
                std=values.std().item() if values.numel() > 1 else float("nan"),
            ))
        return rows
