"""Train the ``Vocoder`` of a ``MelRepresentation`` on a folder of audio (``cuecraft train vocoder``).

Notation: B batch, C channels, T samples per segment, M mel bands, L frames.

Each step: B random segments (``cuecraft.data`` dataset, random mode) -> normalised log-mel
(the representation's ``encode``, no gradient) -> vocoder -> waveform; the loss is the
multi-resolution STFT loss (spectral convergence + log magnitude, 3 resolutions) plus
``mel_weight`` times the L1 distance of the log-mels. AdamW at a constant learning rate.

Determinism: the vocoder's initial weights come from ``seed``; step s reads the files and
segment starts drawn from (seed, s), so a run that is stopped and resumed from a checkpoint ends
with the same weights as one that was not.

Layout of ``out_dir``::

    checkpoints/step-00000500/representation/   the representation with the vocoder at that step
    checkpoints/step-00000500/optimizer.safetensors   AdamW state and the torch RNG state
    checkpoints/step-00000500/state.json        format, step, settings, loss history
    checkpoints/latest.json                     names the newest complete checkpoint (written last)
    representation/                             the trained result (``MelRepresentation.load``)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from cuecraft._files import atomic_write
from cuecraft._optional import require
from cuecraft.errors import ConfigError, DatasetError, WeightsError
from cuecraft.models.representation.mel import MelRepresentation
from cuecraft.models.representation.vocoder import Vocoder, VocoderOptions
from cuecraft.train.losses import MultiResolutionSTFTLoss

CHECKPOINT_FORMAT = "cuecraft.vocoder-checkpoint"
CHECKPOINT_VERSION = 1
STATS_ITEMS = 64  # segments read to fit the normalisation when the representation has none


@dataclass(frozen=True)
class VocoderTrainOptions:
    """Settings of ``train_vocoder``."""

    steps: int = 2000  # total optimiser steps (a resumed run continues up to this)
    batch_size: int = 8  # segments per step
    segment_seconds: float = 1.0  # length of each segment
    lr: float = 2e-4  # AdamW learning rate (constant)
    weight_decay: float = 0.01
    mel_weight: float = 1.0  # weight of the log-mel L1 next to the multi-resolution STFT loss
    grad_clip: float = 1.0  # gradient norm clipping (0: off)
    seed: int = 0  # vocoder initialisation and the data order
    log_every: int = 50  # steps between calls of ``log``
    checkpoint_every: int = 500  # steps between checkpoints (and one at the end)

    def __post_init__(self) -> None:
        problems = []
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name}: must be a positive int; got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed: must be an int >= 0; got {self.seed!r}")
        for name in ("segment_seconds", "lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                problems.append(f"{name}: must be a positive number; got {value!r}")
        for name in ("weight_decay", "mel_weight", "grad_clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                problems.append(f"{name}: must be a number >= 0; got {value!r}")
        if problems:
            raise ConfigError(problems)


@dataclass
class VocoderTrainResult:
    """What a run did: the representation (with its trained vocoder), steps, losses, where it wrote."""

    representation: MelRepresentation
    step: int  # the last step taken (the checkpoint's, when nothing was left to do)
    resumed_from: int | None  # the checkpoint step the run started from, if any
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) every log_every steps
    out_dir: Path = Path()
    seconds: float = 0.0


def _open_data(data: Any, representation: MelRepresentation, options: VocoderTrainOptions):
    if not isinstance(data, (str, os.PathLike)):
        dataset = data
    else:
        from cuecraft.data.dataset import is_shards, open_dataset

        if is_shards(data):
            raise DatasetError(f"{data}: train_vocoder reads a folder of audio or a manifest, not WebDataset shards")
        dataset = open_dataset(data, sample_rate=representation.sample_rate, channels=representation.channels,
                               segment_seconds=float(options.segment_seconds), mode="random", seed=options.seed)
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__") or len(dataset) == 0:
        raise DatasetError(f"{data!r}: train_vocoder needs a non-empty map-style dataset of AudioItems")
    return dataset


def _batch(dataset: Any, step: int, options: VocoderTrainOptions) -> torch.Tensor:
    """The segments of ``step``: [B, C, T], drawn from (seed, step) alone."""
    generator = torch.Generator().manual_seed(options.seed * 1_000_003 + step)
    indices = torch.randint(len(dataset), (options.batch_size,), generator=generator).tolist()
    wavs = []
    for j, index in enumerate(indices):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(step * options.batch_size + j)  # a fresh segment start per draw
        wavs.append(dataset[index].wav)
    return torch.stack(wavs)


def vocoder_loss(representation: MelRepresentation, stft_loss: MultiResolutionSTFTLoss, wav: torch.Tensor,
                 mel_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """(loss, its parts) of the representation's vocoder on waveforms [B, C, T]."""
    target = wav.reshape(-1, wav.shape[-1])  # [B * C, T]: one signal per channel
    with torch.no_grad():
        z = representation.encode(wav)
    frames = z.reshape(target.shape[0], representation.options.n_mels, -1)  # [B * C, M, L]
    pred = representation.vocoder(frames)[:, : target.shape[-1]]
    distance = stft_loss.distance(pred, target)
    mel = (representation.log_mel_signals(pred) - representation.log_mel_signals(target)).abs().mean()
    loss = distance.total + mel_weight * mel
    return loss, {"loss": loss.item(), "spectral_convergence": distance.spectral_convergence.item(),
                  "log_magnitude": distance.log_magnitude.item(), "mel_l1": mel.item()}


def train_vocoder(representation: MelRepresentation, data: Any, *, out_dir: str | os.PathLike[str],
                  options: VocoderTrainOptions | None = None, vocoder_options: VocoderOptions | None = None,
                  resume: bool = False, log: Callable[[dict[str, Any]], None] | None = None,
                  **settings: Any) -> VocoderTrainResult:
    """Train ``representation``'s vocoder on ``data`` (a folder / manifest path, or a map-style
    dataset of AudioItems at its rate) and save the result in ``out_dir / "representation"``.

    ``settings`` are VocoderTrainOptions fields (``steps``, ``batch_size``, ``segment_seconds``,
    ``lr``, ``seed``, ``log_every``, ``checkpoint_every`` ...), over ``options``. Without a
    vocoder, one is built from ``vocoder_options`` (default sizes, the representation's geometry).
    Statistics are fitted on the data first when the representation has none. ``resume``
    continues from the newest checkpoint in ``out_dir`` (a fresh start when there is none); without
    it an ``out_dir`` that already holds checkpoints is a ConfigError. ``log`` receives the loss
    parts every ``log_every`` steps."""
    if not isinstance(representation, MelRepresentation):
        raise ConfigError(f"train_vocoder trains the vocoder of a MelRepresentation; got {type(representation).__name__}")
    try:
        options = VocoderTrainOptions(**{**(asdict(options) if options else {}), **settings})
    except TypeError as error:
        raise ConfigError(f"train_vocoder: {error}") from None
    out = Path(out_dir)
    checkpoints = out / "checkpoints"
    start, losses, resumed_from = 0, [], None
    latest = _latest(checkpoints)
    if latest is not None and not resume:
        raise ConfigError(f"{out}: already holds a vocoder run (checkpoint {latest}); pass resume=True (--resume) "
                          f"to continue it, or choose another out_dir")
    dataset = _open_data(data, representation, options)
    if latest is not None:
        start, losses = _restore(latest, representation, options)
        resumed_from = start
        optimizer_state = latest / "optimizer.safetensors"
    else:
        optimizer_state = None
        if not representation.fitted:
            representation.fit_stats(dataset[i % len(dataset)] for i in range(min(STATS_ITEMS, max(len(dataset), 8))))
        if representation.vocoder is None:
            geometry = {"n_mels": representation.options.n_mels, "hop": representation.hop,
                        "n_fft": representation.options.n_fft}
            base = asdict(vocoder_options) if vocoder_options else {}
            with torch.random.fork_rng():
                torch.manual_seed(options.seed)
                representation.set_vocoder(Vocoder(VocoderOptions(**{**base, **geometry})))
    vocoder = representation.vocoder
    vocoder.train()
    optimizer = torch.optim.AdamW(vocoder.parameters(), lr=options.lr, betas=(0.8, 0.99),
                                  weight_decay=options.weight_decay)
    if optimizer_state is not None:
        _load_optimizer(optimizer, optimizer_state)
    stft_loss = MultiResolutionSTFTLoss()
    began = time.perf_counter()
    step = start
    for step in range(start + 1, options.steps + 1):
        loss, parts = vocoder_loss(representation, stft_loss, _batch(dataset, step, options), options.mel_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if options.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(vocoder.parameters(), options.grad_clip)
        optimizer.step()
        if step % options.log_every == 0 or step == options.steps:
            losses.append((step, parts["loss"]))
            if log is not None:
                log({"step": step, "steps": options.steps, **parts, "seconds": time.perf_counter() - began})
        if step % options.checkpoint_every == 0 or step == options.steps:
            _save_checkpoint(checkpoints, step, representation, optimizer, options, losses)
    step = max(step, start)
    vocoder.eval()
    representation.save(out / "representation")
    return VocoderTrainResult(representation, step, resumed_from, losses, out, time.perf_counter() - began)


# -- checkpoints ---------------------------------------------------------------------------------
def _latest(checkpoints: Path) -> Path | None:
    pointer = checkpoints / "latest.json"
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise WeightsError(f"{pointer}: not a readable checkpoint pointer ({error})") from None
    if not isinstance(name, str) or "/" in name or not (checkpoints / name).is_dir():
        raise WeightsError(f"{pointer}: names the checkpoint {name!r}, which is not in {checkpoints}")
    return checkpoints / name


def _save_checkpoint(checkpoints: Path, step: int, representation: MelRepresentation,
                     optimizer: torch.optim.Optimizer, options: VocoderTrainOptions,
                     losses: list[tuple[int, float]]) -> Path:
    """Every file of step ``step`` written atomically, then ``latest.json``; older ones removed."""
    safetensors = require("safetensors.torch", extra="text", purpose="writing vocoder checkpoints")
    name = f"step-{step:08d}"
    directory = checkpoints / name
    representation.save(directory / "representation")
    state = optimizer.state_dict()
    tensors = {f"state.{index}.{key}": value for index, entry in state["state"].items()
               for key, value in entry.items()}
    tensors["rng.torch"] = torch.get_rng_state()
    with atomic_write(directory / "optimizer.safetensors") as handle:
        handle.write(safetensors.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}))
    with atomic_write(directory / "state.json", "w", encoding="utf-8") as handle:
        json.dump({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": step,
                   "options": asdict(options), "param_groups": state["param_groups"],
                   "losses": [list(pair) for pair in losses]}, handle, indent=1)
    with atomic_write(checkpoints / "latest.json", "w", encoding="utf-8") as handle:
        json.dump({"checkpoint": name, "step": step}, handle)
    for old in checkpoints.glob("step-*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return directory


def _restore(directory: Path, representation: MelRepresentation,
             options: VocoderTrainOptions) -> tuple[int, list[tuple[int, float]]]:
    """Load the checkpoint's statistics and vocoder into ``representation``; (step, losses)."""
    state_file = directory / "state.json"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WeightsError(f"{state_file}: not a readable checkpoint state ({error})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT \
            or state.get("version") != CHECKPOINT_VERSION or not isinstance(state.get("step"), int):
        raise WeightsError(f"{state_file}: not a {CHECKPOINT_FORMAT} version {CHECKPOINT_VERSION} state")
    saved = MelRepresentation.load(directory / "representation")
    if saved.options != representation.options:
        raise ConfigError(f"{directory}: the checkpoint's mel representation {saved.options} differs from the one "
                          f"given {representation.options}; resume with the same representation")
    for name in ("batch_size", "segment_seconds", "seed", "lr", "mel_weight"):
        if state["options"].get(name) != getattr(options, name):
            raise ConfigError(f"{directory}: the checkpoint was trained with {name} {state['options'].get(name)!r}, "
                              f"not {getattr(options, name)!r}; resume with the same settings")
    representation.mean.copy_(saved.mean)
    representation.std.copy_(saved.std)
    representation.fitted = saved.fitted
    representation.set_vocoder(saved.vocoder)
    return state["step"], [tuple(pair) for pair in state.get("losses", [])]


def _load_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> None:
    safetensors = require("safetensors.torch", extra="text", purpose="reading vocoder checkpoints")
    state_file = path.parent / "state.json"
    try:
        tensors = safetensors.load_file(str(path))
    except Exception as error:  # SafetensorError and OSError: a corrupt or unreadable file
        raise WeightsError(f"{path}: not a readable safetensors file ({error})") from None
    groups = json.loads(state_file.read_text(encoding="utf-8"))["param_groups"]
    entries: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            entries.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": entries, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as error:
        raise WeightsError(f"{path}: the optimizer state does not fit the vocoder ({error})") from None
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
