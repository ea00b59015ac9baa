import json
import os
import subprocess
import sys

import pytest

from cuecraft import __version__
from cuecraft.cli import main


def test_condition_prints_one_row_per_condition(capsys):
    assert main(["condition"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("condition "))
    rows = lines[header + 2: header + 7]
    assert [r.split()[0] for r in rows] == ["prompt", "genre", "bpm", "seconds_start", "seconds_total"]
    assert rows[2].split()[:4] == ["bpm", "int", "prepend+global", "[4,"]
    assert "global_cond" in out and "[4, 192]" in out


def test_condition_json_numbers(capsys):
    assert main(["condition", "--json", "--seed", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in report["conditions"]}
    assert rows["genre"]["unmasked"] == 0.75  # one of four items has no genre
    assert rows["seconds_total"]["unmasked"] == 1.0
    assert rows["prompt"]["shape"][0] == 4 and rows["prompt"]["roles"] == ["cross"]
    assert report["fused"]["global_cond"] == [4, 192]
    assert main(["condition", "--json", "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == report  # seeded: identical


def test_errors_are_one_line_and_non_zero(tmp_path, capsys):
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps([{"prompt": "x", "genre": "polka", "bpm": 1, "seconds_start": 0, "seconds_total": 1}]))
    assert main(["condition", "--metadata", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cuecraft condition: error: condition 'genre', item 0: unknown label 'polka'")
    assert len(err.strip().splitlines()) == 1


def test_version_and_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "cuecraft", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"cuecraft {__version__}"
    help_text = subprocess.run([sys.executable, "-m", "cuecraft", "condition", "--help"], capture_output=True, text=True).stdout
    for option in ("--config", "--metadata", "--seed", "--train", "--json"):
        assert option in help_text


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "condition" in capsys.readouterr().out


@pytest.fixture(autouse=True)
def _in_repository(monkeypatch):
    """Shipped configs are named relative to the repository root."""
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_config_validate_prints_one_row_per_condition(capsys):
    assert main(["config", "validate", "configs/stable_audio_open.json"]) == 0
    out = capsys.readouterr().out
    assert "valid stable-audio-tools config" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[4:7]}
    assert rows["seconds_total"][:4] == ["seconds_total", "number", "cross+global", "[2,"]
    assert rows["seconds_total"][-2:] == ["198,272", "198,272"]
    assert "note: prompt: not built here" in out and "hf download t5-base" in out
    assert "ignored (not used by cuecraft): model_type, sample_size" in out


def test_config_validate_shows_frozen_encoders(capsys):
    assert main(["config", "validate", "configs/default.json"]) == 0
    prompt = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("prompt"))
    assert prompt.split()[:3] == ["prompt", "sentence", "cross"] and prompt.split()[-1] == "24,640"


def test_config_validate_failure_prints_every_problem(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cond_dim": 8, "conditioners": [
        {"id": "a", "type": "number", "roles": ["global"], "config": {"min_val": 1, "max_val": 1}},
        {"id": "b", "type": "nmber", "roles": ["global"]}]}))
    assert main(["config", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "conditioners[0].config.max_val: must be greater than min_val (1)" in err
    assert "conditioners[1].type: unknown conditioner type 'nmber'" in err


def test_config_convert_writes_the_canonical_format(tmp_path, capsys):
    out = tmp_path / "melody.json"
    assert main(["config", "convert", "configs/musicgen_melody.yaml", "--out", str(out)]) == 0
    assert "from audiocraft" in capsys.readouterr().out
    converted = json.loads(out.read_text())
    assert [c["id"] for c in converted["conditioners"]] == ["description", "self_wav"]  # AudioCraft's order
    assert main(["config", "validate", str(out)]) == 0


def test_condition_loads_trained_weights(tmp_path, capsys):
    from safetensors.torch import save_file

    from cuecraft.config import DEFAULT_CONFIG, build_stack

    trained = build_stack(DEFAULT_CONFIG, seed=5).provider.state_dict()
    checkpoint = tmp_path / "model.safetensors"
    save_file({f"conditioner.{k}": v.contiguous() for k, v in trained.items()}, str(checkpoint))
    assert main(["condition", "--json", "--seed", "5"]) == 0
    expected = json.loads(capsys.readouterr().out)["conditions"]
    assert main(["condition", "--json", "--seed", "0", "--weights", str(checkpoint)]) == 0
    assert json.loads(capsys.readouterr().out)["conditions"] == expected
    assert main(["condition", "--weights", str(tmp_path / "none.ckpt")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err
