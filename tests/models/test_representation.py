"""The Representation contract: mel (Griffin-Lim and vocoder decoding) and a tiny AutoencoderKL."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from cuecraft.errors import ConfigError, PretrainedModelNotFoundError, WeightsError
from cuecraft.models.representation import (
    AutoencoderRepresentation, GriffinLimOptions, MelOptions, MelRepresentation, RepresentationInputError, Vocoder,
    VocoderOptions, load_representation,
)
from cuecraft.models.representation.griffinlim import griffin_lim
from cuecraft.models.representation.spectral import hann, istft, mel_filterbank, stft

RATE = 16000


def chord(seconds: float = 1.0, pitches=(261.63, 329.63, 392.0)) -> torch.Tensor:
    """A C major triad of sines with 20 ms fades: [1, 1, T]."""
    t = torch.arange(int(seconds * RATE)) / RATE
    fade = torch.clamp(torch.minimum(t, seconds - t) / 0.02, 0, 1)
    return (fade * sum(0.25 * torch.sin(2 * math.pi * f * t) for f in pitches))[None, None]


def log_mel_l1(representation: MelRepresentation, a: torch.Tensor, b: torch.Tensor) -> float:
    return float((representation.log_mel(a) - representation.log_mel(b)).abs().mean())


def tiny_vocoder() -> Vocoder:
    torch.manual_seed(0)
    return Vocoder(VocoderOptions(width=16, intermediate=32, layers=2))


# -- spectral building blocks -------------------------------------------------------------------
def test_same_framing_inverts_exactly():
    x = torch.randn(3, 256 * 9)
    spectrum = stft(x, 1024, 256, hann(1024))
    assert spectrum.shape == (3, 513, 9)
    assert torch.allclose(istft(spectrum, 1024, 256, hann(1024)), x, atol=1e-5)


def test_filterbank_is_librosas_slaney_mel():
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(RATE, 1024, 64, 30.0, 7600.0).numpy()
    theirs = librosa.filters.mel(sr=RATE, n_fft=1024, n_mels=64, fmin=30.0, fmax=7600.0)
    assert abs(ours - theirs).max() < 1e-6 * theirs.max() * 100


# -- mel: shapes and lengths -------------------------------------------------------------------
@pytest.mark.parametrize("length", [1, 255, 256, 257, 4000, 16000])
def test_mel_shapes_and_exact_lengths(length):
    representation = MelRepresentation(replace(MelOptions(), griffin_lim=GriffinLimOptions(n_iter=2)))
    wav = torch.randn(2, 1, length) * 0.1
    z = representation.encode(wav)
    frames = math.ceil(length / 256)
    assert z.shape == (2, 64, frames) == (2, representation.latent_dim, representation.frames(length))
    assert representation.decode(z).shape == (2, 1, frames * 256) == (2, 1, representation.samples(frames))
    assert representation.decode(z, length=length).shape == (2, 1, length)
    representation.set_vocoder(tiny_vocoder())
    assert representation.decode(z, length=length).shape == (2, 1, length)


def test_mel_geometry_and_channels():
    representation = MelRepresentation(MelOptions(channels=2, n_mels=32, hop=160, n_fft=640))
    assert representation.frame_rate == 100.0 and representation.latent_dim == 64
    wav = torch.randn(1, 2, 1000) * 0.1
    z = representation.encode(wav)
    assert z.shape == (1, 64, 7)
    # channel 1's rows are the second block of 32
    alone = representation.encode(wav[:, 1:].expand(1, 2, -1))
    assert torch.allclose(z[:, 32:], alone[:, 32:])
    assert MelRepresentation(MelOptions(hop=320)).frame_rate == 50.0
    assert MelRepresentation(MelOptions(sample_rate=44100, hop=512, n_fft=2048)).frame_rate == pytest.approx(86.1328125)


def test_bad_inputs_and_options_are_typed_errors():
    representation = MelRepresentation()
    with pytest.raises(RepresentationInputError, match=r"\[B, C, T\]"):
        representation.encode(torch.zeros(100))
    with pytest.raises(RepresentationInputError, match="1 channel"):
        representation.encode(torch.zeros(1, 2, 100))
    with pytest.raises(RepresentationInputError, match="frames"):
        representation.decode(torch.zeros(1, 63, 4))
    with pytest.raises(RepresentationInputError, match="more than the 1024 samples"):
        representation.decode(torch.zeros(1, 64, 4), length=1025)
    with pytest.raises(ConfigError, match="n_fft"):
        MelOptions(n_fft=256, hop=256)
    with pytest.raises(ConfigError, match="f_max"):
        MelOptions(f_max=9000.0)
    with pytest.raises(ConfigError, match="vocoder: does not fit"):
        representation.set_vocoder(Vocoder(VocoderOptions(n_mels=80, width=8, intermediate=8, layers=1)))


# -- normalisation -----------------------------------------------------------------------------
def test_fit_stats_normalises_per_band_and_globally():
    wav = torch.cat([chord(0.5), 0.1 * torch.randn(1, 1, 8000)], dim=-1)
    band = MelRepresentation().fit_stats(wav)
    z = band.encode(wav)[0]  # [64, L]
    assert band.fitted
    assert z.mean(dim=1).abs().max() < 1e-4
    stds = z.std(dim=1, unbiased=False)
    assert ((stds - 1).abs() < 1e-3).all() or (band.std == 0.1).any()  # bands at the floor are below 1
    glob = MelRepresentation(MelOptions(stats="global")).fit_stats([wav[0], wav[0]])
    assert torch.all(glob.std == glob.std[0]) and torch.all(glob.mean == glob.mean[0])
    assert float(glob.encode(wav).mean()) == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(RepresentationInputError, match="no audio"):
        MelRepresentation().fit_stats([])


def test_save_load_round_trip_is_identical(tmp_path):
    representation = MelRepresentation(MelOptions(n_mels=32, griffin_lim=GriffinLimOptions(n_iter=4)))
    representation.fit_stats(chord(0.5))
    wav = chord(0.3)
    z = representation.encode(wav)
    griffin_lim = representation.decode(z, length=wav.shape[-1])
    representation.save(tmp_path / "gl")
    loaded = load_representation(tmp_path / "gl")
    assert isinstance(loaded, MelRepresentation) and loaded.vocoder is None and loaded.fitted
    assert loaded.options == representation.options
    assert torch.equal(loaded.mean, representation.mean) and torch.equal(loaded.std, representation.std)
    assert torch.equal(loaded.encode(wav), z)
    assert torch.equal(loaded.decode(z, length=wav.shape[-1]), griffin_lim)

    torch.manual_seed(1)
    representation.set_vocoder(Vocoder(VocoderOptions(n_mels=32, width=16, intermediate=32, layers=2)))
    representation.save(tmp_path / "voc")
    loaded = MelRepresentation.load(tmp_path / "voc")
    config = json.loads((tmp_path / "voc" / "representation.json").read_text())
    assert config["format"] == "cuecraft.representation" and config["version"] == 1 and config["kind"] == "mel"
    with torch.no_grad():
        assert torch.equal(loaded.decode(z), representation.decode(z))


def test_missing_corrupt_and_mismatched_files_are_typed_errors(tmp_path):
    with pytest.raises(WeightsError, match="representation.json: no such file"):
        load_representation(tmp_path / "nothing")
    folder = MelRepresentation().save(tmp_path / "rep")
    config_file, tensors_file = folder / "representation.json", folder / "representation.safetensors"
    config = json.loads(config_file.read_text())

    tensors_file.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError, match=r"representation\.safetensors: not a readable safetensors"):
        load_representation(folder)
    tensors_file.unlink()
    with pytest.raises(WeightsError, match=r"representation\.safetensors: no such file"):
        load_representation(folder)
    MelRepresentation().save(folder)
    config_file.write_text(json.dumps({**config, "options": {**config["options"], "n_mels": 80}}))
    with pytest.raises(WeightsError, match=r"shape mismatches \['mean: file \[64\], expected \[80\]"):
        load_representation(folder)
    config_file.write_text(json.dumps({**config, "version": 99}))
    with pytest.raises(WeightsError, match="format version 99"):
        load_representation(folder)
    config_file.write_text(json.dumps({**config, "options": {**config["options"], "hop": 0}}))
    with pytest.raises(WeightsError, match=r"(?s)representation.json: options does not fit MelOptions.*mel.hop"):
        load_representation(folder)
    config_file.write_text("{ torn")
    with pytest.raises(WeightsError, match="not readable as JSON"):
        load_representation(folder)
    config_file.write_text(json.dumps({**config, "kind": "codec"}))
    with pytest.raises(WeightsError, match="unknown representation kind 'codec'"):
        load_representation(folder)


# -- Griffin-Lim --------------------------------------------------------------------------------
def test_griffin_lim_converges_and_momentum_helps():
    """On the chord's true STFT magnitude, Griffin-Lim's inconsistency (spectral convergence of the
    result's magnitude against the target) falls with iterations, faster with momentum."""
    wav = torch.nn.functional.pad(chord(1.0)[0], (0, 63 * 256 - RATE))  # [1, 63 frames * 256]
    window = hann(1024)
    magnitude = stft(wav, 1024, 256, window).abs()

    def inconsistency(n_iter: int, momentum: float) -> float:
        out = griffin_lim(magnitude, 1024, 256, window, GriffinLimOptions(n_iter=n_iter, momentum=momentum))
        return float((stft(out, 1024, 256, window).abs() - magnitude).norm() / magnitude.norm())

    # measured: 0.377 (1 iteration), 0.114 (16), 0.154 (32 without momentum), 0.066 (32)
    one, sixteen, plain, fast = inconsistency(1, 0.99), inconsistency(16, 0.99), inconsistency(32, 0.0), \
        inconsistency(32, 0.99)
    assert fast < 0.09 and fast < sixteen < 0.5 * one
    assert fast < 0.6 * plain


def test_griffin_lim_decodes_a_chord_from_its_mel():
    wav = chord(1.0)
    representation = MelRepresentation().fit_stats(wav)
    z = representation.encode(wav)
    distances = {}
    for n_iter in (1, 32):
        representation.options = replace(representation.options, griffin_lim=GriffinLimOptions(n_iter=n_iter))
        distances[n_iter] = log_mel_l1(representation, representation.decode(z, length=RATE), wav)
    # measured: 0.508 (1 iteration), 0.435 (32); the mel -> linear inversion of 64 bands bounds it
    assert distances[32] < 0.46 and distances[32] < distances[1] - 0.05
    silence = MelRepresentation().encode(torch.zeros(1, 1, 512))
    assert torch.isfinite(MelRepresentation().decode(silence)).all()


# -- autoencoder ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_autoencoder():
    """A tiny random AutoencoderKL (scale factor 2, 4 latent channels) and an 8-mel HiFi-GAN at
    16 kHz that upsamples 4x: one latent frame is 8 samples."""
    diffusers = pytest.importorskip("diffusers")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(block_out_channels=[8, 16], in_channels=1, out_channels=1, latent_channels=4,
                                  norm_num_groups=4, down_block_types=["DownEncoderBlock2D"] * 2,
                                  up_block_types=["UpDecoderBlock2D"] * 2).eval()
    vocoder = transformers.SpeechT5HifiGan(transformers.SpeechT5HifiGanConfig(
        model_in_dim=8, sampling_rate=16000, upsample_initial_channel=16, upsample_rates=[2, 2],
        upsample_kernel_sizes=[4, 4], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        normalize_before=False)).eval()
    return vae, vocoder


@pytest.mark.parametrize("length", [1, 8, 9, 1000])
def test_autoencoder_shapes_and_lengths(tiny_autoencoder, length):
    from cuecraft.models.representation import AutoencoderOptions

    representation = AutoencoderRepresentation(*tiny_autoencoder, AutoencoderOptions(n_fft=64))
    assert (representation.hop, representation.latent_dim, representation.frame_rate) == (8, 16, 2000.0)
    with torch.no_grad():
        z = representation.encode(torch.randn(2, 1, length) * 0.1)
        assert z.shape == (2, 16, math.ceil(length / 8))
        assert representation.decode(z).shape == (2, 1, representation.samples(z.shape[-1]))
        wav = representation.decode(z, length=length)
    assert wav.shape == (2, 1, length) and torch.isfinite(wav).all()
    with pytest.raises(RepresentationInputError, match="1 channel"):
        representation.encode(torch.zeros(1, 2, 16))


def test_autoencoder_stats_save_load_and_missing_parts(tiny_autoencoder, tmp_path):
    from cuecraft.models.representation import AutoencoderOptions

    representation = AutoencoderRepresentation(*tiny_autoencoder, AutoencoderOptions(n_fft=64))
    wav = torch.randn(3, 1, 800) * 0.1
    with torch.no_grad():
        assert torch.allclose(representation.std, torch.full((4,), 1 / tiny_autoencoder[0].config.scaling_factor))
        representation.fit_stats(wav)
        z = representation.encode(wav)  # [3, 16, 100]: per latent channel mean 0, std 1
        per_channel = z.reshape(3, 4, 4, -1).transpose(0, 1).reshape(4, -1)
        assert per_channel.mean(dim=1).abs().max() < 1e-4
        assert (per_channel.std(dim=1, unbiased=False) - 1).abs().max() < 1e-3
        decoded = representation.decode(z, length=800)
        representation.save(tmp_path / "ae")
        loaded = load_representation(tmp_path / "ae")
        assert isinstance(loaded, AutoencoderRepresentation) and loaded.fitted
        assert torch.equal(loaded.encode(wav), z)
        assert torch.allclose(loaded.decode(z, length=800), decoded, atol=1e-6)
    with pytest.raises(PretrainedModelNotFoundError, match=r"ae/vae/vae holds no config.json; the directory needs vae/"):
        AutoencoderRepresentation.from_pretrained(tmp_path / "ae" / "vae")
    with pytest.raises(ConfigError, match="divisible by the VAE's scale factor"):
        bad = tiny_autoencoder[1].__class__(replace_config(tiny_autoencoder[1].config, model_in_dim=7))
        AutoencoderRepresentation(tiny_autoencoder[0], bad)


def replace_config(config, **changes):
    copy = config.__class__(**{**config.to_dict(), **changes})
    return copy
