"""``Vocoder``: a small neural vocoder from normalised log-mel frames to a waveform.

Notation: N signals, M mel bands, L frames, W width, F = n_fft // 2 + 1 bins.

The idea is Vocos' (Siuzdak, 2023): the network never upsamples in time. A stack of ConvNeXt
blocks runs at the frame rate, and its head predicts, per frame, an STFT frame (log magnitude and
phase); the inverse STFT ("same" framing, ``spectral.istft``) turns those frames into samples, so
the frame -> sample bookkeeping is exact: L frames give L * hop samples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cuecraft.audio._checks import check_int
from cuecraft.errors import ConfigError
from cuecraft.models.representation.spectral import hann, istft


@dataclass(frozen=True)
class VocoderOptions:
    """Sizes of a ``Vocoder``; ``n_mels``, ``n_fft`` and ``hop`` must match its representation."""

    n_mels: int = 64  # M, input features per frame
    hop: int = 256  # samples per frame
    n_fft: int = 1024  # STFT size of the inverse-STFT head (>= 2 * hop)
    width: int = 256  # W, channels of the ConvNeXt blocks
    intermediate: int = 768  # hidden width of each block's pointwise MLP
    layers: int = 8  # ConvNeXt blocks
    kernel_size: int = 7  # depthwise convolution width, in frames (odd)
    max_log_magnitude: float = 6.0  # predicted log magnitudes are clipped here (exp(6) ~ 400)

    def __post_init__(self) -> None:
        problems = []
        for name in ("n_mels", "hop", "n_fft", "width", "intermediate", "layers", "kernel_size"):
            problems += check_int(f"vocoder.{name}", getattr(self, name), minimum=1)
        if not problems and self.n_fft < 2 * self.hop:
            problems.append(f"vocoder.n_fft: must be at least 2 * hop ({2 * self.hop}); got {self.n_fft}")
        if not problems and self.kernel_size % 2 == 0:
            problems.append(f"vocoder.kernel_size: must be odd (a centred window); got {self.kernel_size}")
        if problems:
            raise ConfigError(problems)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> pointwise MLP (GELU) -> layer scale, with a residual.
    [N, W, L] -> [N, W, L]."""

    def __init__(self, width: int, intermediate: int, kernel_size: int, layer_scale: float):
        super().__init__()
        self.depthwise = nn.Conv1d(width, width, kernel_size, padding=kernel_size // 2, groups=width)
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.up = nn.Linear(width, intermediate)
        self.down = nn.Linear(intermediate, width)
        self.scale = nn.Parameter(torch.full((width,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.depthwise(x).transpose(1, 2)  # [N, L, W]: LayerNorm and Linear act on the last dim
        h = self.down(F.gelu(self.up(self.norm(h)))) * self.scale
        return x + h.transpose(1, 2)


class Vocoder(nn.Module):
    """Normalised log-mel frames [N, M, L] -> waveforms [N, L * hop]."""

    def __init__(self, options: VocoderOptions | None = None):
        super().__init__()
        self.options = options = options or VocoderOptions()
        self.embed = nn.Conv1d(options.n_mels, options.width, options.kernel_size, padding=options.kernel_size // 2)
        self.norm = nn.LayerNorm(options.width, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(options.width, options.intermediate, options.kernel_size,
                                                  1.0 / options.layers) for _ in range(options.layers))
        self.final_norm = nn.LayerNorm(options.width, eps=1e-6)
        self.head = nn.Linear(options.width, options.n_fft + 2)  # F log magnitudes + F phases
        with torch.no_grad():  # start quiet (magnitude ~ exp(-4)) rather than as loud white noise
            self.head.bias[: options.n_fft // 2 + 1].fill_(-4.0)
        self.register_buffer("window", hann(options.n_fft), persistent=False)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        options = self.options
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)  # [N, W, L]
        for block in self.blocks:
            x = block(x)
        out = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)  # [N, 2F, L]
        log_magnitude, phase = out.chunk(2, dim=1)  # [N, F, L] each
        magnitude = torch.exp(log_magnitude.clamp(max=options.max_log_magnitude))
        spectrum = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
        return istft(spectrum, options.n_fft, options.hop, self.window)

    def config(self) -> dict:
        """The options as a JSON object (``Vocoder(VocoderOptions(**config))`` rebuilds it)."""
        return asdict(self.options)
