"""``MusicLDMPipeline.from_pretrained``: a local diffusers-format directory, and what is missing."""

import json
import shutil

import numpy as np
import pytest
import torch

from cuecraft.errors import PretrainedModelNotFoundError
from cuecraft.pipelines import MusicLDMPipeline

SETTINGS = dict(num_inference_steps=2, audio_length_in_s=0.016, guidance_scale=2.5, negative_prompt="slow")


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def model_copy(musicldm_dir, tmp_path):
    """A copy of the saved tiny model that a test may break."""
    return shutil.copytree(musicldm_dir, tmp_path / "model")


def test_loads_the_saved_components_and_generates_the_same_audio(musicldm_dir, pipe):
    loaded = MusicLDMPipeline.from_pretrained(str(musicldm_dir))
    assert type(loaded.scheduler).__name__ == "DDIMScheduler"
    assert loaded.sample_rate == 16000 and loaded.hop_length == 4 and loaded.vae_scale_factor == 2
    np.testing.assert_array_equal(loaded("fast techno", generator=seeded(), **SETTINGS).audios,
                                  pipe("fast techno", generator=seeded(), **SETTINGS).audios)


def test_loads_what_diffusers_save_pretrained_writes(musicldm_components, tmp_path, pipe):
    diffusers = pytest.importorskip("diffusers")
    if not hasattr(diffusers, "MusicLDMPipeline"):
        pytest.skip("this diffusers no longer ships MusicLDMPipeline")
    diffusers.MusicLDMPipeline(**musicldm_components).save_pretrained(tmp_path / "saved")
    loaded = MusicLDMPipeline.from_pretrained(tmp_path / "saved")
    np.testing.assert_array_equal(loaded("fast techno", generator=seeded(), **SETTINGS).audios,
                                  pipe("fast techno", generator=seeded(), **SETTINGS).audios)


def test_missing_directory(tmp_path):
    with pytest.raises(PretrainedModelNotFoundError, match=f"MusicLDM model: no such directory: {tmp_path / 'nope'} "
                                                           r"\(a diffusers-format MusicLDM directory holds"):
        MusicLDMPipeline.from_pretrained(tmp_path / "nope")


def test_directory_without_model_index(model_copy):
    (model_copy / "model_index.json").unlink()
    with pytest.raises(PretrainedModelNotFoundError, match="has no model_index.json, so it is not a diffusers-format"):
        MusicLDMPipeline.from_pretrained(model_copy)


def test_unreadable_model_index(model_copy):
    (model_copy / "model_index.json").write_text("{not json")
    with pytest.raises(PretrainedModelNotFoundError, match="model_index.json cannot be read as JSON"):
        MusicLDMPipeline.from_pretrained(model_copy)


def test_incomplete_directory_names_everything_missing(model_copy):
    index = json.loads((model_copy / "model_index.json").read_text())
    del index["vocoder"]
    (model_copy / "model_index.json").write_text(json.dumps(index))
    shutil.rmtree(model_copy / "unet")
    (model_copy / "scheduler" / "scheduler_config.json").unlink()
    with pytest.raises(PretrainedModelNotFoundError) as error:
        MusicLDMPipeline.from_pretrained(model_copy)
    assert str(error.value) == (
        f"MusicLDM model: {model_copy} is incomplete: unet/ is missing; scheduler/ holds none of "
        "scheduler_config.json; model_index.json lists no vocoder (expected [library, class]; got None)")


def test_corrupt_weights_name_the_component(model_copy):
    (model_copy / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(PretrainedModelNotFoundError, match=r"MusicLDM model: the vae in .*vae cannot be loaded"):
        MusicLDMPipeline.from_pretrained(model_copy)


def test_scheduler_must_be_a_diffusers_scheduler(model_copy):
    index = json.loads((model_copy / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", "AutoencoderKL"]
    (model_copy / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(PretrainedModelNotFoundError, match="names the scheduler diffusers.AutoencoderKL, which is not "
                                                           "a diffusers scheduler"):
        MusicLDMPipeline.from_pretrained(model_copy)
