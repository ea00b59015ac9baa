"""``MelRepresentation``: normalised log-mel frames, decoded by a trained ``Vocoder`` or Griffin-Lim.

Notation: B batch, C channels, T samples, M mel bands, L = ceil(T / hop) frames, D = C * M.

encode: wav [B, C, T] -> zero-padded to L * hop -> |STFT| ("same" framing, Hann, n_fft) ->
Slaney mel filters -> log(max(mel, 1e-5)) -> (x - mean) / std per band -> [B, C * M, L]
(channel c's bands are rows c * M .. c * M + M - 1). The statistics come from ``fit_stats``;
unfitted, they are mean 0 and std 1. decode: the vocoder when one is set, else Griffin-Lim.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from cuecraft._text import short_repr
from cuecraft.audio._checks import check_int
from cuecraft.errors import ConfigError, WeightsError
from cuecraft.models.representation.base import (
    CONFIG_FILE, Representation, RepresentationInputError, option_fields, read_config, read_tensors, write_bundle,
)
from cuecraft.models.representation.griffinlim import GriffinLimOptions, griffin_lim, mel_to_linear
from cuecraft.models.representation.spectral import hann, mel_filterbank, stft
from cuecraft.models.representation.vocoder import Vocoder, VocoderOptions

LOG_FLOOR = 1e-5  # mel magnitudes below this are clamped before the log (about -100 dB)
STD_FLOOR = 0.1  # log units: a band that never changes (always silent) is not blown up by normalising
# Bounds of the integer options, checked before the filterbank and window are allocated.
MEL_BOUNDS = {"sample_rate": (1_000, 768_000), "channels": (1, 64), "n_fft": (2, 65_536), "hop": (1, 32_768),
              "n_mels": (1, 2_048)}
MAX_FILTERBANK = 2**24  # n_mels x (n_fft // 2 + 1) values of the mel filterbank (64 MiB of float32)


@dataclass(frozen=True)
class MelOptions:
    """The geometry and normalisation of a mel representation (defaults: 16 kHz, 62.5 frames/s)."""

    sample_rate: int = 16000  # Hz
    channels: int = 1  # C; each channel gets its own M rows
    n_fft: int = 1024  # STFT size (and Hann window length), >= 2 * hop
    hop: int = 256  # samples per frame
    n_mels: int = 64  # M
    f_min: float = 0.0  # Hz, lowest filter edge
    f_max: float | None = None  # Hz, highest filter edge; None: sample_rate / 2
    stats: Literal["band", "global"] = "band"  # normalise each band apart, or all bands by one mean/std
    griffin_lim: GriffinLimOptions = field(default_factory=GriffinLimOptions)

    def __post_init__(self) -> None:
        if isinstance(self.griffin_lim, dict):  # from JSON
            object.__setattr__(self, "griffin_lim", GriffinLimOptions(**self.griffin_lim))
        problems = []
        for name, (low, high) in MEL_BOUNDS.items():
            problems += check_int(f"mel.{name}", getattr(self, name), minimum=low, maximum=high)
        if problems:
            raise ConfigError(problems)
        if self.n_mels * (self.n_fft // 2 + 1) > MAX_FILTERBANK:
            problems.append(f"mel.n_mels: {self.n_mels} bands x {self.n_fft // 2 + 1} frequency bins (n_fft "
                            f"{self.n_fft}) is more than {MAX_FILTERBANK:,} filterbank values")
        if self.n_fft < 2 * self.hop:
            problems.append(f"mel.n_fft: must be at least 2 * hop ({2 * self.hop}) for an invertible STFT; "
                            f"got {self.n_fft}")
        f_max = self.top
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (self.f_min, f_max))
        if not (numbers and 0 <= self.f_min < f_max <= self.sample_rate / 2):
            problems.append(f"mel.f_min / f_max: need 0 <= f_min < f_max <= sample_rate / 2 "
                            f"({self.sample_rate / 2:g}); got f_min {short_repr(self.f_min)}, "
                            f"f_max {short_repr(self.f_max)}")
        if not isinstance(self.griffin_lim, GriffinLimOptions):
            problems.append(f"mel.griffin_lim: expected a mapping of Griffin-Lim options; got "
                            f"{type(self.griffin_lim).__name__}")
        if self.stats not in ("band", "global"):
            problems.append(f"mel.stats: must be 'band' or 'global'; got {self.stats!r}")
        if problems:
            raise ConfigError(problems)

    @property
    def top(self) -> float:
        """f_max in Hz, with None resolved to the Nyquist frequency."""
        return self.sample_rate / 2 if self.f_max is None else self.f_max


class MelRepresentation(Representation):
    """Normalised log-mel frames. wav [B, C, T] <-> [B, C * n_mels, ceil(T / hop)]."""

    kind = "mel"

    def __init__(self, options: MelOptions | None = None, vocoder: Vocoder | None = None):
        super().__init__()
        self.options = options = options or MelOptions()
        self.register_buffer("filters", mel_filterbank(options.sample_rate, options.n_fft, options.n_mels,
                                                       options.f_min, options.top), persistent=False)
        self.register_buffer("window", hann(options.n_fft), persistent=False)
        self.register_buffer("mean", torch.zeros(options.n_mels))
        self.register_buffer("std", torch.ones(options.n_mels))
        self.fitted = False
        self._pseudo_inverse: torch.Tensor | None = None  # of the filters, computed at the first Griffin-Lim
        self.vocoder = None
        self.set_vocoder(vocoder)

    # -- the contract --------------------------------------------------------------------------
    sample_rate = property(lambda self: self.options.sample_rate)
    channels = property(lambda self: self.options.channels)
    latent_dim = property(lambda self: self.options.channels * self.options.n_mels)
    hop = property(lambda self: self.options.hop)

    def set_vocoder(self, vocoder: Vocoder | None) -> None:
        """Decode with ``vocoder`` (None: Griffin-Lim); its mels, hop and n_fft must match."""
        if vocoder is not None:
            got, options = vocoder.options, self.options
            wrong = [f"{name} {getattr(got, name)} (representation: {getattr(options, name)})"
                     for name in ("n_mels", "hop", "n_fft") if getattr(got, name) != getattr(options, name)]
            if wrong:
                raise ConfigError(f"vocoder: does not fit the mel representation: {', '.join(wrong)}")
        self.vocoder = vocoder

    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-mel: wav [B, C, T] -> [B, C, M, ceil(T / hop)] (differentiable)."""
        wav = self.check_wav(wav)
        batch, channels, _ = wav.shape
        return self.log_mel_signals(wav.reshape(batch * channels, -1)).reshape(batch, channels, self.options.n_mels, -1)

    def log_mel_signals(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-mel of single-channel signals: x [N, T] -> [N, M, ceil(T / hop)]."""
        length = x.shape[-1]
        padded = torch.nn.functional.pad(x.float(), (0, self.frames(length) * self.hop - length))
        spectrum = stft(padded, self.options.n_fft, self.hop, self.window)
        magnitude = (spectrum.real.square() + spectrum.imag.square() + 1e-12).sqrt()  # [N, F, L]
        return torch.log((self.filters @ magnitude).clamp(min=LOG_FLOOR))  # [N, M, L]

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, C, T] -> normalised log-mel [B, C * n_mels, ceil(T / hop)] (float32)."""
        mel = (self.log_mel(wav) - self.mean[:, None]) / self.std[:, None]
        return mel.flatten(1, 2)  # [B, C, M, L] -> [B, C * M, L]

    def decode(self, z: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Normalised log-mel [B, C * n_mels, L] -> wav [B, C, length or L * hop] (vocoder or Griffin-Lim)."""
        length = self.check_frames(z, length)
        batch, frames = z.shape[0], z.shape[-1]
        z = z.float().reshape(batch * self.channels, self.options.n_mels, frames)  # one signal per channel
        if self.vocoder is not None:
            wav = self.vocoder(z)
        else:
            wav = self.griffin_lim(z)
        return wav.reshape(batch, self.channels, -1)[..., :length]

    def griffin_lim(self, z: torch.Tensor, options: GriffinLimOptions | None = None) -> torch.Tensor:
        """Normalised log-mel [N, M, L] -> wav [N, L * hop] by Griffin-Lim (``options`` override the stored)."""
        options = options or self.options.griffin_lim
        mel = torch.exp(z * self.std[:, None] + self.mean[:, None])
        if self._pseudo_inverse is None or self._pseudo_inverse.device != mel.device:
            self._pseudo_inverse = torch.linalg.pinv(self.filters.double()).float()  # [F, M], kept
        magnitude = mel_to_linear(mel, self.filters, options.nnls_iter, self._pseudo_inverse)
        return griffin_lim(magnitude, self.options.n_fft, self.hop, self.window, options)

    # -- statistics ----------------------------------------------------------------------------
    @torch.no_grad()
    def fit_stats(self, source: torch.Tensor | Iterable[Any], *, max_items: int | None = None) -> MelRepresentation:
        """Set the normalisation from audio: per-band (or global) mean and std of the log-mel frames.

        ``source``: a waveform [B, C, T] or [C, T], or an iterable of waveforms [C, T] / AudioItems
        (padding is left out) / batches, such as a cuecraft dataset. Returns self."""
        total = torch.zeros(self.options.n_mels, dtype=torch.float64)
        squares, count = torch.zeros_like(total), 0
        items = [source] if isinstance(source, torch.Tensor) else source
        for number, item in enumerate(items):
            if max_items is not None and number >= max_items:
                break
            wav = getattr(item, "wav", item)
            if not isinstance(wav, torch.Tensor):
                raise RepresentationInputError(f"fit_stats takes waveforms or AudioItems; got {type(item).__name__}")
            if hasattr(item, "padding_mask"):
                wav = wav[..., : max(1, item.length)]
            mel = self.log_mel(wav[None] if wav.dim() == 2 else wav).double()  # [B, C, M, L]
            total += mel.sum(dim=(0, 1, 3))
            squares += mel.square().sum(dim=(0, 1, 3))
            count += mel.shape[0] * mel.shape[1] * mel.shape[3]
        if count == 0:
            raise RepresentationInputError("fit_stats found no audio in its source")
        if self.options.stats == "global":
            total, squares, count = total.sum().expand(self.options.n_mels), squares.sum().expand(
                self.options.n_mels), count * self.options.n_mels
        mean = total / count
        std = (squares / count - mean.square()).clamp(min=0).sqrt().clamp(min=STD_FLOOR)
        self.mean.copy_(mean.float())
        self.std.copy_(std.float())
        self.fitted = True
        return self

    # -- files ---------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """``representation.json`` (options, vocoder options) + ``representation.safetensors``
        (``mean``, ``std``, ``vocoder.*``) in ``directory``."""
        tensors = {"mean": self.mean, "std": self.std}
        if self.vocoder is not None:
            tensors.update({f"vocoder.{k}": v for k, v in self.vocoder.state_dict().items()})
        config = {"options": asdict(self.options), "fitted": self.fitted,
                  "vocoder": None if self.vocoder is None else self.vocoder.config()}
        return write_bundle(directory, self.kind, config, tensors)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> MelRepresentation:
        """The representation ``save`` wrote; a missing, corrupt or mismatched file is a WeightsError."""
        config = read_config(directory, cls.kind)
        path = Path(directory) / CONFIG_FILE
        try:
            options = option_fields(MelOptions, config.get("options"), path, "options")
            vocoder = None
            if config.get("vocoder") is not None:
                vocoder = Vocoder(option_fields(VocoderOptions, config["vocoder"], path, "vocoder"))
        except ConfigError as error:
            raise WeightsError(f"{path}: {error}") from None
        representation = cls(options, vocoder)
        expected = {"mean": representation.mean.shape, "std": representation.std.shape}
        if vocoder is not None:
            expected.update({f"vocoder.{k}": v.shape for k, v in vocoder.state_dict().items()})
        tensors = read_tensors(directory, expected)
        representation.mean.copy_(tensors["mean"])
        representation.std.copy_(tensors["std"])
        if vocoder is not None:
            vocoder.load_state_dict({k.removeprefix("vocoder."): v for k, v in tensors.items()
                                     if k.startswith("vocoder.")})
        representation.fitted = bool(config.get("fitted"))
        return representation
