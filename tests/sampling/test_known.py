"""sample(..., known=...): the known latent reaches every step and guidance branch, and comes back exactly."""

import pytest
import torch

from cuecraft.errors import GenerationInputError
from cuecraft.fuser import FusedInputs
from cuecraft.models import DiT
from cuecraft.models.objectives import get_objective
from cuecraft.sampling import SAMPLERS, Denoiser, sample
from tests.models.test_dit import B, D, L, config, fused_inputs, perturbed


class Spy:
    """Records the ``known`` input of every call of a model."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __call__(self, x, t, fused, *, x_mask=None, known=None):
        self.calls.append((x.shape[0], known))
        return self.model(x, t, fused, x_mask=x_mask, known=known)


def known_inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    latent = torch.randn(B, D, L, generator=generator)
    mask = torch.zeros(B, L, dtype=torch.bool)
    mask[0, :3] = True  # a known prefix
    mask[1, :2] = mask[1, 5:] = True  # an unknown span inside known context
    return latent, mask


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_known_frames_come_back_exactly_and_reach_both_guidance_branches(sampler):
    model = Spy(perturbed(DiT(config(inpaint=True))))
    fused, negative = fused_inputs(), fused_inputs()
    latent, mask = known_inputs()
    noise = torch.randn(B, D, L, generator=torch.Generator().manual_seed(1))
    out = sample(model, "v", fused, shape=(B, D, L), steps=4, sampler=sampler, guidance_scale=3.0, negative=negative,
                 noise=noise, known=(latent, mask))
    assert torch.equal(out.transpose(1, 2)[mask], latent.transpose(1, 2)[mask])  # bit for bit
    assert not torch.equal(out.transpose(1, 2)[~mask], latent.transpose(1, 2)[~mask])
    assert model.calls and all(items == 2 * B for items, _ in model.calls)  # one guided pass a step
    for _, (given_latent, given_mask) in model.calls:  # both halves carry the known frames
        assert torch.equal(given_mask, torch.cat((mask, mask)))
        assert torch.equal(given_latent, torch.cat((latent, latent)))
    plain = sample(model.model, "v", fused, shape=(B, D, L), steps=4, sampler=sampler, guidance_scale=3.0,
                   negative=negative, noise=noise)
    assert (plain - out).abs().mean() > 1e-3  # the known frames change what is generated


def test_the_estimate_is_the_known_latent_at_every_step():
    latent, mask = known_inputs()
    estimates = []
    sample(perturbed(DiT(config(inpaint=True))), "v", fused_inputs(), shape=(B, D, L), steps=3, known=(latent, mask),
           callback=lambda step: estimates.append(step.denoised))
    for denoised in estimates:
        assert torch.equal(denoised.transpose(1, 2)[mask], latent.transpose(1, 2)[mask])


def test_bad_known_inputs_are_reported():
    model, fused = DiT(config(inpaint=True)), fused_inputs()
    latent, mask = known_inputs()
    with pytest.raises(GenerationInputError, match=r"known latent: expected shape \(2, 4, 7\); got \(2, 4, 6\)"):
        sample(model, "v", fused, shape=(B, D, L), steps=2, known=(latent[..., :6], mask[:, :6]))
    with pytest.raises(GenerationInputError, match="known mask: expected bool"):
        sample(model, "v", fused, shape=(B, D, L), steps=2, known=(latent, mask.float()))
    with pytest.raises(GenerationInputError, match="NaN"):
        sample(model, "v", fused, shape=(B, D, L), steps=2, known=(latent * float("nan"), mask))
    with pytest.raises(GenerationInputError, match="known: batch 2 but the conditions have batch 3"):
        Denoiser(model, get_objective("v"), FusedInputs(global_cond=torch.zeros(3, 1)), known=(latent, mask))
