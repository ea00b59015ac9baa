"""The labelled corpus: sampling, description, rendering, the written corpus, the CLI, true labels."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cuecraft.audio.key import KEYS
from cuecraft.cli import main
from cuecraft.data.corpus import (BPM_RANGE, PALETTE, TIME_SIGNATURES, PieceSpec, derive_seed, make_corpus,
                                  render_piece, sample_piece)
from cuecraft.errors import ConditioningInputError, ConfigError, DatasetError

TIMGM = str(Path(__import__("pretty_midi").__file__).parent / "TimGM6mb.sf2")
AUDIOCRAFT_FIELDS = {"title": str, "artist": str, "key": str, "bpm": float, "genre": str, "moods": list,
                     "keywords": list, "description": str, "instrument": str, "duration": float, "sample_rate": int}


@pytest.fixture(scope="module")
def specs():
    return [sample_piece(derive_seed(7, k)) for k in range(300)]


def test_sampling_is_deterministic_and_seeds_differ():
    a, b = sample_piece(123, seconds=5.0), sample_piece(123, seconds=5.0)
    assert a == b and isinstance(a, PieceSpec)
    with pytest.raises(Exception):
        a.bpm = 100  # frozen
    assert sample_piece(124, seconds=5.0) != a
    assert derive_seed(0, 5) == derive_seed(0, 5) != derive_seed(1, 5) != derive_seed(0, 6)


def test_field_ranges(specs):
    low, high = BPM_RANGE
    signatures = {name: per_bar for name, per_bar, *_ in TIME_SIGNATURES}
    for s in specs:
        assert low <= s.bpm <= high and isinstance(s.bpm, int)
        assert s.key in KEYS and s.key.split()[1] == s.mode and KEYS.index(s.key) % 12 == s.tonic
        assert signatures[s.time_signature] == s.beats_per_bar
        assert set(s.instruments) <= set(PALETTE) and s.instruments[0] == s.lead
        assert (s.drum_pattern is None) == (not s.drums) and bool(s.drum_hits) == s.drums
        tonic = "I" if s.mode == "major" else "i"
        assert s.chords[0].roman == tonic and s.chords[0].start == 0.0
        if len(s.chords) >= 3:
            assert s.chords[-1].roman == tonic and s.chords[-2].roman == "V"
        assert all(c.root in range(12) for c in s.chords) and s.chords[-1].end == pytest.approx(s.seconds)
        assert s.melody and all(0 <= n.start < n.end <= s.seconds + 1e-6 and 21 <= n.pitch <= 108 for n in s.melody)
        assert s.melody[0].pitch % 12 == s.tonic and s.melody[-1].pitch % 12 == s.tonic
        beats = np.array(s.beats)
        assert beats[0] == 0.0 and np.allclose(np.diff(beats), 60.0 / s.bpm, atol=2e-6)
        assert beats[-1] < s.seconds and s.downbeats == s.beats[::s.beats_per_bar]
    assert {s.key for s in specs} == set(KEYS)
    assert {s.time_signature for s in specs} == set(signatures)
    assert {s.drums for s in specs} == {True, False}
    assert len({i for s in specs for i in s.instruments}) >= 8
    bpms = [s.bpm for s in specs]
    assert min(bpms) < 70 and max(bpms) > 170


def test_palette_has_eight_distinct_timbres():
    assert len(PALETTE) >= 8 and {t.method for t in PALETTE.values()} == {"additive", "fm", "karplus-strong"}
    from cuecraft.data.corpus.synth import render_note

    rng = np.random.default_rng(0)
    spectra = {}
    for name in PALETTE:
        note = render_note(name, 57, 0.5, 100, 16000, rng, max_samples=16000)
        assert note.shape[0] > 8000 and np.isfinite(note).all() and np.abs(note).max() > 0.05
        spectrum = np.abs(np.fft.rfft(note[:8000]))
        spectra[name] = spectrum / np.linalg.norm(spectrum)
    names = list(spectra)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert float(spectra[a] @ spectra[b]) < 0.99, (a, b)  # no two timbres sound alike


def test_description_mentions_the_fields_in_varied_wording(specs):
    for s in specs:
        text = s.description
        assert s.key in text and f"{s.bpm} bpm" in text.lower() and s.lead in text.lower()
        assert ("drum" in text) and (("no drums" in text or "without drums" in text) != s.drums)
    assert len({s.description for s in specs}) == len(specs)
    markers = (" featuring ", " leads ", " played on ", " carries the melody", " melody", " at ")
    assert all(any(m in s.description for s in specs) for m in markers)


def test_render_is_deterministic_normalised_and_sized():
    spec = sample_piece(5, seconds=3.0)
    wav = render_piece(spec, sample_rate=16000)
    assert wav.dtype == torch.float32 and wav.shape == (1, 48000)
    assert torch.isfinite(wav).all() and float(wav.abs().max()) == pytest.approx(0.89, abs=1e-4)
    render_piece(sample_piece(6, seconds=2.0))  # another piece in between changes nothing
    assert torch.equal(render_piece(spec, sample_rate=16000), wav)
    assert render_piece(spec, sample_rate=22050).shape == (1, 66150)


def test_soundfont_rendering_with_timgm():
    spec = sample_piece(11, seconds=2.0)
    wav = render_piece(spec, sample_rate=16000, soundfont=TIMGM)
    assert wav.shape == (1, 32000) and torch.isfinite(wav).all() and float(wav.abs().max()) > 0.5
    render_piece(sample_piece(12, seconds=2.0), soundfont=TIMGM)
    assert torch.equal(render_piece(spec, sample_rate=16000, soundfont=TIMGM), wav)
    assert not torch.equal(render_piece(spec, sample_rate=16000), wav)
    from cuecraft.data.corpus.soundfont import build_midi

    midi = build_midi(spec)
    pitched = sorted(n.pitch for i in midi.instruments if not i.is_drum for n in i.notes)
    assert pitched == sorted(n.pitch for n in spec.notes)
    assert any(i.is_drum for i in midi.instruments) == spec.drums


def test_bad_arguments_are_typed_errors(tmp_path):
    for bad in (dict(seed=-1), dict(seed=1.5), dict(seed=1, seconds=0.0), dict(seed=1, seconds="8")):
        with pytest.raises(ConditioningInputError):
            sample_piece(bad.pop("seed"), **bad)
    spec = sample_piece(1, seconds=1.0)
    with pytest.raises(ConditioningInputError, match="sample_rate"):
        render_piece(spec, sample_rate=100)
    with pytest.raises(ConditioningInputError, match="no such file"):
        render_piece(spec, soundfont=tmp_path / "missing.sf2")
    with pytest.raises(ConditioningInputError, match="PieceSpec"):
        render_piece({"bpm": 120})
    with pytest.raises(ConfigError) as error:
        make_corpus(tmp_path, items=0, seconds=8, seed=-2, workers=0, sample_rate=10, soundfont=tmp_path / "x.sf2")
    assert [p.split(":")[0] for p in error.value.problems] == ["items", "seed", "sample_rate", "workers", "soundfont"]
    assert not list(tmp_path.iterdir())  # nothing written


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("piece_*"))}


def test_make_corpus_sidecars_resume_and_independence(tmp_path):
    out = tmp_path / "corpus"
    report = make_corpus(out, items=3, seconds=2.0, seed=3)
    assert (report.items, report.rendered, report.skipped) == (3, 3, 0) and report.audio_seconds == 6.0
    assert report.realtime_factor > 0
    soundfile = pytest.importorskip("soundfile")
    for k in range(3):
        meta = json.loads((out / f"piece_{k:06d}.json").read_text())
        for field, kind in AUDIOCRAFT_FIELDS.items():
            assert isinstance(meta[field], kind), field
        spec = sample_piece(derive_seed(3, k), seconds=2.0)
        assert meta["key"] == spec.key and meta["bpm"] == spec.bpm and meta["seed"] == derive_seed(3, k)
        assert meta["melody"][0] == {"pitch": spec.melody[0].pitch, "start": spec.melody[0].start,
                                     "end": spec.melody[0].end}
        assert meta["renderer"] == "cuecraft-synth" and meta["beats"] == list(spec.beats)
        assert {"mode", "time_signature", "instruments", "drums", "drum_pattern", "chords", "downbeats"} <= set(meta)
        data, rate = soundfile.read(out / f"piece_{k:06d}.wav")
        assert rate == 16000 and data.shape == (32000,)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["path"] for r in rows] == [f"piece_{k:06d}.wav" for k in range(3)]
    settings = json.loads((out / "corpus.json").read_text())["settings"]
    assert settings["seed"] == 3 and settings["sample_rate"] == 16000
    first = _files(out)

    again = make_corpus(out, items=3, seconds=2.0, seed=3)
    assert (again.rendered, again.skipped) == (0, 3)
    (out / "piece_000001.json").unlink()
    (out / "piece_000002.wav").write_bytes(first["piece_000002.wav"][:1000])  # torn
    resumed = make_corpus(out, items=4, seconds=2.0, seed=3)
    assert (resumed.rendered, resumed.skipped) == (3, 1)
    assert {k: v for k, v in _files(out).items() if "000003" not in k} == first  # bit-identical again
    with pytest.raises(DatasetError, match="seed"):
        make_corpus(out, items=4, seconds=2.0, seed=4)

    # item k depends only on (seed, k): fewer items, two workers, same bytes
    other = make_corpus(tmp_path / "other", items=2, seconds=2.0, seed=3, workers=2)
    assert other.rendered == 2
    assert _files(tmp_path / "other") == {k: v for k, v in first.items() if "000002" not in k}


def test_cli_corpus_make(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["corpus", "make", "--out", str(out), "--items", "2", "--seconds", "1.5", "--seed", "9",
                 "--soundfont", TIMGM]) == 0
    assert "2 items (2 rendered" in capsys.readouterr().out
    meta = json.loads((out / "piece_000001.json").read_text())
    assert meta["renderer"] == "soundfont:TimGM6mb.sf2" and meta["duration"] == 1.5
    assert main(["corpus", "make", "--out", str(out), "--items", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cuecraft corpus make: error") and "items: expected an int in [1," in err
    assert main(["corpus"]) == 2


def test_labels_are_true_on_a_sample():
    """librosa's beat tracker (cuecraft.audio.beats) and the chroma key estimate read the labels."""
    from cuecraft.audio.beats import estimate_tempo
    from cuecraft.audio.key import estimate_key

    tempo_ok = key_ok = 0
    n = 20
    for k in range(n):
        spec = sample_piece(derive_seed(0, 1000 + k), seconds=6.0)
        wav = render_piece(spec, sample_rate=16000)
        tempo_ok += abs(estimate_tempo(wav, 16000) - spec.bpm) <= 0.04 * spec.bpm
        key_ok += estimate_key(wav, 16000)[0] == spec.key
    assert tempo_ok / n >= 0.9 and key_ok / n >= 0.9, (tempo_ok, key_ok)
