"""The shipped held-out prompt set: it is its generator's output and keeps its promises; prompt files are checked."""

from __future__ import annotations

import json
import re

import pytest

from cuecraft.audio.key import KEYS
from cuecraft.data.corpus import sample_piece
from cuecraft.data.corpus.split import heldout_combinations
from cuecraft.errors import EvaluationInputError
from cuecraft.eval.prompts import HELDOUT_SEED, heldout_path, heldout_rows, load_prompts

# The sentence shapes of cuecraft.data.corpus.describe's six templates (the corpus' training texts).
_K = r"[A-G][b#]? (major|minor)"
DESCRIBE_SHAPES = [re.compile(p) for p in (
    rf"^an? \S+ .+ in {_K} at \d+ (bpm|BPM) ",
    rf"^\S+ \S+ in {_K}, \d+ (bpm|BPM), \d/\d time: .+ melody",
    rf"^.+ leads an? \S+ \S+ \S+ in {_K} at \d+ (bpm|BPM)",
    rf"^\d+ (bpm|BPM) \S+ \S+ in {_K} \(\d/\d\) featuring ",
    rf"^An? \S+ \S+ in {_K} played on .+, tempo \d+ (bpm|BPM), ",
    rf"^{_K} \S+ \S+ at \d+ (bpm|BPM): the .+ carries the melody, ",
)]


@pytest.fixture(scope="module")
def shipped():
    return [json.loads(line) for line in heldout_path().read_text(encoding="utf-8").splitlines()]


def test_shipped_file_is_the_generators_output(shipped):
    assert shipped == heldout_rows(HELDOUT_SEED)


def test_shipped_rows_are_heldout_combinations_with_agreeing_melodies(shipped):
    heldout = heldout_combinations()
    assert len(shipped) == 100
    melody_rows = [row for row in shipped if "melody_seed" in row]
    assert 30 <= len(melody_rows) <= 36
    for row in shipped:
        assert set(row) <= {"prompt", "bpm", "key", "instrument", "drums", "seconds", "melody_seed", "ceiling_seed"}
        assert (row["instrument"], row["key"], row["drums"]) in heldout
        assert isinstance(row["bpm"], int) and 60 <= row["bpm"] <= 180
        assert row["key"] in KEYS and row["drums"] in ("on", "off") and row["seconds"] == 8
    for row in melody_rows[:6]:  # the melody's piece has the row's values
        spec = sample_piece(row["melody_seed"], seconds=8)
        assert (spec.lead, spec.key, spec.bpm, "on" if spec.drums else "off") == \
            (row["instrument"], row["key"], row["bpm"], row["drums"])


def test_wordings_are_not_the_corpus_templates_and_vary(shipped):
    prompts = [row["prompt"] for row in shipped]
    for prompt in prompts:
        assert not any(shape.search(prompt) for shape in DESCRIBE_SHAPES), prompt
    assert len(set(prompts)) == len(prompts)
    without_bpm = [row for row in shipped if str(row["bpm"]) not in row["prompt"]]
    without_key = [row for row in shipped if row["key"].split()[0] not in row["prompt"].split(" ")
                   and row["key"] not in row["prompt"]]
    assert 20 <= len(without_bpm) <= 50 and 20 <= len(without_key) <= 50
    # the shape check does catch the corpus' own descriptions
    assert all(any(s.search(sample_piece(seed, seconds=8).description) for s in DESCRIBE_SHAPES)
               for seed in range(30))


def test_shipped_set_loads_and_bad_files_are_one_line_errors(tmp_path, shipped):
    rows = load_prompts()
    assert len(rows) == 100 and rows[0].asked()["bpm"] == float(shipped[0]["bpm"])
    with pytest.raises(EvaluationInputError, match="no such prompt file"):
        load_prompts(tmp_path / "missing.jsonl")
    cases = {
        '{"prompt": "x", "tempo": 120}': "unknown field 'tempo'",
        '{"prompt": "x", "bpm": "fast"}': "field 'bpm' must be a number",
        '{"prompt": "x", "drums": true}': "field 'drums' must be 'on' or 'off'",
        '{"prompt": "x", "key": "H major"}': "cannot read 'H major' as a key",
        '{"prompt": "x", "melody_seed": -1}': "melody_seed",
        '{"seconds": 4}': "asks for nothing",
        '{"prompt": "x", "melody_path": "a.wav"}': "unknown field 'melody_path'",  # sidecars only
        '[1, 2]': "expected a JSON object",
        '{"prompt": ': "not JSON",
    }
    for text, message in cases.items():
        path = tmp_path / "bad.jsonl"
        path.write_text('{"prompt": "fine"}\n' + text + "\n", encoding="utf-8")
        with pytest.raises(EvaluationInputError, match=re.escape(message)) as error:
            load_prompts(path)
        assert "line 2" in str(error.value) and "\n" not in str(error.value)
    assert load_prompts(_write(tmp_path, '{"key": "am", "bpm": 90}'))[0].key == "A minor"


def _write(tmp_path, text):
    path = tmp_path / "ok.jsonl"
    path.write_text(text + "\n", encoding="utf-8")
    return path
