"""The peers' own config files (tests/config/fixtures, see its README): validated, converted,
built, composed where they are fragments; every error in the file's own words, all at once."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from cuecraft.cli import main
from cuecraft.config import build_stack, load_config
from cuecraft.config.report import validate_config
from cuecraft.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures"
AC = FIXTURES / "audiocraft"
SAT = FIXTURES / "stable_audio_tools"
LM = AC / "model" / "lm" / "musicgen_lm.yaml"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_chroma2music_composed_with_the_lm_file_and_overrides(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(AC / "chroma2music.yaml")
    assert [p.split(":")[0] for p in error.value.problems] == [
        "conditioners.self_wav.chroma_stem.sample_rate", "transformer_lm.dim"]  # both at once
    loaded = load_config([AC / "chroma2music.yaml", LM], overrides=["transformer_lm.dim=1536", "sample_rate=32000"])
    config = loaded.config
    assert config.cond_dim == 1536 and loaded.format == "audiocraft"
    roles = {spec.id: spec.roles for spec in config.conditioners}
    assert roles == {"self_wav": ["prepend"], "description": ["prepend"]}
    chroma = next(spec for spec in config.conditioners if spec.id == "self_wav")
    assert chroma.config["sample_rate"] == 32000 and chroma.config["radix2_exp"] == 14
    assert any("defaults (Hydra's defaults list)" in note for note in loaded.notes)
    assert "codebooks_pattern" in loaded.ignored and "transformer_lm.n_q" in loaded.ignored


def test_shipped_melody_config_is_chroma2music_as_audiocraft_writes_it():
    shipped = yaml.safe_load((CONFIGS / "musicgen_melody.yaml").read_text())
    peer = yaml.safe_load((AC / "chroma2music.yaml").read_text())
    for key in ("conditioners", "fuser", "classifier_free_guidance", "attribute_dropout", "dataset"):
        assert shipped[key] == peer[key], key
    assert shipped["fuser"]["prepend"] == ["self_wav", "description"] and shipped["fuser"]["cross"] == []
    assert (shipped["sample_rate"], shipped["transformer_lm"]) == (32000, {"dim": 1536})
    composed = load_config([AC / "chroma2music.yaml"], overrides=["sample_rate=32000", "transformer_lm.dim=1536"])
    assert load_config(CONFIGS / "musicgen_melody.yaml").config == composed.config


def test_text_fragments_validate_once_composed(tmp_path):
    for name in ("text2music.yaml", "text2sound.yaml"):
        report = validate_config([AC / name, LM], overrides=["transformer_lm.dim=1024"])
        (row,) = report.rows
        assert (row.id, row.type, row.roles) == ("description", "t5", ("cross",))
        # t5-base is not on this machine: a note in AudioCraft's words, not a failure
        assert row.shape is None and "conditioners.description.t5.name" in row.note


def test_clapemb2music_takes_audiocrafts_bins_and_explains_the_checkpoint():
    loaded = load_config(AC / "clapemb2music.yaml", overrides=["transformer_lm.dim=1024"])
    assert "conditioners.description.clap.bins" in loaded.ignored
    report = validate_config(AC / "clapemb2music.yaml", overrides=["transformer_lm.dim=1024"])
    assert "is a file name" in report.rows[0].note and "ClapModel directory" in report.rows[0].note


def test_none_and_unsupported_conditioners_are_one_line_each():
    with pytest.raises(ConfigError) as error:
        load_config(AC / "none.yaml")
    assert len(error.value.problems) == 1 and "conditions nothing" in error.value.problems[0]
    cases = {"style2music.yaml": ["conditioners.self_wav.model"],
             "drums2music.yaml": ["conditioners.self_wav.model"],
             "chords2music.yaml": ["conditioners.chords.model"],
             "jasco_chords_drums_melody.yaml": ["conditioners.self_wav.model", "conditioners.chords.model",
                                                "conditioners.melody.model"]}
    for name, heads in cases.items():
        with pytest.raises(ConfigError) as error:
            load_config(AC / name, overrides=["transformer_lm.dim=1024", "sample_rate=32000"])
        assert [p.split(":")[0] for p in error.value.problems] == heads, name
        assert all("is not supported by cuecraft yet" in p for p in error.value.problems)


def test_fuser_ignore_leaves_a_supported_condition_out():
    data = yaml.safe_load((AC / "chords2music.yaml").read_text())
    data["conditioners"]["chords"] = {"model": "lut", "lut": {"n_bins": 8, "dim": 4}}
    data["transformer_lm"] = {"dim": 16}
    data["conditioners"]["description"] = {"model": "lut", "lut": {"n_bins": 8, "dim": 4}}
    loaded = load_config(data)
    assert [spec.id for spec in loaded.config.conditioners] == ["description"]
    assert "conditioners.chords" in loaded.ignored and "attribute_dropout.symbolic.chords" in loaded.ignored
    build_stack(loaded, seed=0)


def test_stable_audio_files():
    loaded = load_config(SAT / "stable_audio_2_0.json")
    assert [spec.id for spec in loaded.config.conditioners] == ["prompt", "seconds_start", "seconds_total"]
    warning = [n for n in loaded.notes if n.startswith("warning:")]
    assert warning == [
        "warning: model.conditioning.configs[2].config.max_val: seconds_total accepts up to 512 s, but the model "
        "generates at most sample_size / sample_rate = 12582912 / 44100 = 285.3 s; longer requests are cut to "
        "285.3 s (a seconds_total past it asks for audio the model never makes)"]
    block = load_config(SAT / "conditioning_block.json")
    assert block.format == "stable-audio-tools" and block.config.cond_dim == 768
    for name, kind in (("dance_diffusion_base.json", "diffusion_uncond"), ("stable_audio_2_0_vae.json", "autoencoder")):
        with pytest.raises(ConfigError, match=f"model_type {kind} has no conditioning block"):
            load_config(SAT / name)


def test_every_problem_at_once_in_the_files_words():
    data = json.loads((SAT / "stable_audio_2_0.json").read_text())
    data["model"]["conditioning"]["configs"][1]["config"]["min_val"] = "zero"  # a type error
    data["model"]["conditioning"]["configs"][2]["config"]["nonsense"] = 1  # a build error
    data["model"]["diffusion"]["config"]["global_cond_dim"] = 100  # a width error
    data["model"]["diffusion"]["global_cond_ids"].append("prompt")  # a routing error (a sequence to global)
    with pytest.raises(ConfigError) as error:
        validate_config(data)
    text = "\n".join(error.value.problems)
    assert "model.conditioning.configs[1].config.min_val" in text
    assert "model.conditioning.configs[2].config.nonsense" in text
    assert "model.diffusion.config.global_cond_dim" in text and "backbone.global_dim" not in text
    assert "prompt: a sequence of shape" in text  # clap_text text features: a sequence, though not built


def test_t5_routed_to_global_is_invalid_whether_or_not_t5_is_here(tiny_models):
    for name in ("t5-base", tiny_models["t5"]):
        data = {"cond_dim": 32, "conditioners": [
            {"id": "prompt", "type": "t5", "roles": ["global"], "config": {"t5_model_name": name}}]}
        with pytest.raises(ConfigError, match="prompt: a sequence of shape"):
            validate_config(data)


def test_validate_writes_no_cache_entries(tmp_path):
    cache = tmp_path / "cache"
    data = {"cond_dim": 8, "conditioners": [{"id": "self_wav", "type": "chroma_stem", "roles": ["prepend"],
                                             "config": {"sample_rate": 16000, "cache_path": str(cache)}}]}
    validate_config(data)
    assert not cache.exists()


def test_cli_composes_and_overrides(tmp_path, capsys):
    args = ["config", "validate", str(AC / "chroma2music.yaml"), str(LM), "--set", "transformer_lm.dim=1536",
            "--set", "sample_rate=32000"]
    assert main(args) == 0
    assert "valid audiocraft config" in capsys.readouterr().out
    out = tmp_path / "melody.json"
    assert main(["config", "convert", str(AC / "chroma2music.yaml"), "--set", "transformer_lm.dim=1536",
                 "--set", "sample_rate=32000", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["cond_dim"] == 1536
    assert main(["config", "convert", str(CONFIGS / "default.json"), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["config", "convert", str(CONFIGS / "default.json"), "--out", str(tmp_path / "no" / "x.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
