import numpy as np
import pytest
import torch

from cuecraft.audio.io import AudioReadError, load_audio
from cuecraft.audio.resample import prepare_waveform, resample, to_mono
from cuecraft.errors import CuecraftError

soundfile = pytest.importorskip("soundfile")


def test_to_mono_averages_channels():
    stereo = torch.tensor([[1.0, 2.0, 3.0], [3.0, 0.0, -1.0]])
    assert to_mono(stereo).tolist() == [2.0, 1.0, 1.0]
    mono = torch.tensor([0.5, -0.5], dtype=torch.float64)
    assert to_mono(mono).dtype == torch.float32 and to_mono(mono).tolist() == [0.5, -0.5]
    with pytest.raises(ValueError, match=r"\[C, T\] or \[T\]"):
        to_mono(torch.zeros(1, 2, 3))


def test_resample_keeps_pitch_and_level():
    t = torch.arange(44100) / 44100
    wav = 0.5 * torch.sin(2 * torch.pi * 440.0 * t)
    out = resample(wav, 44100, 8000)
    assert out.shape == (8000,) and out.dtype == torch.float32
    spectrum = np.abs(np.fft.rfft(out.numpy() * np.hanning(8000)))
    assert abs(np.fft.rfftfreq(8000, 1 / 8000)[spectrum.argmax()] - 440.0) <= 1.0
    rms = out[500:-500].square().mean().sqrt().item()
    assert abs(rms - 0.5 / np.sqrt(2)) < 0.005
    assert resample(wav, 8000, 8000) is wav
    assert resample(torch.zeros(2, 0), 16000, 8000).shape == (2, 0)


def test_prepare_waveform_cuts_downmixes_and_resamples():
    stereo = torch.randn(2, 16000)
    out = prepare_waveform(stereo, 16000, 8000, length=8000)
    assert out.shape == (4000,)
    torch.testing.assert_close(out, resample(stereo[:, :8000].mean(0), 16000, 8000))


def test_load_audio_round_trip(tmp_path):
    data = np.random.default_rng(0).uniform(-1, 1, size=(1000, 2)).astype(np.float32)  # [T, C]
    path = tmp_path / "clip.wav"
    soundfile.write(path, data, 22050, subtype="FLOAT")
    wav, rate = load_audio(path)
    assert rate == 22050 and wav.shape == (2, 1000) and wav.dtype == torch.float32
    assert torch.equal(wav, torch.from_numpy(data.T.copy()))


def test_unreadable_files_raise_audio_read_error(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    for path in (text, tmp_path / "missing.wav"):
        with pytest.raises(AudioReadError, match=str(path).replace(".", r"\.") + ": cannot read audio") as error:
            load_audio(path)
        assert isinstance(error.value, CuecraftError) and isinstance(error.value, OSError)
