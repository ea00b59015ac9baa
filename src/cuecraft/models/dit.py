"""``DiT``: a diffusion transformer over latent frames, conditioned by ``FusedInputs``.

Notation: B batch, D latent channels, L frames, p patch size, N = ceil(L / p) tokens, P prepended
tokens, S cross-attention length, W model width.

The conditions are fused once per batch without an input (``fuser(conditions)``) and reused at
every sampling step, so the DiT reads ``prepend_cond``/``prepend_mask``,
``cross_attention_src``/``cross_attention_mask``, ``global_cond`` and ``input_concat`` from the
fused inputs, never ``fused.input``. The roles that act on the input itself (``sum``,
``input_interpolate``) therefore cannot reach it: a ``FusedInputs`` made with an input is refused.

Masks: a padded frame (``x_mask`` False, and the frames that round L up to a multiple of p) is
zeroed before the patch embedding, its token (when no frame of it is valid) is never attended, and
its output is zero. Masked prepend tokens and cross-attention positions are never attended; a row
with no valid key at all (a fully null condition) contributes zeros, not NaN.

Inpainting (``config.inpaint``): ``known = (latent [B, D, L], mask [B, L])`` adds D + 1 input
channels per frame after x and ``input_concat``: the known latent, zero where the mask is False,
and the mask as 0/1 (True = a known frame). ``known=None`` is "nothing known" (plain generation:
zeros). Only the patch embedding grows; the output is D channels, the prediction for every frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cuecraft.errors import ConfigError, FusionError
from cuecraft.fuser import FusedInputs, _resample, sinusoidal_embedding
from cuecraft.models.attention import Attention
from cuecraft.models.dit_config import DiTConfig
from cuecraft.models.positions import rotary_angles, timestep_features


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x [B, N, W] shifted and scaled per item by shift, scale [B, W]."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class DiTBlock(nn.Module):
    """Self-attention, cross-attention (when configured) and MLP, each pre-norm, modulated by the
    conditioning vector (shift, scale) and gated (adaLN-zero: the gates start at zero, so the
    block starts as the identity)."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        dim, eps = config.dim, config.norm_eps
        self.norm_self = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.self_attention = Attention(dim, config.heads, qk_norm=config.qk_norm, eps=eps)
        self.cross_attention = None
        if config.cross_attention_dim is not None:
            self.norm_cross = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
            self.cross_attention = Attention(dim, config.heads, config.cross_attention_dim,
                                             qk_norm=config.qk_norm, eps=eps)
        self.norm_mlp = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(dim, config.mlp_dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(config.mlp_dim, dim))
        sublayers = 3 if self.cross_attention is not None else 2
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 3 * sublayers * dim))  # (shift, scale, gate) each

    def forward(self, h: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor,
                rotary: tuple[torch.Tensor, torch.Tensor] | None, cross: torch.Tensor | None,
                cross_mask: torch.Tensor | None) -> torch.Tensor:
        """h [B, P + N, W], cond [B, W], mask bool [B, P + N] -> [B, P + N, W]."""
        mod = self.modulation(cond).chunk(9 if self.cross_attention is not None else 6, dim=-1)
        shift, scale, gate = mod[0:3]
        h = h + gate.unsqueeze(1) * self.self_attention(_modulate(self.norm_self(h), shift, scale),
                                                        key_mask=mask, rotary=rotary)
        if self.cross_attention is not None:
            shift, scale, gate = mod[6:9]
            h = h + gate.unsqueeze(1) * self.cross_attention(_modulate(self.norm_cross(h), shift, scale),
                                                             cross, cross_mask)
        shift, scale, gate = mod[3:6]
        return h + gate.unsqueeze(1) * self.mlp(_modulate(self.norm_mlp(h), shift, scale))


class DiT(nn.Module):
    """Diffusion transformer: ``forward(x [B, D, L], t [B], fused, *, x_mask) -> [B, D, L]``.

    The output is the prediction the objective chose (v, velocity ...) in x's layout. With
    adaLN-zero and a zero-initialised final layer, the untrained model outputs exactly zero.
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        if not isinstance(config, DiTConfig):
            raise ConfigError(f"backbone: DiT takes a DiTConfig; got {type(config).__name__} (build one with "
                              "DiTConfig.from_dict)")
        self.config = config
        dim, patch = config.dim, config.patch_size
        self.patch_embed = nn.Linear(config.input_channels * patch, dim)
        self.time_embed = nn.Sequential(nn.Linear(config.timestep_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.global_embed = None if config.global_dim is None else nn.Sequential(
            nn.Linear(config.global_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.prepend_embed = None if config.prepend_dim is None else nn.Linear(config.prepend_dim, dim)
        self.blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.depth))
        self.norm_out = nn.LayerNorm(dim, elementwise_affine=False, eps=config.norm_eps)
        self.modulation_out = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))  # (shift, scale)
        self.out = nn.Linear(dim, config.latent_dim * patch)
        # Each token writes its patch alone, so nothing ties the last frame of one patch to the first
        # of the next: a residual conv along time (zero-initialised, so it starts as the identity)
        # lets the model smooth across patch edges, where x0 samples were measured roughest.
        self.out_conv = None if not config.output_conv else nn.Conv1d(
            config.latent_dim, config.latent_dim, config.output_conv, padding=config.output_conv // 2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform linears with zero biases; the embedding MLPs N(0, 0.02); every
        modulation and the output layer zero (adaLN-zero)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for mlp in (self.time_embed, self.global_embed):
            if mlp is not None:
                for layer in (mlp[0], mlp[2]):
                    nn.init.normal_(layer.weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.modulation[1].weight)
            nn.init.zeros_(block.modulation[1].bias)
        for layer in (self.modulation_out[1], self.out, self.out_conv):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def parameter_count(self, *, trainable_only: bool = False) -> int:
        """Number of parameters (only those with ``requires_grad`` when ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, fused: FusedInputs, *,
                x_mask: torch.Tensor | None = None,
                known: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """x [B, D, L], t [B] (or a scalar) float timesteps, fused conditions of ``fuser(conditions)``,
        x_mask bool [B, L] (True = a real frame; None: all real), known (inpaint models only):
        (latent [B, D, L], mask bool [B, L], True = known) -> [B, D, L], zero at padded frames."""
        t = torch.as_tensor(t, device=x.device)
        self._check(x, t, fused, x_mask)
        self._check_known(x, known)
        config, patch = self.config, self.config.patch_size
        batch, _, length = x.shape
        if x_mask is None:
            x_mask = torch.ones(batch, length, dtype=torch.bool, device=x.device)
        t = t.expand(batch) if t.dim() == 0 else t

        frames = x
        if config.input_concat_dim:
            concat = _resample(fused.input_concat, length).transpose(1, 2)  # [B, T_c, C] -> [B, C, L]
            frames = torch.cat((x, concat.to(x.dtype)), dim=1)
        if config.inpaint:
            frames = torch.cat((frames, *self._known_channels(x, known)), dim=1)  # [B, C + D + 1, L]
        frames = frames * x_mask.unsqueeze(1).to(frames.dtype)  # padded frames carry nothing
        pad = -length % patch
        frames = F.pad(frames, (0, pad))  # [B, C, N * p]
        tokens_count = (length + pad) // patch
        # [B, C, N * p] -> [B, C, N, p] -> [B, N, C, p] -> [B, N, C * p]
        tokens = frames.unflatten(-1, (tokens_count, patch)).transpose(1, 2).flatten(2)
        h = self.patch_embed(tokens)  # [B, N, W]
        mask = F.pad(x_mask, (0, pad), value=False).unflatten(-1, (tokens_count, patch)).any(-1)  # [B, N]

        cond = self.time_embed(timestep_features(t, config.timestep_dim, scale=config.timestep_scale).to(x.dtype))
        if self.global_embed is not None:
            cond = cond + self.global_embed(fused.global_cond.to(x.dtype))  # [B, W]

        prepended = 0
        if self.prepend_embed is not None:
            prepended = fused.prepend_cond.shape[1]
            h = torch.cat((self.prepend_embed(fused.prepend_cond.to(x.dtype)), h), dim=1)  # [B, P + N, W]
            prepend_mask = fused.prepend_mask
            if prepend_mask is None:
                prepend_mask = torch.ones(batch, prepended, dtype=torch.bool, device=x.device)
            mask = torch.cat((prepend_mask, mask), dim=1)

        rotary = None
        if config.positions == "rotary":
            rotary = rotary_angles(h.shape[1], config.head_dim, base=config.rotary_base, device=h.device)
        else:
            h = h + sinusoidal_embedding(h.shape[1], config.dim, device=h.device).to(h.dtype)
        cross = cross_mask = None
        if config.cross_attention_dim is not None:
            cross, cross_mask = fused.cross_attention_src.to(x.dtype), fused.cross_attention_mask

        for block in self.blocks:
            h = block(h, cond, mask, rotary, cross, cross_mask)

        shift, scale = self.modulation_out(cond).chunk(2, dim=-1)
        out = self.out(_modulate(self.norm_out(h[:, prepended:]), shift, scale))  # [B, N, D * p]
        # [B, N, D * p] -> [B, N, D, p] -> [B, D, N, p] -> [B, D, N * p], cropped to L
        out = out.unflatten(-1, (config.latent_dim, patch)).transpose(1, 2).flatten(2)[..., :length]
        out = out * x_mask.unsqueeze(1).to(out.dtype)
        if self.out_conv is not None:  # padded frames are zero on the way in and on the way out
            out = (out + self.out_conv(out)) * x_mask.unsqueeze(1).to(out.dtype)
        return out

    @staticmethod
    def _known_channels(x: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """(known latent [B, D, L], zero where unknown; mask [B, 1, L] as 0/1), in x's dtype."""
        if known is None:
            return torch.zeros_like(x), x.new_zeros(x.shape[0], 1, x.shape[2])
        latent, mask = known
        weight = mask.unsqueeze(1).to(x.dtype)  # [B, 1, L]
        return latent.to(x.dtype) * weight, weight

    def _check_known(self, x: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        """FusionError unless ``known`` fits: None, or (latent [B, D, L], mask bool [B, L]) on an inpaint model."""
        if known is None:
            return
        if not self.config.inpaint:
            raise FusionError("known: this DiT has no inpainting channels (backbone.inpaint is false); it cannot "
                              "read a known latent")
        shape = (x.shape[0], self.config.latent_dim, x.shape[2])
        if not (isinstance(known, tuple) and len(known) == 2 and all(isinstance(k, torch.Tensor) for k in known)):
            raise FusionError(f"known: expected (latent [B, D, L], mask bool [B, L]); got {type(known).__name__}")
        latent, mask = known
        problems = []
        if tuple(latent.shape) != shape:
            problems.append(f"known latent must be [B, D, L] = {list(shape)}; got {list(latent.shape)}")
        if mask.dtype != torch.bool or tuple(mask.shape) != (shape[0], shape[2]):
            problems.append(f"known mask must be bool [B, L] = [{shape[0]}, {shape[2]}]; got {mask.dtype} "
                            f"{list(mask.shape)}")
        if problems:
            raise FusionError("DiT inpainting inputs do not fit:\n  " + "\n  ".join(problems))

    def _check(self, x: torch.Tensor, t: torch.Tensor, fused: FusedInputs, x_mask: torch.Tensor | None) -> None:
        """Raise FusionError listing every input that does not fit the config."""
        config = self.config
        problems = []
        if not isinstance(fused, FusedInputs):
            raise FusionError(f"DiT reads a FusedInputs (from fuser(conditions)); got {type(fused).__name__}")
        if x.dim() != 3 or x.shape[1] != config.latent_dim:
            raise FusionError(f"x must be [B, D, L] with D = latent_dim = {config.latent_dim}; "
                              f"got shape {tuple(x.shape)}")
        batch, length = x.shape[0], x.shape[2]
        if not (t.dim() == 0 or tuple(t.shape) == (batch,)):
            problems.append(f"t must be [B] = [{batch}] or a scalar; got shape {tuple(t.shape)}")
        if x_mask is not None and (x_mask.dtype != torch.bool or tuple(x_mask.shape) != (batch, length)):
            problems.append(f"x_mask must be bool [B, L] = [{batch}, {length}]; got {x_mask.dtype} "
                            f"{tuple(x_mask.shape)}")
        if fused.input is not None:
            problems.append("fused has an input sequence: the DiT reads conditions fused without one "
                            "(fuser(conditions)); roles 'sum' and 'input_interpolate' are not supported by "
                            "the DiT, route those conditions to 'input_concat'")
        for name, role, field, tensor, mask in (
                ("cross_attention_src", "cross", "cross_attention_dim", fused.cross_attention_src,
                 fused.cross_attention_mask),
                ("prepend_cond", "prepend", "prepend_dim", fused.prepend_cond, fused.prepend_mask),
                ("global_cond", "global", "global_dim", fused.global_cond, None),
                ("input_concat", "input_concat", "input_concat_dim", fused.input_concat, None)):
            expected = getattr(config, field) or None  # input_concat_dim 0 means none
            if tensor is None:
                if expected is not None:
                    problems.append(f"{field} is {expected} but fused.{name} is None (no condition routed to "
                                    f"'{role}')")
                continue
            rank = 2 if role == "global" else 3
            if expected is None:
                problems.append(f"fused.{name} is given (width {tensor.shape[-1]}) but {field} is not set: set it "
                                f"to {tensor.shape[-1]} or route no condition to '{role}'")
            elif tensor.dim() != rank or tensor.shape[0] != batch:
                shape = "[B, ΣD]" if rank == 2 else "[B, T, D]"
                problems.append(f"fused.{name} must be {shape} with B = {batch}; got shape {tuple(tensor.shape)}")
            elif tensor.shape[-1] != expected:
                problems.append(f"fused.{name} has width {tensor.shape[-1]} but {field} is {expected}")
            elif mask is not None and (mask.dtype != torch.bool or mask.shape != tensor.shape[:2]):
                problems.append(f"fused.{name}'s mask must be bool {list(tensor.shape[:2])}; got {mask.dtype} "
                                f"{list(mask.shape)}")
        if problems:
            raise FusionError("DiT inputs do not fit its config:\n  " + "\n  ".join(problems))
