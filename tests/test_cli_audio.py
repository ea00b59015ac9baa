"""The CLI: audio named in metadata, plugins, --version without torch, one-line refusals."""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

from cuecraft.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_does_not_import_torch():
    code = "import sys; from cuecraft.cli import main; main(['--version']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "False" and out[0] == "cuecraft"


def test_condition_reads_audio_named_in_metadata(tmp_path, capsys):
    soundfile.write(str(tmp_path / "song.wav"), np.sin(np.arange(32000) / 7.0).astype(np.float32) * 0.3, 16000)
    config = tmp_path / "melody.json"
    config.write_text(json.dumps({"cond_dim": 8, "conditioners": [
        {"id": "self_wav", "type": "chroma_stem", "roles": ["prepend"], "config": {"sample_rate": 16000, "stems": "none"}}]}))
    metadata = tmp_path / "meta.json"
    metadata.write_text(json.dumps([{"self_wav": "song.wav"}, {"self_wav": {"path": "song.wav", "seek_time": 1.0}},
                                    {"self_wav": None}]))
    assert main(["condition", "--config", str(config), "--metadata", str(metadata), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["conditions"][0]
    assert row["shape"][0] == 3 and 0 < row["unmasked"] < 1
    metadata.write_text(json.dumps([{"self_wav": "missing.wav"}]))
    assert main(["condition", "--config", str(config), "--metadata", str(metadata)]) == 2
    assert "item 0, self_wav" in capsys.readouterr().err


def test_plugin_registers_a_conditioner(tmp_path, capsys, monkeypatch):
    (tmp_path / "my_plugin.py").write_text(
        "from cuecraft.conditioners import register_conditioner\n"
        "from cuecraft.conditioners.numeric import NumberConditioner\n"
        "@register_conditioner('my_tempo', replace=True)\nclass MyTempo(NumberConditioner):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"cond_dim": 4, "conditioners": [
        {"id": "bpm", "type": "my_tempo", "roles": ["global"], "config": {"min_val": 40, "max_val": 200}}]}))
    assert main(["--plugin", "my_plugin", "config", "validate", str(config)]) == 0
    assert main(["--plugin", "no_such_plugin_here", "config", "validate", str(config)]) == 2
    assert "--plugin no_such_plugin_here: cannot import it" in capsys.readouterr().err


def test_evil_weights_are_one_line(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("ran code",))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": Evil()}))
    assert main(["condition", "--weights", str(evil)]) == 2
    captured = capsys.readouterr()
    assert "ran code" not in captured.out
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) <= 2 and "--weights" in captured.err or "weights" in captured.err
