"""Shared tiny MusicLDM components (built once per session) and pipelines over them."""

import pytest
import torch


@pytest.fixture(scope="session")
def musicldm_components():
    """Tiny random MusicLDM components (see tests/tiny_models.py). Tests must not modify them."""
    from tests.tiny_models import tiny_musicldm_components

    return tiny_musicldm_components(seed=0)


@pytest.fixture(scope="session")
def musicldm_dir(tmp_path_factory):
    """The same components saved in the diffusers layout (model_index.json + sub-directories)."""
    from tests.tiny_models import save_tiny_musicldm

    return save_tiny_musicldm(tmp_path_factory.mktemp("musicldm") / "model", seed=0)


@pytest.fixture
def pipe(musicldm_components):
    """A cuecraft pipeline over the shared components, with its own scheduler."""
    from cuecraft.pipelines import MusicLDMPipeline

    components = dict(musicldm_components)
    components["scheduler"] = type(components["scheduler"]).from_config(components["scheduler"].config)
    return MusicLDMPipeline(**components)


@pytest.fixture
def diffusers_pipe(musicldm_components, monkeypatch):
    """diffusers' deprecated MusicLDMPipeline over the same components.

    On transformers 5 ``ClapModel.get_text_features`` returns an output object, on which
    diffusers' ``_encode_prompt`` crashes; it is adapted here (for this test only) to return the
    embedding tensor, as transformers 4 did.
    """
    diffusers = pytest.importorskip("diffusers")
    if not hasattr(diffusers, "MusicLDMPipeline"):
        pytest.skip("this diffusers no longer ships MusicLDMPipeline")
    text_encoder = musicldm_components["text_encoder"]
    original = text_encoder.get_text_features

    def get_text_features(*args, **kwargs):
        output = original(*args, **kwargs)
        return output if isinstance(output, torch.Tensor) else output.pooler_output

    monkeypatch.setattr(text_encoder, "get_text_features", get_text_features)
    components = dict(musicldm_components)
    components["scheduler"] = type(components["scheduler"]).from_config(components["scheduler"].config)
    pipeline = diffusers.MusicLDMPipeline(**components)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline

