"""``AutoencoderRepresentation``: a user's pretrained mel autoencoder through the same contract.

Notation: B batch, T samples, K latent channels, H latent frames, W latent mel bins, f the VAE's
scale factor (2 ** (number of VAE blocks - 1)), D = K * W.

The autoencoder is MusicLDM's (and AudioLDM's) kind: a diffusers ``AutoencoderKL`` over a log-mel
image [B, 1, frames, mels] and a transformers ``SpeechT5HifiGan`` vocoder from mel frames to
samples. encode: wav [B, 1, T] -> log-mel (Slaney filters on the STFT magnitude, natural log of
max(mel, 1e-5); rate, mels and hop from the vocoder's config) -> VAE posterior mode (or a sample)
[B, K, H, W] -> normalised -> [B, K * W, H]. decode: the reverse, then the vocoder. One latent
frame is ``f`` mel frames, ``f * hop`` samples.

A saved directory holds ``vae/`` and ``vocoder/`` (diffusers / transformers ``save_pretrained``)
beside ``representation.json`` and ``representation.safetensors`` (the latent statistics). A
MusicLDM directory (``vae/`` + ``vocoder/``) is read by ``from_pretrained``.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from cuecraft._optional import require
from cuecraft.errors import ConfigError, PretrainedModelNotFoundError, WeightsError
from cuecraft.models.representation.base import (
    CONFIG_FILE, Representation, RepresentationInputError, option_fields, read_config, read_tensors, write_bundle,
)
from cuecraft.models.representation.mel import LOG_FLOOR
from cuecraft.models.representation.spectral import hann, mel_filterbank, stft


@dataclass(frozen=True)
class AutoencoderOptions:
    """The mel analysis in front of the VAE (it must be the one the VAE was trained on)."""

    n_fft: int = 1024  # STFT size and Hann window length (MusicLDM: 1024)
    f_min: float = 0.0  # Hz
    f_max: float | None = 8000.0  # Hz (MusicLDM: 8000); None: the Nyquist frequency
    sample_posterior: bool = False  # encode to a sample of the VAE posterior instead of its mode

    def __post_init__(self) -> None:
        if isinstance(self.n_fft, bool) or not isinstance(self.n_fft, int) or self.n_fft < 2:
            raise ConfigError(f"autoencoder.n_fft: must be an int >= 2; got {self.n_fft!r}")


class AutoencoderRepresentation(Representation):
    """wav [B, 1, T] <-> normalised VAE latents [B, K * W, H] (H = ceil(T / (f * hop)))."""

    kind = "autoencoder"

    def __init__(self, vae: Any, vocoder: Any, options: AutoencoderOptions | None = None):
        super().__init__()
        self.options = options = options or AutoencoderOptions()
        self.vae, self.vocoder = vae, vocoder
        config = vocoder.config
        self.scale = 2 ** (len(vae.config.block_out_channels) - 1)
        self.n_mels = int(config.model_in_dim)
        self.mel_hop = int(math.prod(config.upsample_rates))
        self._sample_rate = int(config.sampling_rate)
        self.latent_channels = int(vae.config.latent_channels)
        f_max = self._sample_rate / 2 if options.f_max is None else float(options.f_max)
        problems = []
        if self.n_mels % self.scale:
            problems.append(f"vocoder: its {self.n_mels} mel bins must be divisible by the VAE's scale factor {self.scale}")
        if int(vae.config.in_channels) != 1:
            problems.append(f"vae: in_channels must be 1 (a mel image); got {vae.config.in_channels}")
        if options.n_fft < 2 * self.mel_hop:
            problems.append(f"autoencoder.n_fft: must be at least 2 * hop ({2 * self.mel_hop}); got {options.n_fft}")
        if not 0 <= options.f_min < f_max <= self._sample_rate / 2:
            problems.append(f"autoencoder.f_min / f_max: need 0 <= f_min < f_max <= {self._sample_rate / 2:g}; "
                            f"got {options.f_min}, {options.f_max}")
        if problems:
            raise ConfigError(problems)
        self.register_buffer("filters", mel_filterbank(self._sample_rate, options.n_fft, self.n_mels,
                                                       options.f_min, f_max), persistent=False)
        self.register_buffer("window", hann(options.n_fft), persistent=False)
        # normalised latents = (z - mean) / std; diffusers' convention z * scaling_factor by default
        self.register_buffer("mean", torch.zeros(self.latent_channels))
        self.register_buffer("std", torch.full((self.latent_channels,), 1.0 / float(vae.config.scaling_factor)))
        self.fitted = False

    sample_rate = property(lambda self: self._sample_rate)
    channels = property(lambda self: 1)
    latent_dim = property(lambda self: self.latent_channels * self.n_mels // self.scale)
    hop = property(lambda self: self.mel_hop * self.scale)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str], options: AutoencoderOptions | None = None
                        ) -> AutoencoderRepresentation:
        """Read ``directory/vae`` (AutoencoderKL) and ``directory/vocoder`` (SpeechT5HifiGan), as a
        MusicLDM directory lays them out; nothing is downloaded."""
        vae, vocoder = _load_components(Path(directory).expanduser())
        return cls(vae, vocoder, options)

    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, 1, T] -> the VAE's input, log-mel [B, 1, f * H, n_mels]."""
        wav = self.check_wav(wav)
        length = wav.shape[-1]
        padded = torch.nn.functional.pad(wav[:, 0].float(), (0, self.frames(length) * self.hop - length))
        spectrum = stft(padded, self.options.n_fft, self.mel_hop, self.window)  # [B, F, f * H]
        magnitude = (spectrum.real.square() + spectrum.imag.square() + 1e-12).sqrt()
        mel = torch.log((self.filters @ magnitude).clamp(min=LOG_FLOOR))  # [B, M, f * H]
        return mel.transpose(1, 2)[:, None]  # [B, 1, frames, mels], MusicLDM's layout

    def latents(self, wav: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Unnormalised VAE latents [B, K, H, W] of wav [B, 1, T]."""
        posterior = self.vae.encode(self.log_mel(wav).to(self._dtype)).latent_dist
        z = posterior.sample(generator) if self.options.sample_posterior else posterior.mode()
        return z.float()

    def encode(self, wav: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """wav [B, 1, T] -> normalised latents [B, K * W, ceil(T / hop)]."""
        z = (self.latents(wav, generator) - self.mean[:, None, None]) / self.std[:, None, None]
        return z.transpose(2, 3).flatten(1, 2)  # [B, K, H, W] -> [B, K, W, H] -> [B, K * W, H]

    def decode(self, z: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Normalised latents [B, K * W, H] -> wav [B, 1, length or H * hop]."""
        length = self.check_frames(z, length)
        batch, frames = z.shape[0], z.shape[-1]
        z = z.float().reshape(batch, self.latent_channels, self.n_mels // self.scale, frames).transpose(2, 3)
        z = z * self.std[:, None, None] + self.mean[:, None, None]  # [B, K, H, W]
        mel = self.vae.decode(z.to(self._dtype)).sample  # [B, 1, f * H, n_mels]
        wav = self.vocoder(mel[:, 0].to(self._dtype)).float()  # [B, f * H * mel_hop]
        return wav[:, None, :length]

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @torch.no_grad()
    def fit_stats(self, source: torch.Tensor | Iterable[Any], *, max_items: int | None = None
                  ) -> AutoencoderRepresentation:
        """Per-channel mean and std of the latents of ``source`` (a waveform [B, 1, T] or [1, T], or
        an iterable of them or of AudioItems). Returns self."""
        total = torch.zeros(self.latent_channels, dtype=torch.float64)
        squares, count = torch.zeros_like(total), 0
        for number, item in enumerate([source] if isinstance(source, torch.Tensor) else source):
            if max_items is not None and number >= max_items:
                break
            wav = getattr(item, "wav", item)
            if not isinstance(wav, torch.Tensor):
                raise RepresentationInputError(f"fit_stats takes waveforms or AudioItems; got {type(item).__name__}")
            z = self.latents(wav[None] if wav.dim() == 2 else wav).double()  # [B, K, H, W]
            total += z.sum(dim=(0, 2, 3))
            squares += z.square().sum(dim=(0, 2, 3))
            count += z[:, 0].numel()
        if count == 0:
            raise RepresentationInputError("fit_stats found no audio in its source")
        mean = total / count
        self.mean.copy_(mean.float())
        self.std.copy_((squares / count - mean.square()).clamp(min=0).sqrt().clamp(min=1e-4).float())
        self.fitted = True
        return self

    # -- files ---------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """``vae/``, ``vocoder/``, ``representation.json`` and ``representation.safetensors`` in ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, component in (("vae", self.vae), ("vocoder", self.vocoder)):
            staging = Path(tempfile.mkdtemp(dir=directory, prefix=f".{name}."))
            try:
                component.save_pretrained(staging)
                if (directory / name).exists():
                    shutil.rmtree(directory / name)
                os.replace(staging, directory / name)  # a reader sees the old or the new directory
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        config = {"options": asdict(self.options), "fitted": self.fitted,
                  "components": {"vae": ["diffusers", "AutoencoderKL"], "vocoder": ["transformers", "SpeechT5HifiGan"]}}
        return write_bundle(directory, self.kind, config, {"mean": self.mean, "std": self.std})

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> AutoencoderRepresentation:
        """The representation ``save`` wrote; a missing, corrupt or mismatched file is a typed error."""
        config = read_config(directory, cls.kind)
        try:
            options = option_fields(AutoencoderOptions, config.get("options"), Path(directory) / CONFIG_FILE, "options")
        except ConfigError as error:
            raise WeightsError(f"{Path(directory) / CONFIG_FILE}: {error}") from None
        representation = cls.from_pretrained(directory, options)
        tensors = read_tensors(directory, {"mean": representation.mean.shape, "std": representation.std.shape})
        representation.mean.copy_(tensors["mean"])
        representation.std.copy_(tensors["std"])
        representation.fitted = bool(config.get("fitted"))
        return representation


def _load_components(directory: Path) -> tuple[Any, Any]:
    """(AutoencoderKL, SpeechT5HifiGan) from ``directory/vae`` and ``directory/vocoder``, eval mode."""
    loaded = []
    for name, library, class_name, extra in (("vae", "diffusers", "AutoencoderKL", "musicldm"),
                                             ("vocoder", "transformers", "SpeechT5HifiGan", "text")):
        path = directory / name
        if not (path / "config.json").is_file():
            raise PretrainedModelNotFoundError(
                f"autoencoder representation: {path} holds no config.json; the directory needs vae/ "
                f"(a diffusers AutoencoderKL) and vocoder/ (a transformers SpeechT5HifiGan), as MusicLDM's has")
        loader = getattr(require(library, extra=extra, purpose="the autoencoder representation"), class_name)
        try:
            component = loader.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise PretrainedModelNotFoundError(f"autoencoder representation: the {name} in {path} cannot be "
                                               f"loaded ({type(error).__name__}: {error})") from None
        loaded.append(component.eval())
    return loaded[0], loaded[1]
