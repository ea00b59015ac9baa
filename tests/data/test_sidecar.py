import json
import os
import pickle

import pytest
import torch

from cuecraft.data import AudioDataset
from cuecraft.data.sidecar import FileHook, load_custom_metadata, parse_music_info, read_sidecar_file
from cuecraft.errors import DatasetError
from tests.data.wavs import write_wav


@pytest.fixture(autouse=True)
def _numba_cache(monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", os.environ.get("NUMBA_CACHE_DIR", "/work/main/.venv/numba-cache"))


def test_audiocraft_fields_are_normalised_as_audiocraft_does():
    raw = {"title": " Night Drive ", "artist": "A1", "key": "A Minor", "bpm": "128", "genre": "Synthwave",
           "moods": ["Dark", " Driving", ""], "keywords": "retro, Neon ,", "description": "a drive",
           "instrument": ["Synth", "Drums"], "name": "None", "sample_rate": 44100, "extra": {"x": 1}}
    assert parse_music_info(raw, "s.json") == {
        "title": "Night Drive", "artist": "A1", "key": "A minor", "bpm": 128.0, "genre": "synthwave",
        "moods": "dark, driving", "keywords": "retro, neon", "description": "a drive",
        "instrument": "synth, drums", "sample_rate": 44100, "extra": {"x": 1},
    }
    assert parse_music_info({"key": "C major, A minor", "bpm": None, "moods": []}, "s.json") == {}
    assert parse_music_info({"bpm": 92}, "s.json") == {"bpm": 92.0}


@pytest.mark.parametrize("written, canonical", [
    ("Am", "A minor"), ("a minor", "A minor"), ("A#m", "Bb minor"), ("bb", "Bb major"), ("C# MAJOR", "Db major"),
    ("modal mix", "modal mix"),  # not a key cuecraft reads: kept as written, lower case
])
def test_sidecar_keys_become_canonical_names(written, canonical):
    assert parse_music_info({"key": written}, "s.json") == {"key": canonical}


@pytest.mark.parametrize("field, value, allowed", [
    ("bpm", "fast", "a positive number (beats per minute) or null"),
    ("bpm", -3, "a positive number (beats per minute) or null"),
    ("bpm", True, "a positive number (beats per minute) or null"),
    ("title", 7, "a string or null"),
    ("key", ["c major"], "a string or null"),
    ("genre", {"main": "rock"}, "a string, a list of strings or null"),
    ("moods", ["calm", 3], "a list of strings, a comma-separated string or null"),
])
def test_a_malformed_field_names_the_file_and_the_field(field, value, allowed):
    with pytest.raises(DatasetError) as error:
        parse_music_info({field: value}, "/data/song.json")
    assert str(error.value) == f"/data/song.json: field '{field}' must be {allowed}; got {value!r}"


def test_sidecar_files_that_are_not_json_objects(tmp_path):
    (tmp_path / "a.json").write_text("{bpm: 120")
    with pytest.raises(DatasetError, match=r"a\.json: the sidecar is not valid JSON"):
        read_sidecar_file(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match=r"b\.json: a sidecar must be a JSON object of fields; got list"):
        read_sidecar_file(tmp_path / "b.json")


def test_malformed_sidecar_in_a_dataset_is_an_error_naming_file_and_field(tmp_path):
    write_wav(tmp_path / "song.wav", 0.2, 8000, sidecar={"title": "ok", "bpm": "fast"})
    with pytest.raises(DatasetError) as error:
        AudioDataset.from_folder(tmp_path, sample_rate=8000)
    assert str(error.value) == f"{tmp_path.resolve() / 'song.json'}: field 'bpm' must be a positive number " \
                               f"(beats per minute) or null; got 'fast'"
    (tmp_path / "song.json").write_text("not json")
    with pytest.raises(DatasetError, match=r"song\.json: the sidecar is not valid JSON"):
        AudioDataset.from_folder(tmp_path, sample_rate=8000)
    (tmp_path / "song.json").write_text(json.dumps({"bpm": 100}))  # fixed: the index re-reads it
    assert AudioDataset.from_folder(tmp_path, sample_rate=8000)[0].metadata["bpm"] == 100.0


def test_custom_metadata_hook_sees_info_and_audio_and_can_reject(tmp_path):
    write_wav(tmp_path / "keep.wav", 0.5, 8000, sidecar={"genre": "Rock"})
    write_wav(tmp_path / "nope.wav", 0.5, 8000)
    seen = []

    def hook(info, audio):
        seen.append((dict(info), tuple(audio.shape)))
        if info["relpath"] == "nope.wav":
            return {"__reject__": True}
        return {"prompt": f"{info['genre']} from {info['seconds_start']}s", "genre": "metal"}

    ds = AudioDataset.from_folder(tmp_path, sample_rate=8000, segment_seconds=0.3, mode="sequential",
                                  custom_metadata=hook)
    items = [ds[i] for i in range(len(ds))]
    assert [it is None for it in items] == [False, False, True, True]
    assert items[0].metadata == {"genre": "metal", "prompt": "rock from 0s", "seconds_start": 0, "seconds_total": 1}
    info, shape = seen[1]
    assert shape == (1, 2400)
    assert info["path"] == os.fspath(tmp_path.resolve() / "keep.wav") and info["timestamps"] == (2400, 4000)
    assert info["sample_rate"] == 8000 and info["padding_mask"].sum() == 1600
    assert [os.path.basename(p) for p in ds.report.rejected] == ["nope.wav", "nope.wav"]


def test_custom_metadata_from_a_py_file_as_stable_audio_tools(tmp_path):
    module = tmp_path / "md.py"
    module.write_text("def get_custom_metadata(info, audio):\n"
                      "    return {'prompt': info['relpath'], 'peak': float(audio.abs().max())}\n")
    write_wav(tmp_path / "data" / "x.wav", 0.2, 8000)
    ds = AudioDataset.from_folder(tmp_path / "data", sample_rate=8000, custom_metadata=os.fspath(module))
    item = ds[0]
    assert item.metadata["prompt"] == "x.wav" and item.metadata["peak"] == pytest.approx(0.5, abs=1e-3)
    hook = pickle.loads(pickle.dumps(FileHook(module)))  # DataLoader workers receive it pickled
    assert hook({"relpath": "r"}, torch.ones(1, 4)) == {"prompt": "r", "peak": 1.0}
    (tmp_path / "none.py").write_text("x = 1\n")
    with pytest.raises(DatasetError, match=r"none\.py: defines no function get_custom_metadata"):
        load_custom_metadata(tmp_path / "none.py")
    with pytest.raises(DatasetError, match=r"expected a callable or the path of a \.py file"):
        load_custom_metadata(tmp_path / "missing.py")
    (tmp_path / "boom.py").write_text("raise RuntimeError('no')\n")
    with pytest.raises(DatasetError, match=r"boom\.py: importing the custom metadata module failed \(RuntimeError: no\)"):
        load_custom_metadata(tmp_path / "boom.py")
    ds = AudioDataset.from_folder(tmp_path / "data", sample_rate=8000, custom_metadata=lambda info, audio: ["x"])
    with pytest.raises(DatasetError, match="get_custom_metadata must return a dict; got list"):
        ds[0]
