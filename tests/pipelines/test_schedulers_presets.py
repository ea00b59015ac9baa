"""Schedulers by name, and the named generation presets."""

import numpy as np
import pytest
import torch

from cuecraft.errors import ConfigError
from cuecraft.pipelines import PRESETS, SCHEDULERS, make_scheduler, musicldm_preset

CLASSES = {"ddim": "DDIMScheduler", "pndm": "PNDMScheduler", "lms": "LMSDiscreteScheduler",
           "euler": "EulerDiscreteScheduler", "euler-ancestral": "EulerAncestralDiscreteScheduler",
           "dpm-solver++": "DPMSolverMultistepScheduler", "unipc": "UniPCMultistepScheduler"}


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_every_name_builds_its_class_on_the_pipelines_noise_schedule(pipe):
    assert list(SCHEDULERS) == list(CLASSES)
    config = pipe.scheduler.config
    for name, class_name in CLASSES.items():
        scheduler = make_scheduler(name, config)
        assert type(scheduler).__name__ == class_name
        for key in ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type"):
            assert scheduler.config[key] == config[key], (name, key)
    assert make_scheduler("pndm", config).config.skip_prk_steps is True
    solver = make_scheduler("dpm-solver++", config).config
    assert (solver.algorithm_type, solver.solver_order) == ("dpmsolver++", 2)


def test_unknown_name_lists_the_valid_ones(pipe):
    with pytest.raises(ConfigError, match="scheduler: unknown scheduler 'dpm'; valid names: ddim, pndm, lms, euler, "
                                          r"euler-ancestral, dpm-solver\+\+, unipc"):
        pipe.set_scheduler("dpm")


def test_each_scheduler_generates_its_own_audio(pipe):
    settings = dict(num_inference_steps=3, audio_length_in_s=0.016)
    default = pipe("fast techno", generator=seeded(), **settings).audios
    outputs = {}
    for name in SCHEDULERS:
        outputs[name] = pipe.set_scheduler(name)("fast techno", generator=seeded(), **settings).audios
        assert outputs[name].shape == (1, 256) and np.isfinite(outputs[name]).all()
    np.testing.assert_array_equal(outputs["ddim"], default)  # ddim by name is the model's own DDIM
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(outputs[a] - outputs[b]).max() > 1e-4, (a, b)


def test_presets():
    assert PRESETS["diffusers"].kwargs() == dict(num_inference_steps=200, guidance_scale=2.0, eta=0.0,
                                                 num_waveforms_per_prompt=1, num_waveforms_to_keep=None,
                                                 clip_output=False)
    assert musicldm_preset("original") == dict(num_inference_steps=200, guidance_scale=2.0, eta=1.0,
                                               num_waveforms_per_prompt=5, num_waveforms_to_keep=1, clip_output=True)
    assert musicldm_preset("original", num_inference_steps=4)["num_inference_steps"] == 4
    with pytest.raises(ConfigError) as error:
        musicldm_preset("paper", steps=4)
    assert error.value.problems == [
        "preset: unknown preset 'paper'; valid presets: diffusers, original",
        "steps: not a preset setting; settings: num_inference_steps, guidance_scale, eta, num_waveforms_per_prompt, "
        "num_waveforms_to_keep, clip_output",
    ]


def test_original_preset_runs_and_keeps_the_best_of_five(pipe):
    settings = musicldm_preset("original", num_inference_steps=2)
    out = pipe(["fast techno", "slow piano"], audio_length_in_s=0.016, generator=seeded(), output_type="pt", **settings)
    assert out.audios.shape == (2, 256) and out.candidates.shape == (2, 1)
    assert out.candidates[0].item() in range(0, 5) and out.candidates[1].item() in range(0, 5)  # each prompt's own
    assert out.audios.abs().max() <= 1.0
    every = pipe(["fast techno", "slow piano"], audio_length_in_s=0.016, generator=seeded(), output_type="pt",
                 **{**settings, "num_waveforms_to_keep": 5})
    assert torch.equal(out.scores[:, 0], every.scores.max(dim=1).values)
