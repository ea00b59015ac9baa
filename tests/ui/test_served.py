"""The served page through gradio_client: generate over HTTP, check the audio file and the measurements."""

import pytest

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from cuecraft.ui.actions import CONDITION_INPUTS, GenerateInputs, generate_clicked  # noqa: E402


@pytest.fixture(scope="module")
def client(served, tmp_path_factory):
    return gradio_client.Client(served, verbose=False, analytics_enabled=False,
                                download_files=str(tmp_path_factory.mktemp("downloads")))


def _values(inputs: GenerateInputs, names: tuple[str, ...] = GenerateInputs.names()) -> list:
    """The widget values to send; sliders always hold a number (an unticked tempo box ignores its slider)."""
    filled = {"bpm": 120.0, "seconds": 1.0}
    return [filled.get(name) if getattr(inputs, name) is None and name in filled else getattr(inputs, name)
            for name in names]


def test_generate_over_http_returns_the_clip_and_its_measurements(client, tiny_pipe):
    import soundfile

    inputs = GenerateInputs(prompt="bright piano", tempo_on=True, bpm=120, key="C major", drums="on", seconds=0.75,
                            steps=2, seed=5, guidance=3.0, candidates=2)
    table, asked, *slots = client.predict(*_values(inputs), api_name="/generate")
    assert len(slots) == 12  # audio, spectrogram, chroma for each of 4 slots

    # each slot's output is an update: its file (downloaded by the client) and whether it is shown
    assert [slot["visible"] for slot in slots] == [True] * 6 + [False] * 6
    path = slots[0]["value"]
    info = soundfile.info(path)
    assert (info.samplerate, info.frames) == (16000, 12000)  # 0.75 s * 16 kHz exactly

    expected = generate_clicked(tiny_pipe, inputs)  # same request, same seed: the same clips and numbers
    assert table["headers"] == ["candidate", "score", "tempo asked", "tempo measured", "key asked", "key measured"]
    assert table["data"] == expected.table
    assert asked == expected.asked
    wav, _ = soundfile.read(path, dtype="int16")
    assert (wav == expected.audio[0][1]).all()
    assert slots[3]["value"].endswith(".wav") and slots[4]["value"].endswith(".png")  # candidate 2's clip, image
    assert slots[6]["value"] is None  # no candidate 3


def test_bad_input_over_http_is_the_message(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        client.predict(*_values(GenerateInputs(seconds=0.25, steps=1, seed=-1, guidance=-2.0)), api_name="/generate")
    # the pipeline's GenerationInputError lines, one per problem, and nothing else
    assert str(caught.value) == "seed: expected an int &gt;= 0; got -1<br>guidance: expected a number &gt;= 0; got -2.0"


def test_conditions_over_http(client):
    table = client.predict(*_values(GenerateInputs(prompt="soft flute", key="D minor"), CONDITION_INPUTS),
                           api_name="/conditions")
    rows = {row[0]: row for row in table["data"]}
    assert rows["key"][4] == "100%" and rows["bpm"][4] == "0%" and rows["prompt"][4] == "100%"
