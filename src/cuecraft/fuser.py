"""``ConditionFuser``: routes conditions to the roles a backbone consumes.

Notation: B batch, T input length, D input width, S cross-attention length, P prepended length.

| role                | condition shape     | effect                                                   |
|---------------------|---------------------|----------------------------------------------------------|
| ``cross``           | [B, T_i, D] each    | concatenated along T -> cross-attention source + mask    |
| ``prepend``         | [B, T_i, D] each    | in front of the input, in routing order (or reversed)    |
| ``sum``             | [B, T, D]           | added to the input                                       |
| ``input_interpolate``| [B, T_c, D]        | resampled (nearest) to T, then added to the input        |
| ``global``          | [B, 1, D_i] each    | concatenated along channels -> [B, ΣD_i]                 |
| ``input_concat``    | [B, T_c, D_i]       | resampled (nearest) to T, concatenated to input channels |

One condition may feed several roles. Masks are kept: the cross-attention mask and the prepend
mask reach the backbone. Inputs are never modified in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cuecraft.condition import Condition
from cuecraft.errors import ConfigError, FusionError

FUSER_ROLES = ("prepend", "sum", "cross", "input_interpolate", "global", "input_concat")
# ``listed``: the first listed condition first; ``reversed``: the last first (AudioCraft's fuser
# puts each prepended condition in front of what is there, so its last condition comes first).
PREPEND_ORDERS = ("listed", "reversed")


@dataclass(frozen=True)
class FusedInputs:
    """What the backbone reads. A field is None when no condition feeds it (or no input was given).

    input: [B, P + T, D'] the input after sum, input_interpolate, input_concat (D' = D + ΣD_i)
        and prepend.
    input_mask: bool [B, P + T]: the prepend masks, then True over the input.
    prepend_cond, prepend_mask: [B, P, D] and bool [B, P], the prepended tokens on their own.
    cross_attention_src, cross_attention_mask: [B, S, D] and bool [B, S] (key padding mask:
        True = attend).
    global_cond: [B, ΣD_i].
    input_concat: [B, T, ΣD_i], the input-concat conditions resampled to the input length (to
        the longest of their lengths when no input is given).
    """

    input: torch.Tensor | None = None
    input_mask: torch.Tensor | None = None
    prepend_cond: torch.Tensor | None = None
    prepend_mask: torch.Tensor | None = None
    cross_attention_src: torch.Tensor | None = None
    cross_attention_mask: torch.Tensor | None = None
    global_cond: torch.Tensor | None = None
    input_concat: torch.Tensor | None = None


def sinusoidal_embedding(length: int, dim: int, *, max_period: float = 10000.0,
                         device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[length, dim] positions embedded as ``[cos(p / max_period^(i/(h-1))), sin(...)]``, h = dim/2."""
    half = dim // 2
    positions = torch.arange(length, device=device, dtype=dtype).unsqueeze(-1)  # [L, 1]
    exponents = torch.arange(half, device=device, dtype=dtype) / max(half - 1, 1)  # [h]
    phase = positions / torch.tensor(max_period, device=device, dtype=dtype) ** exponents  # [L, h]
    return torch.cat((phase.cos(), phase.sin()), dim=-1)


def _resample(embedding: torch.Tensor, length: int) -> torch.Tensor:
    """[B, T_c, D] -> [B, length, D] by nearest-neighbour resampling along time."""
    if embedding.shape[1] == length:
        return embedding
    return F.interpolate(embedding.transpose(1, 2), size=length, mode="nearest").transpose(1, 2)


class ConditionFuser(nn.Module):
    """Route named conditions to roles.

    Args:
        routing: ``{role: [condition names]}``; roles are those of FUSER_ROLES.
        cross_attention_pos_emb: add a sinusoidal positional embedding to the cross-attention
            source (positions 0..S-1 over the concatenated sequence).
        cross_attention_pos_emb_scale: its scale.
        prepend_order: ``listed`` (the routing's order) or ``reversed`` (the last listed first,
            AudioCraft's order).

    Conditions concatenated along time (``cross``, ``prepend``) follow the routing's order, which
    config builds take from the conditioners' order (the provider's order: AudioCraft's reader
    orders its conditioners as AudioCraft's provider does, text, then wav, then joint_embed).
    """

    def __init__(self, routing: Mapping[str, Sequence[str]], cross_attention_pos_emb: bool = False,
                 cross_attention_pos_emb_scale: float = 1.0, prepend_order: str = "listed"):
        super().__init__()
        problems = []
        for role, names in routing.items():
            if role not in FUSER_ROLES:
                problems.append(f"{role}: unknown fuser role; valid roles: {', '.join(FUSER_ROLES)}")
            elif isinstance(names, str) or not all(isinstance(n, str) for n in names):
                problems.append(f"{role}: expected a list of condition names; got {names!r}")
            elif len(set(names)) != len(names):
                problems.append(f"{role}: a condition is listed twice: {list(names)}")
        if not isinstance(cross_attention_pos_emb, bool):
            problems.append(f"cross_attention_pos_emb: expected true or false; got {cross_attention_pos_emb!r}")
        if isinstance(cross_attention_pos_emb_scale, bool) or not isinstance(cross_attention_pos_emb_scale, (int, float)):
            problems.append(f"cross_attention_pos_emb_scale: expected a number; got {cross_attention_pos_emb_scale!r}")
        if prepend_order not in PREPEND_ORDERS:
            problems.append(f"prepend_order: expected one of {', '.join(PREPEND_ORDERS)}; got {prepend_order!r}")
        if problems:
            raise ConfigError(problems)
        self.routing = {role: tuple(routing.get(role, ())) for role in FUSER_ROLES}
        self.prepend_order = prepend_order
        self.cross_attention_pos_emb = cross_attention_pos_emb
        self.cross_attention_pos_emb_scale = float(cross_attention_pos_emb_scale)

    @property
    def routed_names(self) -> set[str]:
        return {name for names in self.routing.values() for name in names}

    def roles_of(self, name: str) -> list[str]:
        """The roles condition ``name`` feeds, in FUSER_ROLES order."""
        return [role for role in FUSER_ROLES if name in self.routing[role]]

    def check_shapes(self, shapes: Mapping[str, tuple[int | None, int]]) -> None:
        """Build-time check of the routing against ``{name: (length or None if variable, width)}``.

        Raises ConfigError naming every condition routed to nothing or to a role it cannot feed.
        """
        problems = []
        for name in sorted(self.routed_names - set(shapes)):
            problems.append(f"{name}: routed to {self.roles_of(name)} but no conditioner is named so; "
                            f"conditioners: {sorted(shapes)}")
        for name in shapes:
            if name not in self.routed_names:
                problems.append(f"{name}: this condition is routed to no role; add it to one of {', '.join(FUSER_ROLES)}")
        for name in self.routing["global"]:
            length, width = shapes.get(name, (1, 0))
            if length != 1:
                shown = "T (variable)" if length is None else length
                problems.append(f"{name}: a sequence of shape [B, {shown}, {width}] cannot feed role "
                                "'global', which takes one vector per item ([B, 1, D])")
        for role in ("cross", "prepend"):
            widths = {name: shapes[name][1] for name in self.routing[role] if name in shapes}
            if len(set(widths.values())) > 1:
                problems.append(f"{role}: conditions concatenated along time need one width; got {widths}")
            if role == "cross" and self.cross_attention_pos_emb and any(w % 2 for w in widths.values()):
                problems.append(f"cross: the sinusoidal positional embedding needs an even width; got {widths}")
        if problems:
            raise ConfigError(problems)

    def forward(self, conditions: Mapping[str, Condition], input: torch.Tensor | None = None) -> FusedInputs:
        """Fuse ``conditions`` (and the ``input`` sequence [B, T, D], when the roles need it)."""
        unknown = set(conditions) - self.routed_names
        missing = self.routed_names - set(conditions)
        if unknown or missing:
            raise FusionError(f"conditions do not match the routing: unrouted {sorted(unknown)}, "
                              f"missing {sorted(missing)}; routing: {self._routing_text()}")
        batch = {name: c.embedding.shape[0] for name, c in conditions.items()}
        if input is not None:
            if input.dim() != 3:
                raise FusionError(f"input must be [B, T, D]; got shape {tuple(input.shape)}")
            batch["input"] = input.shape[0]
        if len(set(batch.values())) > 1:
            raise FusionError(f"batch sizes differ: {batch}")

        fused_input, input_concat = self._fuse_input(conditions, input)
        prepend_cond, prepend_mask = self._concat_time("prepend", conditions)
        input_mask = None
        if fused_input is not None:
            input_mask = torch.ones(fused_input.shape[:2], dtype=torch.bool, device=fused_input.device)
            if prepend_cond is not None:
                if prepend_cond.shape[-1] != fused_input.shape[-1]:
                    raise FusionError(f"prepended conditions {list(self.routing['prepend'])} have width "
                                      f"{prepend_cond.shape[-1]} but the input has width {fused_input.shape[-1]}")
                fused_input = torch.cat((prepend_cond, fused_input), dim=1)
                input_mask = torch.cat((prepend_mask, input_mask), dim=1)
        cross_src, cross_mask = self._concat_time("cross", conditions)
        if cross_src is not None and self.cross_attention_pos_emb:
            positions = sinusoidal_embedding(cross_src.shape[1], cross_src.shape[2],
                                             device=cross_src.device, dtype=cross_src.dtype)
            cross_src = cross_src + self.cross_attention_pos_emb_scale * positions
        return FusedInputs(fused_input, input_mask, prepend_cond, prepend_mask, cross_src, cross_mask,
                           self._global(conditions), input_concat)

    def _fuse_input(self, conditions: Mapping[str, Condition],
                    input: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if input is None:
            needing = [role for role in ("sum", "input_interpolate") if self.routing[role]]
            if needing:
                raise FusionError(f"roles {needing} need the input sequence: call fuser(conditions, input)")
            if not self.routing["input_concat"]:
                return None, None
            # No input to resample to: the conditions are concatenated at the longest of their lengths
            # (the finest time grid among them, e.g. a beat curve beside a coarser chroma), each
            # resampled to it as it would be to an input; the backbone resamples the result to its frames.
            length = max(conditions[n].embedding.shape[1] for n in self.routing["input_concat"])
            return None, torch.cat([_resample(conditions[n].embedding, length)
                                    for n in self.routing["input_concat"]], dim=-1)
        length, width = input.shape[1], input.shape[2]
        for role in ("sum", "input_interpolate"):
            for name in self.routing[role]:
                embedding = conditions[name].embedding
                if role == "sum" and embedding.shape[1] != length:
                    raise FusionError(f"{name}: role 'sum' needs length {length} (the input's); "
                                      f"got shape {tuple(embedding.shape)}")
                if embedding.shape[2] != width:
                    raise FusionError(f"{name}: role '{role}' needs width {width} (the input's); "
                                      f"got shape {tuple(embedding.shape)}")
                input = input + _resample(embedding, length)
        input_concat = None
        if self.routing["input_concat"]:
            input_concat = torch.cat([_resample(conditions[n].embedding, length)
                                      for n in self.routing["input_concat"]], dim=-1)
            input = torch.cat((input, input_concat.to(input.dtype)), dim=-1)
        return input, input_concat

    def _concat_time(self, role: str, conditions: Mapping[str, Condition]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        names = self.routing[role]
        if not names:
            return None, None
        if role == "prepend" and self.prepend_order == "reversed":
            names = names[::-1]
        widths = {name: conditions[name].embedding.shape[-1] for name in names}
        if len(set(widths.values())) > 1:
            raise FusionError(f"{role}: conditions concatenated along time need one width; got {widths}")
        embedding = torch.cat([conditions[n].embedding for n in names], dim=1)
        mask = torch.cat([conditions[n].mask for n in names], dim=1)
        return embedding, mask

    def _global(self, conditions: Mapping[str, Condition]) -> torch.Tensor | None:
        names = self.routing["global"]
        if not names:
            return None
        for name in names:
            if conditions[name].embedding.shape[1] != 1:
                raise FusionError(f"{name}: role 'global' takes [B, 1, D]; got shape "
                                  f"{tuple(conditions[name].embedding.shape)}")
        return torch.cat([conditions[n].embedding[:, 0] for n in names], dim=-1)

    def _routing_text(self) -> str:
        return ", ".join(f"{role}={list(names)}" for role, names in self.routing.items() if names)

    def extra_repr(self) -> str:
        order = "" if self.prepend_order == "listed" else f", prepend_order={self.prepend_order!r}"
        return self._routing_text() + order
