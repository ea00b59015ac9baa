"""The web UI's time signature, first downbeat and chords: shown only for a model with ``beats`` / ``chords``
conditioners, passed through to its conditions."""

import pytest

from cuecraft.errors import GenerationInputError
from cuecraft.ui.actions import GenerateInputs, conditions_for, generate_clicked, request_of

pytest.importorskip("gradio")

NEW_LABELS = ("time signature", "first downbeat (s)", "chords")


@pytest.fixture(scope="module")
def time_pipe(tmp_path_factory):
    from cuecraft.pipelines.generate import GenerationPipeline
    from tests.pipelines.time_model import export_time_model

    return GenerationPipeline.from_dir(export_time_model(tmp_path_factory.mktemp("ui-time") / "model"))


def _components(app):
    return {getattr(block, "label", None): block for block in app.blocks.values()}


def test_the_controls_show_only_for_a_model_that_has_them(time_pipe, tiny_pipe):
    from cuecraft.ui.app import build_app

    timed, full = _components(build_app(time_pipe)), _components(build_app(tiny_pipe))
    for label in NEW_LABELS:
        assert timed[label].visible is True and full[label].visible is False
    for label in ("set tempo", "tempo (bpm)", "key"):
        assert timed[label].visible is True
    for label in ("prompt", "instrument", "drums", "melody (its chroma is followed)"):
        assert timed[label].visible is False
    assert (timed["tempo (bpm)"].minimum, timed["tempo (bpm)"].maximum) == (30.0, 300.0)
    assert len(timed["key"].choices) == 25  # "any" and the 24 keys a chords model reads
    assert [choice[0] for choice in timed["time signature"].choices][:4] == ["any", "4/4", "3/4", "6/8"]


def test_blank_and_any_leave_them_out():
    request = request_of(GenerateInputs(time_signature="any", chords="  ", downbeat_offset=None))
    assert (request.time_signature, request.chords, request.downbeat_offset) == (None, None, None)
    request = request_of(GenerateInputs(tempo_on=True, bpm=100, time_signature="3/4", chords="Am F",
                                        downbeat_offset=0.5))
    assert (request.time_signature, request.chords, request.downbeat_offset) == ("3/4", "Am F", 0.5)


def test_conditions_and_generation_receive_them(time_pipe):
    def coverage(inputs):
        return {row[0]: row[4] for row in conditions_for(time_pipe, inputs)}

    assert coverage(GenerateInputs()) == {"rhythm": "0%", "harmony": "0%"}
    asked = GenerateInputs(tempo_on=True, bpm=120, time_signature="3/4", chords="Am F C G")
    assert coverage(asked) == {"rhythm": "100%", "harmony": "100%"}
    shown = generate_clicked(time_pipe, GenerateInputs(tempo_on=True, bpm=120, time_signature="3/4",
                                                       chords="Am F C G", seconds=0.5, steps=1))
    assert shown.asked == "asked: bpm 120.0, seconds 0.5, time_signature 3/4, chords Am F C G"
    assert shown.audio[0][1].shape == (8000,)


def test_bad_values_are_one_message(time_pipe):
    with pytest.raises(GenerationInputError) as caught:
        generate_clicked(time_pipe, GenerateInputs(tempo_on=True, bpm=120, time_signature="7/x", chords="Am Xq7",
                                                   steps=1))
    assert [line.split(":")[0] for line in caught.value.problems] == ["time_signature", "chords"]
