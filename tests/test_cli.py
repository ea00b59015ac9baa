import json
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
