"""Musical labels from data to conditions: corpus sidecars carry beats, downbeats and chords, the
datasets pass them through with each segment's start, and the beats / chords conditioners place
the file's label times on every segment; encoded windows do the same."""

from __future__ import annotations

import json

import pytest
import torch

from cuecraft.config import build_stack
from cuecraft.data import AudioCollate, AudioDataset
from cuecraft.data.corpus import make_corpus
from cuecraft.data.encoded_dataset import EncodedItem

STACK = {"cond_dim": 8, "conditioners": [
    {"id": "beats", "type": "beats", "roles": ["input_concat"], "config": {"frame_rate": 20, "duration": 2}},
    {"id": "chords", "type": "chords", "roles": ["input_concat"], "config": {"frame_rate": 20, "duration": 2}},
]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels")
    make_corpus(root, items=2, seconds=5.0, seed=11)
    return root


def test_corpus_sidecars_carry_beats_downbeats_and_chords(corpus):
    meta = json.loads((corpus / "piece_000000.json").read_text())
    assert meta["beats"][0] == 0.0 and set(meta["downbeats"]) <= set(meta["beats"])
    assert all({"symbol", "start", "end"} <= set(chord) for chord in meta["chords"])
    assert meta["chords"][0]["start"] == 0.0 and meta["chords"][-1]["end"] == pytest.approx(5.0)


def test_segments_are_conditioned_on_the_labels_at_their_place_in_the_file(corpus):
    dataset = AudioDataset.from_folder(corpus, sample_rate=16000, segment_seconds=2.0, mode="sequential")
    stack = build_stack(STACK, seed=0)
    items = [dataset[i] for i in range(len(dataset))]
    later = next(item for item in items if item.seek_time == 2.0)
    assert later.metadata["chords"] and later.to_metadata()["seek_time"] == 2.0  # passed through, and the start
    tokens = AudioCollate(stack, train=False)(items).tokens
    row = next(i for i, item in enumerate(items) if item is later)
    meta = later.metadata
    expected = stack.provider.conditioners["beats"].condition([{
        "bpm": meta["bpm"], "time_signature": meta["time_signature"], "seek_time": 2.0, "duration": meta["duration"]}])
    torch.testing.assert_close(tokens["beats"].features[row], expected.embedding[0], atol=1e-4, rtol=0)
    chord = next(c for c in meta["chords"] if c["start"] <= 2.0 < c["end"])  # sounding at the segment's start
    first = tokens["chords"].features[row, 0]
    assert int(first[12:].argmax()) == chord["root"] and first[chord["root"]] == 1.0
    last = next(item for item in items if item.seek_time == 4.0 and item.path == later.path)  # 1 s of 2 left
    assert tokens["beats"].mask[next(i for i, item in enumerate(items) if item is last)].sum() == 20


def test_encoded_windows_give_their_start_too():
    window = EncodedItem(torch.zeros(4, 10), torch.ones(10, dtype=torch.bool), {"bpm": 120.0}, "a.wav", 3.5, 25.0)
    assert window.to_metadata() == {"bpm": 120.0, "seek_time": 3.5}
