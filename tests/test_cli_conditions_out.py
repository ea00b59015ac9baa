"""``cuecraft condition --out FILE.safetensors``: every condition's embedding and mask, written
atomically; bad beats / chords input is one line per problem, exit 2, and nothing is written."""

from __future__ import annotations

import json

import torch

from cuecraft.cli import main
from cuecraft.config import build_stack

CONFIG = {"cond_dim": 8, "conditioners": [
    {"id": "bpm", "type": "number", "roles": ["global"], "config": {"min_val": 40, "max_val": 240}},
    {"id": "beats", "type": "beats", "roles": ["input_concat"], "config": {"frame_rate": 10, "duration": 4}},
    {"id": "chords", "type": "chords", "roles": ["input_concat"], "config": {"frame_rate": 10, "duration": 4}},
]}
METADATA = [{"bpm": 120, "time_signature": "4/4", "chords": "Am F C G"},
            {"bpm": 91, "time_signature": "6/8", "key": "D minor", "chords": None}]


def files(tmp_path, metadata):
    config, meta = tmp_path / "config.json", tmp_path / "metadata.json"
    config.write_text(json.dumps(CONFIG))
    meta.write_text(json.dumps(metadata))
    return str(config), str(meta)


def test_out_writes_every_embedding_and_mask(tmp_path, capsys):
    from safetensors import safe_open

    config, meta = files(tmp_path, METADATA)
    out = tmp_path / "conditions.safetensors"
    assert main(["condition", "--config", config, "--metadata", meta, "--out", str(out), "--seed", "3"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    with safe_open(str(out), "pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        header = handle.metadata()
    assert set(tensors) == {f"{n}.{part}" for n in ("bpm", "beats", "chords") for part in ("embedding", "mask")}
    assert header["format"] == "cuecraft-conditions" and header["version"] == "1" and header["seed"] == "3"
    expected = build_stack(CONFIG, seed=3).condition(METADATA, generator=torch.Generator().manual_seed(3))
    for name, (embedding, mask) in expected.items():
        assert torch.equal(tensors[f"{name}.embedding"], embedding) and torch.equal(tensors[f"{name}.mask"], mask)
    assert tensors["chords.embedding"].shape == (2, 40, 24) and tensors["beats.mask"].dtype == torch.bool
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    assert main(["condition", "--config", config, "--metadata", meta, "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(out)


def test_bad_input_is_one_line_per_problem_exit_2_and_nothing_written(tmp_path, capsys):
    bad = [{"bpm": 120, "time_signature": "5/0", "chords": "Am Xq7"},
           {"bpm": 500, "time_signature": "x/4", "chords": "C@2 G@1", "beats": [0.0, -1.0]}]
    config, meta = files(tmp_path, bad)
    out = tmp_path / "conditions.safetensors"
    assert main(["condition", "--config", config, "--metadata", meta, "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "cuecraft condition: error: 9 problems with the conditioning input:"
    assert [line.strip().split(":")[0] for line in lines[1:]] == [
        "condition 'beats', item 0, time_signature", "condition 'beats', item 1, bpm",
        "condition 'beats', item 1, time_signature", "condition 'beats', item 1, beats",
        "condition 'chords', item 0, time_signature", "condition 'chords', item 0, chords",
        "condition 'chords', item 1, bpm", "condition 'chords', item 1, time_signature",
        "condition 'chords', item 1, chords"]
    assert not out.exists() and list(tmp_path.glob("*.tmp")) == [] and list(tmp_path.glob(".*")) == []
    assert main(["condition", "--config", config, "--metadata", meta, "--out", str(tmp_path / "x.pt")]) == 2
    assert "--out must name a .safetensors file" in capsys.readouterr().err
