import sys
import types

import numpy as np
import pytest
import torch

from cuecraft.audio.chroma import ChromaExtractor
from cuecraft.audio.stems import DemucsStems, HPSSStems, NoStems, make_stem_backend
from cuecraft.errors import ConfigError, MissingDependencyError
from tests.audio.synth import SCALE, drums, melody

pytest.importorskip("librosa")
RATE = 8000


def test_drums_change_the_hpss_chroma_far_less_than_the_plain_chroma():
    tune = melody(SCALE, 0.25, RATE, level=0.3)
    mix = tune + drums(len(tune), RATE)
    extractor = ChromaExtractor(RATE, radix2_exp=10)
    change = {}
    for backend in (NoStems(), HPSSStems()):
        clean, drummed = (extractor(backend(torch.from_numpy(x), RATE)) for x in (tune, mix))
        change[backend.name] = (drummed - clean).abs().mean().item()
    assert change["none"] > 0.1  # the drums smear the plain chroma
    assert change["hpss"] < 0.1 * change["none"]  # measured: 0.005 against 0.125


def test_hpss_removes_the_bass_register_and_keeps_the_melody_register():
    t = np.arange(RATE) / RATE
    mix = (np.sin(2 * np.pi * 55.0 * t) + np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    kept = HPSSStems()(torch.from_numpy(mix), RATE).numpy()
    assert kept.shape == mix.shape and kept.dtype == np.float32
    window = np.hanning(4000)
    before, after = (np.abs(np.fft.rfft(x[2000:6000] * window)) for x in (mix, kept))
    frequencies = np.fft.rfftfreq(4000, 1 / RATE)
    gain_db = {f: 20 * np.log10(after[np.argmin(abs(frequencies - f))] / before[np.argmin(abs(frequencies - f))])
               for f in (55.0, 440.0)}
    assert gain_db[55.0] < -60 and abs(gain_db[440.0]) < 0.1


def test_hpss_geometry_is_set_in_seconds_and_hertz():
    hpss = HPSSStems()
    assert hpss.geometry(8000) == (512, 128, (13, 33))
    assert hpss.geometry(32000) == (2048, 512, (13, 33))
    gain = hpss.bass_gain(np.array([50.0, 130.0 / np.sqrt(2), 110.0, 130.0, 1000.0]))
    np.testing.assert_allclose(gain[[0, 1, 3, 4]], [0.0, 0.0, 1.0, 1.0], atol=1e-6)
    assert 0.0 < gain[2] < 1.0


def test_none_is_the_identity_and_empty_waveforms_pass():
    wav = torch.randn(100)
    assert NoStems()(wav, RATE) is wav
    assert HPSSStems()(torch.zeros(0), RATE).shape == (0,)


def test_backend_choice_and_settings():
    assert make_stem_backend("hpss").settings()["bass_cutoff_hz"] == 130.0
    assert make_stem_backend("none").settings() == {"name": "none"}
    assert HPSSStems(margin=2.0).settings() != HPSSStems().settings()
    with pytest.raises(ConfigError, match="stems: unknown stem backend 'spleeter'; valid backends: hpss, demucs, none"):
        make_stem_backend("spleeter")
    with pytest.raises(ConfigError, match="stems_model: only the 'demucs' stem backend takes a model file"):
        make_stem_backend("hpss", "model.th")
    with pytest.raises(ConfigError, match="margin: must be >= 1"):
        HPSSStems(margin=0.5)


def test_demucs_without_the_package_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "demucs", None)  # not installed
    with pytest.raises(MissingDependencyError) as error:
        make_stem_backend("demucs", "model.th")
    message = str(error.value)
    assert "optional package 'demucs'" in message and "pip install 'cuecraft[stems]'" in message
    assert "stems='hpss'" in message


@pytest.fixture
def fake_demucs(monkeypatch):
    """A stand-in for the demucs package: a 'model' whose source k is (k + 1) times the mix."""
    calls = {}

    class Model:
        sources = ["drums", "bass", "other", "vocals"]
        samplerate = RATE
        audio_channels = 2

        def eval(self):
            return self

    def get_model(name, repo=None):
        calls["get_model"] = (name, repo)
        return Model()

    def apply_model(model, mix, device=None):
        calls["mix"] = mix.shape
        return torch.stack([mix * (k + 1) for k in range(4)], dim=1)  # [B, S, C, T]

    package = types.ModuleType("demucs")
    pretrained = types.ModuleType("demucs.pretrained")
    pretrained.get_model = get_model
    apply = types.ModuleType("demucs.apply")
    apply.apply_model = apply_model
    for name, module in (("demucs", package), ("demucs.pretrained", pretrained), ("demucs.apply", apply)):
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_demucs_keeps_vocals_and_other(fake_demucs, tmp_path):
    with pytest.raises(ConfigError, match="needs a local Demucs model file"):
        DemucsStems(None)
    with pytest.raises(ConfigError, match="expected an existing Demucs model file"):
        DemucsStems(tmp_path / "missing.th")
    model = tmp_path / "955717e8-8726e21a.th"
    model.write_bytes(b"weights")
    backend = make_stem_backend("demucs", str(model))
    wav = torch.sin(torch.arange(800) * 0.3)
    out = backend(wav, RATE)
    assert fake_demucs["get_model"] == ("955717e8", model.parent.resolve())
    assert fake_demucs["mix"] == (1, 2, 800)  # copied to the model's two channels
    # normalised as demucs.separate does, then scaled back: other (3x) + vocals (4x) = 7x the mix
    torch.testing.assert_close(out, 7 * (wav - wav.mean()), rtol=1e-4, atol=1e-4)
    settings = backend.settings()
    assert settings["name"] == "demucs" and settings["size"] == 7 and settings["keep"] == ["vocals", "other"]
