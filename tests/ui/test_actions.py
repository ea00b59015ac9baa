"""The web UI's functions called directly: widget values in, what the page shows out, no server."""

import numpy as np
import pytest

from cuecraft.errors import GenerationInputError
from cuecraft.ui.actions import (
    MEASURED_HEADER, GenerateInputs, conditions_for, generate_clicked, pcm16, request_of,
)

pytest.importorskip("gradio")


def test_generate_clicked_returns_a_player_images_and_measurements_per_candidate(tiny_pipe):
    calls = []
    inputs = GenerateInputs(prompt="a calm organ", tempo_on=True, bpm=100, key="a minor", instrument="organ",
                            drums="off", seconds=0.5, steps=2, seed=3, candidates=2)
    shown = generate_clicked(tiny_pipe, inputs, progress=lambda done, total: calls.append((done, total)))

    assert calls == [(1, 2), (2, 2)]  # one sampler batch of 2 steps
    assert len(shown.audio) == len(shown.spectrograms) == len(shown.chromas) == len(shown.table) == 2
    for rate, clip in shown.audio:
        assert rate == 16000 and clip.dtype == np.int16 and clip.shape == (8000,)  # 0.5 s * 16 kHz
    for image in (*shown.spectrograms, *shown.chromas):
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.shape[0] >= 100
        assert image.std() > 10  # a plot, not a blank canvas
    assert len(MEASURED_HEADER) == len(shown.table[0])
    result = shown.result
    for row, measured, score in zip(shown.table, result.measured, result.scores):
        assert row[2:5:2] == [100.0, "A minor"]  # asked tempo and key (the key in its canonical spelling)
        assert row[3] == measured["tempo"] and row[5] == (measured["key"] or "-")
        assert row[1] == round(score, 3)
    assert [row[1] for row in shown.table] == sorted((row[1] for row in shown.table), reverse=True)
    assert shown.asked == ("asked: prompt a calm organ, bpm 100.0, key A minor, instrument organ, drums off, "
                           "seconds 0.5")
    assert shown.warnings == []
    # the player's samples are the pipeline's clip in 16-bit PCM
    assert np.abs(shown.audio[0][1] / 32767 - result.audio[0]).max() <= 1 / 32767


def test_unranked_candidates_warn(tiny_pipe):
    shown = generate_clicked(tiny_pipe, GenerateInputs(prompt="x", seconds=0.25, steps=1, candidates=2))
    assert len(shown.audio) == 2 and shown.table[0][2] == "-" and shown.table[0][4] == "-"
    assert shown.warnings and "neither was asked" in shown.warnings[0]


def test_any_off_and_blank_leave_conditions_out():
    request = request_of(GenerateInputs(prompt="  ", negative_prompt="", tempo_on=False, bpm=150, key="any",
                                        instrument="Any", drums="any", melody=None, seconds=None))
    assert (request.prompt, request.negative_prompt, request.bpm, request.key, request.instrument, request.drums,
            request.melody, request.seconds) == (None,) * 8
    assert request_of(GenerateInputs(tempo_on=True, bpm=90.0, drums="on")).bpm == 90.0


@pytest.mark.parametrize("inputs, expected", [
    (GenerateInputs(key="H major"), "key"),
    (GenerateInputs(tempo_on=True, bpm=500), "bpm: expected a number in [40, 240]"),
    (GenerateInputs(tempo_on=True, bpm=None), "the tempo box is ticked"),
    (GenerateInputs(instrument="banjo"), "instrument: unknown value 'banjo'; this model knows: piano, organ, flute"),
    (GenerateInputs(seconds=3.0), "seconds: expected a number in (0, 1]"),
    (GenerateInputs(steps=2.5), "steps: expected a whole number; got 2.5"),
    (GenerateInputs(candidates=9), "candidates: expected 1 to 4"),
    (GenerateInputs(melody="/nonexistent/tune.wav"), "melody:"),
])
def test_bad_inputs_are_one_message(tiny_pipe, inputs, expected):
    with pytest.raises(GenerationInputError) as caught:
        generate_clicked(tiny_pipe, inputs)
    assert expected in str(caught.value)


def test_conditions_for_shows_what_each_control_sets(tiny_pipe):
    def coverage(inputs):
        return {row[0]: row[4] for row in conditions_for(tiny_pipe, inputs)}

    empty = coverage(GenerateInputs())
    assert set(empty) == {"prompt", "bpm", "key", "instrument", "drums", "self_wav"}
    assert set(empty.values()) == {"0%"}  # nothing asked: every condition is its null
    asked = coverage(GenerateInputs(prompt="warm piano", tempo_on=True, bpm=120, key="C major", drums="on"))
    assert asked == {"prompt": "100%", "bpm": "100%", "key": "100%", "instrument": "0%", "drums": "100%",
                     "self_wav": "0%"}
    rows = {row[0]: row for row in conditions_for(tiny_pipe, GenerateInputs(key="C major"))}
    assert rows["key"][1:4] == ["list", "cross, global", "1 x 1 x 32"]
    assert rows["self_wav"][2] == "input_concat"


def test_melody_upload_is_a_condition(tiny_pipe, tmp_path):
    from cuecraft.pipelines.wav import write_wav

    rate = 16000
    time = np.arange(rate // 2) / rate
    write_wav(tmp_path / "tune.wav", 0.5 * np.sin(2 * np.pi * 440 * time).astype(np.float32), rate)
    rows = {row[0]: row for row in conditions_for(tiny_pipe, GenerateInputs(melody=str(tmp_path / "tune.wav")))}
    assert rows["self_wav"][4] != "0%"  # the chroma of the recording's frames


def test_pcm16_clips_and_zeroes_nan():
    assert pcm16(np.array([0.0, 1.5, -2.0, np.nan, 0.5], dtype=np.float32)).tolist() == [0, 32767, -32767, 0, 16384]


def _components(app):
    return {getattr(block, "label", None): block for block in app.blocks.values()}


def test_controls_the_model_lacks_are_hidden(tiny_pipe, bare_pipe):
    from cuecraft.ui.app import build_app

    full, bare = _components(build_app(tiny_pipe)), _components(build_app(bare_pipe))
    lacking = ("prompt", "negative prompt", "key", "instrument", "drums", "melody (its chroma is followed)")
    for label in lacking:
        assert full[label].visible is True
        assert bare[label].visible is False
    for label in ("set tempo", "tempo (bpm)", "seconds", "steps", "guidance", "seed"):
        assert full[label].visible is True and bare[label].visible is True
    assert (full["tempo (bpm)"].minimum, full["tempo (bpm)"].maximum) == (40.0, 240.0)
    assert full["key"].choices[0][0] == "any" and len(full["key"].choices) == 25
    assert bare["seconds"].maximum == 1.0
    # hidden widgets keep their null values: generating on the bare model works
    shown = generate_clicked(bare_pipe, GenerateInputs(prompt="", tempo_on=True, bpm=60, seconds=0.25, steps=1))
    assert shown.audio[0][1].shape == (4000,)


def test_page_error_is_escaped_lines_without_traceback():
    import gradio as gr

    from cuecraft.ui.app import page_error

    error = page_error(GenerationInputError(["key: unknown value '<H>'", "seconds: too long"]))
    assert isinstance(error, gr.Error)
    assert error.message == "key: unknown value &#x27;&lt;H&gt;&#x27;<br>seconds: too long"
    assert error.title == "Cannot generate" and error.print_exception is False


def test_bad_concurrency_is_an_error(tiny_pipe):
    from cuecraft.ui.app import build_app

    with pytest.raises(GenerationInputError, match="concurrency: expected an int >= 1"):
        build_app(tiny_pipe, concurrency=0)


def test_musicldm_tab_only_with_a_musicldm_model(tiny_pipe, tmp_path):
    from cuecraft.ui.app import build_app
    from cuecraft.ui.musicldm import MusicLDMInputs, musicldm_clicked

    def tabs(app):
        return [block.label for block in app.blocks.values() if type(block).__name__ == "Tab"]

    assert tabs(build_app(tiny_pipe)) == ["Generate", "Conditions"]
    from tests.tiny_models import save_tiny_musicldm

    directory = save_tiny_musicldm(tmp_path / "musicldm", seed=0)
    app = build_app(tiny_pipe, musicldm_dir=directory)
    assert tabs(app) == ["Generate", "Conditions", "MusicLDM"]

    from cuecraft.pipelines import MusicLDMPipeline

    pipeline = MusicLDMPipeline.from_pretrained(str(directory))
    calls = []
    audio, rows = musicldm_clicked(pipeline, MusicLDMInputs(prompt="a drum loop", seconds=0.5, steps=2, candidates=2),
                                   progress=lambda done, total: calls.append((done, total)))
    assert calls[-1][0] == calls[-1][1] and len(calls) == calls[-1][1]
    assert [rate for rate, _ in audio] == [pipeline.sample_rate] * 2
    assert [clip.shape for _, clip in audio] == [(round(0.5 * pipeline.sample_rate),)] * 2
    assert [row[0] for row in rows] == [1, 2] and rows[0][1] >= rows[1][1]  # CLAP similarity, best first
    with pytest.raises(GenerationInputError, match="prompt: empty"):
        musicldm_clicked(pipeline, MusicLDMInputs(prompt=" "))
