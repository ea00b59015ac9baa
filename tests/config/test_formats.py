import copy
import json
from pathlib import Path

import pytest
import yaml

from cuecraft.config import build_stack, dump_config, load_config, save_config
from cuecraft.config.build import check_config_types
from cuecraft.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

SAT = {
    "model_type": "diffusion_cond",
    "sample_rate": 44100,
    "model": {
        "pretransform": {"type": "autoencoder"},
        "conditioning": {
            "configs": [
                {"id": "prompt", "type": "lut", "config": {"n_bins": 64, "dim": 8}},
                {"id": "seconds_start", "type": "number", "config": {"min_val": 0, "max_val": 512}},
                {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 512, "output_dim": 16}},
                {"id": "genre", "type": "list", "config": {"options": ["rock", "jazz"]}},
            ],
            "cond_dim": 16,
            "default_keys": {"prompt": "text"},
        },
        "diffusion": {
            "cross_attention_cond_ids": ["prompt", "seconds_start", "seconds_total"],
            "global_cond_ids": ["seconds_start", "seconds_total"],
            "prepend_cond_ids": ["genre"],
            "type": "dit",
            "config": {"cond_token_dim": 16, "global_cond_dim": 32, "depth": 2},
        },
    },
    "training": {"learning_rate": 1e-4},
}


def sat(**changes):
    data = copy.deepcopy(SAT)
    for path, value in changes.items():
        target = data
        *parents, last = path.split("/")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value
    return data


def test_stable_audio_tools_config_is_read_verbatim():
    loaded = load_config(SAT)
    config = loaded.config
    assert loaded.format == "stable-audio-tools"
    assert [(c.id, c.type, c.roles) for c in config.conditioners] == [
        ("prompt", "lut", ["cross"]), ("seconds_start", "number", ["cross", "global"]),
        ("seconds_total", "number", ["cross", "global"]), ("genre", "list", ["prepend"])]
    assert config.cond_dim == 16 and config.default_keys == {"prompt": "text"}
    assert (config.backbone.cross_attention_dim, config.backbone.global_dim) == (16, 32)
    assert loaded.ignored == ["model_type", "sample_rate", "training", "model.pretransform", "model.diffusion.type",
                              "model.diffusion.config.depth"]
    stack = build_stack(loaded, seed=0)
    fused = stack.fuse(stack.condition([{"text": "a b", "seconds_start": 1, "seconds_total": 9, "genre": "jazz"}]))
    assert fused.cross_attention_src.shape == (1, 4, 16) and fused.global_cond.shape == (1, 32)


def test_just_the_conditioning_block_routes_to_cross():
    loaded = load_config(SAT["model"]["conditioning"])
    assert all(c.roles == ["cross"] for c in loaded.config.conditioners)
    assert loaded.notes == ["no model.diffusion block: every condition is routed to cross-attention"]


def test_errors_use_the_peer_paths():
    with pytest.raises(ConfigError) as error:
        build_stack(sat(**{"model/conditioning/configs/1/config": {"min_val": 3, "max_val": 3}}))
    assert error.value.problems[0].startswith("model.conditioning.configs[1].config.max_val: must be greater than min_val (3)")
    with pytest.raises(ConfigError) as error:
        build_stack(sat(**{"model/conditioning/configs/0/config": {"n_bins": 64, "dim": 8, "n_binz": 2},
                           "model/conditioning/configs/3/type": "tt5"}))
    assert error.value.problems[0].startswith("model.conditioning.configs[0].config.n_binz: unknown setting for conditioner type 'lut'; valid settings: n_bins, dim, output_dim, tokenizer, project_out")
    assert error.value.problems[1].startswith("model.conditioning.configs[3].type: unknown conditioner type 'tt5'; valid types: beats, chords, chroma_stem, clap, clap_audio, clap_text, int")
    with pytest.raises(ConfigError, match=r"model.conditioning.cond_dim: Input should be a valid integer"):
        load_config(sat(**{"model/conditioning/cond_dim": "768"}))
    with pytest.raises(ConfigError, match=r"model.conditioning.configs\[0\].confg: unknown key; valid keys: id, type, config"):
        load_config(sat(**{"model/conditioning/configs/0": {"id": "prompt", "type": "lut", "confg": {}}}))
    with pytest.raises(ConfigError, match=r"model.diffusion: routes 'bpm', which no conditioner"):
        load_config(sat(**{"model/diffusion/prepend_cond_ids": ["genre", "bpm"]}))


def test_dimension_bookkeeping():
    with pytest.raises(ConfigError, match=r"model.diffusion.config.global_cond_dim: is 24, but the conditions routed to 'global' add up to 32 \(seconds_start 16 \+ seconds_total 16\)"):
        build_stack(sat(**{"model/diffusion/config/global_cond_dim": 24}))
    with pytest.raises(ConfigError) as error:
        build_stack(sat(**{"model/diffusion/config/cond_token_dim": 24}))
    assert error.value.problems == [
        f"model.conditioning.configs[{i}] ({name}): routed to 'cross' with width 16, but model.diffusion.config.cond_token_dim is 24"
        for i, name in enumerate(["prompt", "seconds_start", "seconds_total"])]
    with pytest.raises(ConfigError, match=r"prompt: a sequence of shape \[B, T \(variable\), 16\] cannot feed role 'global'"):
        build_stack(sat(**{"model/diffusion/global_cond_ids": ["prompt"], "model/diffusion/config/global_cond_dim": 16}))


def test_clap_keys_are_translated_and_architecture_keys_ignored(tiny_models):
    data = sat(**{"model/conditioning/configs/0": {"id": "prompt", "type": "clap_text", "config": {
        "clap_ckpt_path": tiny_models["clap"], "audio_model_type": "HTSAT-base", "enable_fusion": True,
        "finetune": False, "output_dim": 16, "project_out": True}}})
    loaded = load_config(data)
    assert loaded.config.conditioners[0].config == {"clap_model_name": tiny_models["clap"], "enable_grad": False,
                                                    "output_dim": 16, "project_out": True}
    assert "model.conditioning.configs[0].config.audio_model_type" in loaded.ignored
    data["model"]["conditioning"]["configs"][0]["config"]["clap_ckpt_path"] = "/nowhere/clap"
    with pytest.raises(Exception, match="no such directory"):
        build_stack(data)


def test_audiocraft_yaml_is_read_verbatim():
    loaded = load_config(CONFIGS / "musicgen_melody.yaml")
    config = loaded.config
    assert loaded.format == "audiocraft" and config.cond_dim == 1536
    description, melody = config.conditioners  # AudioCraft's provider order: text, then wav
    assert (description.type, description.roles) == ("t5", ["prepend"])
    assert description.config == {"project_out": True, "t5_model_name": "t5-base", "enable_grad": False,
                                  "word_dropout": 0.2, "normalize_text": False}
    assert (melody.type, melody.roles, melody.config["sample_rate"]) == ("chroma_stem", ["prepend"], 32000)
    assert "duration" not in melody.config  # AudioCraft's chroma2music sets none
    assert (config.dropout.cfg, config.dropout.attributes, config.guidance.scale) == (0.2, {"wav": {"self_wav": 0.5}}, 3.0)
    assert "conditioners.self_wav.chroma_stem.eval_wavs" in loaded.ignored and "attribute_dropout.args" in loaded.ignored


def test_audiocraft_errors_use_its_paths(tmp_path):
    data = yaml.safe_load((CONFIGS / "musicgen_melody.yaml").read_text())
    data["conditioners"]["self_wav"]["chroma_stem"]["n_chroma"] = 0
    data["conditioners"]["description"]["t5"]["nmae"] = "t5-small"
    data["conditioners"]["genre"] = {"model": "spacy"}
    with pytest.raises(ConfigError) as error:
        load_config(data)
    assert error.value.problems == [
        "conditioners.description.t5.nmae: unknown setting; valid settings: name, finetune, word_dropout, normalize_text, autocast_dtype, device",
        "conditioners.genre.model: unknown conditioner model 'spacy'; valid models: t5, lut, chroma_stem, clap, beats, chords",
    ]
    data["conditioners"]["description"]["t5"].pop("nmae")
    data["conditioners"].pop("genre")
    data["fuser"]["prepend"] = ["self_wav"]
    with pytest.raises(ConfigError, match=r"conditioners.description: condition 'description' is in no fuser list"):
        load_config(data)
    data["fuser"]["prepend"] = ["self_wav", "description"]
    data["conditioners"]["description"] = {"model": "lut", "lut": {"n_bins": 16, "dim": 8}}
    with pytest.raises(ConfigError, match=r"conditioners.self_wav.chroma_stem.n_chroma"):
        build_stack(data)


def test_round_trips(tmp_path):
    for source in (SAT, CONFIGS / "musicgen_melody.yaml", CONFIGS / "default.json"):
        first = load_config(source).config
        for suffix in (".json", ".yaml"):
            path = tmp_path / f"config{suffix}"
            save_config(first, path)
            again = load_config(path)
            assert again.format == "cuecraft" and again.config == first
            save_config(again.config, tmp_path / f"again{suffix}")
            assert (tmp_path / f"again{suffix}").read_text() == path.read_text()


def test_check_config_types_without_building():
    config = load_config(sat(**{"model/conditioning/configs/1/type": "numbr"})).config
    with pytest.raises(ConfigError, match=r"conditioners\[1\].type: unknown conditioner type 'numbr'"):
        check_config_types(config)


def test_unrecognised_format():
    with pytest.raises(ConfigError, match="not a conditioning config cuecraft recognises"):
        load_config({"model": {"diffusion": {}}})
