"""Load the conditioner weights of a stable-audio-tools or AudioCraft checkpoint into a provider.

stable-audio-tools keeps them under ``...conditioner.conditioners.<id>.*`` and AudioCraft under
``...condition_provider.conditioners.<name>.*`` (its ``output_proj`` is cuecraft's ``proj_out``).
Loading is strict by default: missing keys, unexpected keys and shape mismatches are reported
together, and nothing is loaded unless everything fits. The peers' known non-parameter buffers
(``KNOWN_BUFFERS``: MusicGen-melody's spectrogram window) hold no weights: each is checked against
the value cuecraft computes itself and reported as checked; a different value is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from cuecraft._optional import require
from cuecraft.errors import WeightsError
from cuecraft.provider import ConditionProvider

PREFIXES = {
    "stable-audio-tools": "conditioner.conditioners.",
    "audiocraft": "condition_provider.conditioners.",
}
RENAMES = {"stable-audio-tools": (), "audiocraft": (("output_proj.", "proj_out."),)}


def _chroma_window(conditioner: Any) -> torch.Tensor | None:
    """AudioCraft's ``chroma.spec.window`` (torchaudio's Spectrogram: a periodic Hann window of
    n_fft samples) as cuecraft's chroma_stem computes its spectrogram."""
    extractor = getattr(conditioner, "extractor", None)
    if extractor is None or not hasattr(extractor, "n_fft"):
        return None
    return torch.hann_window(extractor.n_fft, periodic=True, dtype=torch.float64)


# Buffers of the peers' conditioners that are not weights: ``{format: {parameter name inside a
# conditioner: cuecraft's own value for that conditioner, or None when it has no such thing}}``.
KNOWN_BUFFERS: dict[str, dict[str, Callable[[Any], torch.Tensor | None]]] = {
    "stable-audio-tools": {},
    "audiocraft": {"chroma.spec.window": _chroma_window},
}
BUFFER_TOLERANCE = 1e-6  # float32 rounding of the window


@dataclass(frozen=True)
class WeightsReport:
    """What a load did: provider keys loaded, provider keys the checkpoint lacks, and checkpoint
    conditioner keys with no place in the provider (each sorted)."""

    format: str
    loaded: list[str]
    missing: list[str]
    unexpected: list[str]
    # Known non-parameter buffers of the checkpoint, found equal to cuecraft's own values.
    checked: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        checked = f"; buffers checked equal to cuecraft's: {self.checked}" if self.checked else ""
        return (f"{len(self.loaded)} tensors loaded from a {self.format} checkpoint; missing: "
                f"{self.missing or 'none'}; unexpected: {self.unexpected or 'none'}{checked}")


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A flat state dict from ``.safetensors`` or a torch file (``weights_only`` loading).

    Torch files may wrap it as Lightning does (``state_dict``) or AudioCraft does
    (``best_state`` -> ``model``).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        safetensors = require("safetensors.torch", extra="text", purpose="reading .safetensors checkpoints")
        try:
            return safetensors.load_file(str(path))
        except Exception as error:  # SafetensorError and OSError: a corrupt or unreadable file
            raise WeightsError(f"{path}: not a readable safetensors file ({error})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors, truncated files, non-tensor objects
        raise WeightsError(f"{path}: not a readable torch checkpoint ({error})") from None
    for key in ("state_dict", "best_state", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict) and not torch.is_tensor(state[key]):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict; found {type(state).__name__}")
    return {k: v for k, v in state.items() if torch.is_tensor(v)}


def conditioner_weights(state: Mapping[str, torch.Tensor], format: str = "auto") -> tuple[str, dict[str, torch.Tensor]]:
    """(format, ``{"conditioners.<id>.<param>": tensor}``) taken out of a peer checkpoint."""
    if format == "auto":
        found = [f for f, prefix in PREFIXES.items() if any(prefix in key for key in state)]
        if len(found) != 1:
            raise WeightsError("cannot tell the checkpoint's format: it holds keys under "
                               f"{found or 'neither'} of {list(PREFIXES.values())}; pass format=...")
        format = found[0]
    if format not in PREFIXES:
        raise WeightsError(f"unknown checkpoint format {format!r}; valid formats: auto, {', '.join(PREFIXES)}")
    prefix = PREFIXES[format]
    mapped = {}
    for key, tensor in state.items():
        _, found, rest = key.partition(prefix)
        if not found:
            continue
        name, _, parameter = rest.partition(".")
        for old, new in RENAMES[format]:
            if parameter.startswith(old):
                parameter = new + parameter[len(old):]
        mapped[f"conditioners.{name}.{parameter}"] = tensor
    return format, mapped


def load_peer_weights(provider: ConditionProvider, checkpoint: str | Path | Mapping[str, torch.Tensor], *,
                      format: str = "auto", strict: bool = True) -> WeightsReport:
    """Load a peer checkpoint's conditioner weights into ``provider`` (a path or a state dict).

    Frozen pretrained encoders are not part of the provider's state, so their keys are neither
    needed nor loaded. With ``strict=False`` what fits is loaded and the rest reported.
    """
    state = read_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else dict(checkpoint)
    format, mapped = conditioner_weights(state, format)
    checked = _check_known_buffers(provider, format, mapped)
    mapped = {k: v for k, v in mapped.items() if k not in checked}
    expected = provider.state_dict()
    missing = sorted(set(expected) - set(mapped))
    unexpected = sorted(set(mapped) - set(expected))
    mismatched = [f"{k}: checkpoint {tuple(mapped[k].shape)}, conditioner {tuple(expected[k].shape)}"
                  for k in sorted(set(mapped) & set(expected)) if mapped[k].shape != expected[k].shape]
    if mismatched or (strict and (missing or unexpected)):
        raise WeightsError(f"the {format} checkpoint does not fit the conditioners: missing {missing or 'none'}; "
                           f"unexpected {unexpected or 'none'}; shape mismatches {mismatched or 'none'}")
    usable = {k: v for k, v in mapped.items() if k in expected}
    provider.load_state_dict(usable, strict=False)
    return WeightsReport(format, sorted(usable), missing, unexpected, sorted(checked))


def _check_known_buffers(provider: ConditionProvider, format: str, mapped: Mapping[str, torch.Tensor]) -> set[str]:
    """The keys of ``mapped`` that are known peer buffers equal to cuecraft's own values; a known
    buffer with another value is a WeightsError (the peer's features would differ)."""
    checked, problems = set(), []
    for key, tensor in mapped.items():
        _, name, parameter = (key.split(".", 2) + ["", ""])[:3]
        compute = KNOWN_BUFFERS[format].get(parameter)
        conditioner = provider.conditioners[name] if name in provider.conditioners else None
        own = compute(conditioner) if compute is not None and conditioner is not None else None
        if own is None:
            continue  # not a known buffer here: reported as unexpected, as any other key
        if own.shape != tensor.shape or not torch.allclose(tensor.double(), own, rtol=0, atol=BUFFER_TOLERANCE):
            difference = (f"shape {tuple(tensor.shape)} vs {tuple(own.shape)}" if own.shape != tensor.shape else
                          f"max |difference| {float((tensor.double() - own).abs().max()):.3g}")
            problems.append(f"{key}: the checkpoint's buffer differs from the one cuecraft computes ({difference}); "
                            f"the {format} conditioner was built with other settings")
        else:
            checked.add(key)
    if problems:
        raise WeightsError("; ".join(problems))
    return checked
