"""Peer checkpoints load into cuecraft's conditioners and give the peers' numbers."""

import hashlib
import math

import pytest
import torch
from safetensors.torch import save_file

from cuecraft.conditioners import IntConditioner, ListConditioner, LUTConditioner, NumberConditioner
from cuecraft.config.weights import load_peer_weights, read_checkpoint
from cuecraft.errors import WeightsError
from cuecraft.provider import ConditionProvider

D = 6


def sat_state(prefix="conditioner.conditioners."):
    """A stable-audio-tools-shaped state: number (seconds), int (bpm, min_val 0), list (genre)."""
    g = torch.Generator().manual_seed(1)
    return {
        f"{prefix}seconds.embedder.embedding.0.weights": torch.randn(128, generator=g),
        f"{prefix}seconds.embedder.embedding.1.weight": torch.randn(D, 257, generator=g),
        f"{prefix}seconds.embedder.embedding.1.bias": torch.randn(D, generator=g),
        f"{prefix}bpm.int_embedder.weight": torch.randn(241, D, generator=g),
        f"{prefix}genre.embedder.weight": torch.randn(3, D, generator=g),
        "model.transformer.layers.0.weight": torch.randn(2, 2, generator=g),  # not a conditioner key
    }


def sat_provider():
    return ConditionProvider({
        "seconds": NumberConditioner(output_dim=D, min_val=0, max_val=512),
        "bpm": IntConditioner(output_dim=D, min_val=0, max_val=240),
        "genre": ListConditioner(output_dim=D, options=["rock", "jazz"]),
    })


def sat_number(x, min_val, max_val, weights, weight, bias):
    """stable-audio-tools' NumberConditioner written out: clamp, normalise, Fourier, linear."""
    n = (min(max(x, min_val), max_val) - min_val) / (max_val - min_val)
    phases = [n * w * 2 * math.pi for w in weights.tolist()]
    features = torch.tensor([n] + [math.sin(p) for p in phases] + [math.cos(p) for p in phases])
    return weight @ features + bias


@pytest.mark.parametrize("container", ["safetensors", "lightning-ckpt"])
def test_stable_audio_tools_weights_give_its_numbers(tmp_path, container):
    state = sat_state("conditioner.conditioners." if container == "safetensors" else "diffusion.conditioner.conditioners.")
    path = tmp_path / ("model.safetensors" if container == "safetensors" else "model.ckpt")
    if container == "safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state, "global_step": 5}, path)
    provider = sat_provider()
    report = load_peer_weights(provider, path)
    assert report.format == "stable-audio-tools" and report.missing == [] and report.unexpected == []
    assert len(report.loaded) == 5
    conditions = provider.condition([{"seconds": 95.5, "bpm": 120, "genre": "jazz"},
                                     {"seconds": 900, "bpm": 0, "genre": "rock"}])
    key = "conditioner.conditioners." if container == "safetensors" else "diffusion.conditioner.conditioners."
    for i, seconds in enumerate((95.5, 900)):
        expected = sat_number(seconds, 0, 512, state[f"{key}seconds.embedder.embedding.0.weights"],
                              state[f"{key}seconds.embedder.embedding.1.weight"], state[f"{key}seconds.embedder.embedding.1.bias"])
        torch.testing.assert_close(conditions["seconds"].embedding[i, 0], expected, rtol=1e-4, atol=1e-4)
    table = state[f"{key}bpm.int_embedder.weight"]
    torch.testing.assert_close(conditions["bpm"].embedding[:, 0], table[[120, 0]])
    options = state[f"{key}genre.embedder.weight"]
    torch.testing.assert_close(conditions["genre"].embedding[:, 0], options[[2, 1]])  # options.index + 1


def hash_bucket(word, n_bins):
    return int(hashlib.sha256(word.encode()).hexdigest(), 16) % n_bins


def test_audiocraft_lut_weights_give_its_numbers(tmp_path):
    g = torch.Generator().manual_seed(2)
    prefix = "condition_provider.conditioners.genre."
    state = {f"{prefix}embed.weight": torch.randn(32, 4, generator=g),
             f"{prefix}output_proj.weight": torch.randn(D, 4, generator=g),
             f"{prefix}output_proj.bias": torch.randn(D, generator=g)}
    path = tmp_path / "state.th"
    torch.save({"best_state": {"model": state}, "xp.cfg": {}}, path)
    provider = ConditionProvider({"genre": LUTConditioner(n_bins=32, dim=4, output_dim=D, project_out=True)})
    assert load_peer_weights(provider, path).format == "audiocraft"
    embedding, mask = provider.condition([{"genre": "deep house"}])["genre"]
    ids = [hash_bucket("deep", 32), hash_bucket("house", 32)]
    expected = state[f"{prefix}embed.weight"][ids] @ state[f"{prefix}output_proj.weight"].T + state[f"{prefix}output_proj.bias"]
    torch.testing.assert_close(embedding[0], expected)
    assert mask.all()


def test_strict_by_default_with_a_report():
    state = sat_state()
    del state["conditioner.conditioners.genre.embedder.weight"]
    state["conditioner.conditioners.mood.embedder.weight"] = torch.zeros(2, D)
    provider = sat_provider()
    before = provider.state_dict()["conditioners.bpm.int_embedder.weight"].clone()
    with pytest.raises(WeightsError) as error:
        load_peer_weights(provider, state)
    assert "missing ['conditioners.genre.embedder.weight']" in str(error.value)
    assert "unexpected ['conditioners.mood.embedder.weight']" in str(error.value)
    assert torch.equal(provider.state_dict()["conditioners.bpm.int_embedder.weight"], before)  # nothing loaded
    report = load_peer_weights(provider, state, strict=False)
    assert report.missing == ["conditioners.genre.embedder.weight"]
    assert report.unexpected == ["conditioners.mood.embedder.weight"]
    assert torch.equal(provider.conditioners["bpm"].int_embedder.weight, state["conditioner.conditioners.bpm.int_embedder.weight"])


def test_shape_mismatch_and_bad_files(tmp_path):
    state = sat_state()
    state["conditioner.conditioners.bpm.int_embedder.weight"] = torch.zeros(10, D)
    with pytest.raises(WeightsError, match=r"shape mismatches \['conditioners.bpm.int_embedder.weight: checkpoint \(10, 6\), conditioner \(241, 6\)'\]"):
        load_peer_weights(sat_provider(), state, strict=False)
    with pytest.raises(WeightsError, match="no such checkpoint file"):
        read_checkpoint(tmp_path / "missing.ckpt")
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable torch checkpoint"):
        read_checkpoint(tmp_path / "bad.ckpt")
    with pytest.raises(WeightsError, match="cannot tell the checkpoint's format"):
        load_peer_weights(sat_provider(), {"x.weight": torch.zeros(1)})


def test_corrupt_safetensors_is_a_weights_error(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        read_checkpoint(tmp_path / "bad.safetensors")
