"""A DiT with ``inpaint``: D + 1 more input channels (the known latent and its mask), D outputs, strict config."""

import pytest
import torch

from cuecraft.errors import ConfigError, FusionError
from cuecraft.models import DiT, DiTConfig
from tests.models.test_dit import B, CONCAT, D, L, config, fused_inputs, perturbed


def test_inpaint_is_off_by_default_and_strictly_checked():
    assert DiTConfig(latent_dim=4).inpaint is False
    assert DiTConfig.from_dict({"latent_dim": 4, "inpaint": True}).inpaint is True
    with pytest.raises(ConfigError, match=r"backbone\.inpaint: expected true or false; got 'yes'"):
        DiTConfig.from_dict({"latent_dim": 4, "inpaint": "yes"}, path="backbone")
    with pytest.raises(ConfigError, match="inpaint: expected true or false; got 1"):
        DiTConfig(latent_dim=4, inpaint=1)


def test_only_the_patch_embedding_grows():
    plain, inpaint = DiT(config()), DiT(config(inpaint=True))
    patch = plain.config.patch_size
    assert plain.patch_embed.in_features == (D + CONCAT) * patch
    assert inpaint.patch_embed.in_features == (D + CONCAT + D + 1) * patch  # x, input_concat, known latent, mask
    assert inpaint.out.out_features == plain.out.out_features == D * patch
    shapes = {name: p.shape for name, p in plain.named_parameters()}
    grown = {name for name, p in inpaint.named_parameters() if shapes[name] != p.shape}
    assert grown == {"patch_embed.weight"}


def test_known_frames_reach_the_model_and_none_means_nothing_known():
    model = perturbed(DiT(config(inpaint=True)))
    x, t, fused = torch.randn(B, D, L), torch.rand(B), fused_inputs()
    latent = torch.randn(B, D, L)
    nothing = torch.zeros(B, L, dtype=torch.bool)
    out = model(x, t, fused)
    assert out.shape == (B, D, L)
    assert torch.equal(model(x, t, fused, known=(latent, nothing)), out)  # an all-False mask: the latent is unread
    some = nothing.clone()
    some[:, :3] = True
    with_known = model(x, t, fused, known=(latent, some))
    assert (with_known - out).abs().mean() > 1e-3
    # Only the known frames of the latent are read: garbage where the mask is False changes nothing.
    garbage = torch.where(some.unsqueeze(1), latent, torch.randn_like(latent) * 100)
    torch.testing.assert_close(model(x, t, fused, known=(garbage, some)), with_known, atol=1e-6, rtol=0)


def test_known_inputs_that_do_not_fit_are_refused():
    inpaint = DiT(config(inpaint=True))
    x, t, fused = torch.randn(B, D, L), torch.rand(B), fused_inputs()
    mask = torch.ones(B, L, dtype=torch.bool)
    with pytest.raises(FusionError, match="no inpainting channels"):
        DiT(config())(x, t, fused, known=(x, mask))
    with pytest.raises(FusionError) as error:
        inpaint(x, t, fused, known=(torch.randn(B, D + 1, L), mask.float()))
    assert "known latent must be [B, D, L] = [2, 4, 7]" in str(error.value)
    assert "known mask must be bool [B, L] = [2, 7]" in str(error.value)
    with pytest.raises(FusionError, match="expected \\(latent"):
        inpaint(x, t, fused, known=[x, mask])
