"""``cuecraft eval --audio`` on hostile and foreign input (issue 23): bounded memory, typed errors,
AudioCraft's and the corpus' sidecars read.

A clip longer than ``MAX_SECONDS`` (an hour of audio reached 8.5 GB in beat tracking) is refused from
its header before anything is decoded, with the limit in the message; so is a folder of more than
``MAX_SAMPLES`` samples in all. Sidecars that are FIFOs, links to devices, nested thousands deep or
hold values past every bound are EvaluationInputErrors naming the file.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from cuecraft.cli import main
from cuecraft.errors import AudioReadError, CuecraftError, EvaluationInputError
from cuecraft.eval import run
from cuecraft.eval.run import evaluate_audio

soundfile = pytest.importorskip("soundfile")


def _wav(path, seconds: float, rate: int = 16000, sidecar: dict | None = None) -> None:
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, subtype="PCM_16")
    if sidecar is not None:
        path.with_suffix(".json").write_text(json.dumps(sidecar))


def test_an_hour_of_audio_is_refused_from_its_header_naming_the_limit(tmp_path):
    _wav(tmp_path / "long.wav", 3600, rate=1000, sidecar={"bpm": 120})  # 7 MB on disk, an hour by its header
    started = time.perf_counter()
    with pytest.raises(AudioReadError, match=r"3,600.0 s of audio by its header; the limit is 120.0 s \(cuecraft "
                                             r"eval scores clips of at most 120 s"):
        evaluate_audio(tmp_path, ceiling=False)
    assert time.perf_counter() - started < 5  # nothing decoded or tracked


def test_a_folder_of_more_samples_than_the_bound_is_refused_before_decoding(tmp_path, monkeypatch):
    for name in ("a", "b", "c"):
        _wav(tmp_path / f"{name}.wav", 1.0, sidecar={"bpm": 120})
    monkeypatch.setattr(run, "MAX_SAMPLES", 40_000)  # two clips of 16,000 fit, three do not
    decoded = []
    monkeypatch.setattr("cuecraft.audio.io.check_samples", lambda data, name: decoded.append(name))
    with pytest.raises(EvaluationInputError, match=r"more than 40,000 samples of audio in all \(at c.wav\)"):
        evaluate_audio(tmp_path, ceiling=False)
    assert decoded == []


@pytest.mark.parametrize("sidecar, message", [
    ("[" * 100_000 + "]" * 100_000, "nested deeper than 64 levels"),
    ('{"bpm": ' + "9" * 5000 + "}", "not readable as JSON"),
    ('{"bpm": ' + "9" * 4000 + "}", "field 'bpm' must be a number of beats per minute in"),
    ('{"bpm": 120, "seconds": 1e9}', "field 'seconds' must be a number of seconds in (0, 120]"),
    ('{"bpm": 120, "reference_beats": [40000.0]}', "each in [0, 30,000] (mir_eval's limit)"),
    ('{"bpm": 120, "melody_path": "a\\u0000b.wav"}', "field 'melody_path' must be a path string"),
    ('{"prompt": "' + "x" * 20_000 + '"}', "a non-empty string of at most 10,000 characters"),
    ('{"key": "' + "Z" * 100_000 + '"}', "field 'key' must be a string"),
])
def test_hostile_sidecar_values_are_typed_and_short(tmp_path, sidecar, message):
    _wav(tmp_path / "a.wav", 0.5)
    (tmp_path / "a.json").write_text(sidecar)
    with pytest.raises(EvaluationInputError) as caught:
        evaluate_audio(tmp_path, ceiling=False)
    assert message in str(caught.value) and len(str(caught.value)) < 1000, str(caught.value)[:2000]


def test_a_fifo_sidecar_or_one_linked_to_a_device_is_refused_not_waited_on(tmp_path):
    import signal

    _wav(tmp_path / "a.wav", 0.5)
    os.mkfifo(tmp_path / "a.json")
    signal.alarm(10)  # a blocked read fails the test instead of hanging it
    try:
        with pytest.raises(EvaluationInputError, match="it is a FIFO, not a regular file"):
            evaluate_audio(tmp_path, ceiling=False)
        os.unlink(tmp_path / "a.json")
        os.symlink("/dev/zero", tmp_path / "a.json")
        with pytest.raises(EvaluationInputError, match="it is a device, not a regular file"):
            evaluate_audio(tmp_path, ceiling=False)
    finally:
        signal.alarm(0)


def test_audiocraft_sidecars_are_read_and_their_other_fields_ignored_with_a_note(tmp_path, capsys):
    _wav(tmp_path / "a.wav", 2.0, sidecar={
        "key": "", "artist": "someone", "sample_rate": 16000, "file_extension": "wav", "description": "a calm tune",
        "keywords": "calm, piano", "duration": 2.0, "bpm": "96", "genre": "ambient", "title": "", "name": "a",
        "instrument": "piano", "moods": ["calm"]})
    out = tmp_path / "out"
    assert main(["eval", "--audio", str(tmp_path), "--out", str(out), "--no-progress", "--no-ceiling"]) == 0
    printed = capsys.readouterr().out
    assert ("note: sidecar fields that are not asked values, ignored: artist, file_extension, genre, keywords, "
            "moods, name, sample_rate, title") in printed
    report = json.loads((out / "report.json").read_text())
    assert report["items"][0]["asked"] == {"prompt": "a calm tune", "bpm": 96.0, "instrument": "piano"}


def test_eval_audio_reads_a_corpus_folder(tmp_path, capsys):
    from cuecraft.data.corpus import make_corpus

    make_corpus(tmp_path / "corpus", items=1, seconds=2.0, seed=0)
    out = tmp_path / "out"
    assert main(["eval", "--audio", str(tmp_path / "corpus"), "--out", str(out), "--no-progress",
                 "--no-ceiling"]) == 0, capsys.readouterr().err
    item = json.loads((out / "report.json").read_text())["items"][0]
    sidecar = json.loads((tmp_path / "corpus" / "piece_000000.json").read_text())
    assert item["asked"]["prompt"] == sidecar["description"] and item["asked"]["bpm"] == sidecar["bpm"]
    assert item["asked"]["chords"].startswith(f"{sidecar['chords'][0]['symbol']}@0")
    assert "beat_f_measure" in item["scores"]  # the corpus' beats are the reference beats


def test_unknown_fields_stay_errors_and_cli_errors_are_one_line(tmp_path, capsys):
    _wav(tmp_path / "a.wav", 0.5, sidecar={"bpm": 120, "tempo_guess": 3})
    assert main(["eval", "--audio", str(tmp_path), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cuecraft eval: error: ") and "unknown field 'tempo_guess'" in err
    assert len(err.splitlines()) == 1
    assert issubclass(EvaluationInputError, CuecraftError)


def test_the_cli_bound_on_seconds_is_the_library_one(tmp_path, capsys):
    from cuecraft.cli.eval import MAX_SECONDS as cli_bound
    from cuecraft.eval.prompts import MAX_SECONDS

    assert cli_bound == MAX_SECONDS
    assert main(["eval", "--model", "builtin", "--seconds", "1e9", "--out", str(tmp_path / "o")]) == 2
    assert "--seconds must be in (0, 120]" in capsys.readouterr().err
