"""Training checkpoints: weights, EMA, optimizer and a JSON state, written so a crash never tears one.

A run directory holds ``checkpoints/step_NNNNNNNN/`` directories and ``checkpoints/latest``
(the name of the newest complete one). A checkpoint directory holds

- ``model.safetensors``: the trainable weights (``requires_grad`` parameters; frozen ones, such as
  a pretrained text encoder or a LoRA base, are rebuilt from the config);
- ``ema.safetensors``: their exponential moving average (float32);
- ``optimizer.safetensors``: the optimizer's per-parameter tensors (``state.{i}.{name}``);
- ``state.json``: format and version, step, the model config and its fingerprint, the optimizer's
  parameter groups, the loss scaler, RNG states (torch, python ``random``, numpy), the data
  position, and the size and SHA-256 of each tensor file.

Writing: every file goes through ``atomic_write`` into a temporary directory, which is renamed into
place (a rename is atomic), and only then is ``latest`` (itself written atomically) pointed at it.
An interrupted write leaves the previous checkpoint as ``latest``. Reading checks the format, the
version and every file's size and hash, and raises a CheckpointError naming the file and the reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cuecraft._bounded import read_regular
from cuecraft._files import _alive, atomic_write, read_versioned_json
from cuecraft._optional import require
from cuecraft.errors import CheckpointError

FORMAT = "cuecraft.checkpoint"
VERSION = 1
LATEST = "latest"
STATE_FILE = "state.json"
TENSOR_FILES = ("model.safetensors", "ema.safetensors", "optimizer.safetensors")


@dataclass
class Checkpoint:
    """A loaded checkpoint: tensors by file, and the JSON state."""

    path: Path
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["step"])


def checkpoint_dir(run: str | os.PathLike[str]) -> Path:
    return Path(run) / "checkpoints"


def step_name(step: int) -> str:
    return f"step_{step:08d}"


# -- RNG states ------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """torch's, python's and numpy's global RNG states, JSON-serialisable."""
    state: dict[str, Any] = {"torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii")}
    version, internal, gauss = random.getstate()
    state["python"] = [version, list(internal), gauss]
    try:
        import numpy as np

        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]
    except ImportError:
        pass
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    raw = base64.b64decode(state["torch"])
    torch.set_rng_state(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


# -- optimizer ---------------------------------------------------------------------------------------
def flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state_dict -> (tensors ``state.{i}.{name}``, JSON rest)."""
    tensors, scalars = {}, {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for key, value in rest.get("scalars", {}).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


# -- files -----------------------------------------------------------------------------------------
def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(run: str | os.PathLike[str], step: int, *, model: dict[str, torch.Tensor],
                    ema: dict[str, torch.Tensor], optimizer: dict[str, Any], state: dict[str, Any],
                    keep: int = 2) -> Path:
    """Write checkpoint ``step`` of ``run`` (see the module docstring), point ``latest`` at it and
    keep the newest ``keep``. ``optimizer`` is the optimizer's state_dict; ``state`` the JSON fields."""
    safetensors = require("safetensors.torch", extra="text", purpose="writing checkpoints")
    root = checkpoint_dir(run)
    root.mkdir(parents=True, exist_ok=True)
    remove_orphans(root)
    final = root / step_name(step)
    temporary = root / f".{step_name(step)}.{os.getpid()}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    optimizer_tensors, optimizer_rest = flatten_optimizer(optimizer)
    files = {}
    for name, tensors in zip(TENSOR_FILES, (model, ema, optimizer_tensors)):
        payload = safetensors.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        with atomic_write(temporary / name) as handle:
            handle.write(payload)
        files[name] = {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    full = {"format": FORMAT, "version": VERSION, "step": step, **state, "optimizer": optimizer_rest,
            "files": files}
    with atomic_write(temporary / STATE_FILE, "w", encoding="utf-8") as handle:
        json.dump(full, handle)
    if final.exists():  # a rerun of the same step: move the old one aside first
        aside = root / f".{step_name(step)}.{os.getpid()}.old"
        os.replace(final, aside)
        shutil.rmtree(aside, ignore_errors=True)
    os.replace(temporary, final)
    with atomic_write(root / LATEST, "w", encoding="utf-8") as handle:
        handle.write(final.name + "\n")
    complete = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in complete[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


_ORPHAN = re.compile(r"^\.step_\d+\.(?P<pid>\d+)\.(tmp|old)$")


def remove_orphans(root: Path) -> int:
    """Remove the temporary checkpoint folders (``.step_N.PID.tmp`` / ``.old``) of writers that died
    (a kill during a save); those of this process and of running ones are kept. Returns how many."""
    removed = 0
    for candidate in root.glob(".step_*"):
        match = _ORPHAN.match(candidate.name)
        if match is None or int(match["pid"]) == os.getpid() or _alive(int(match["pid"])):
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        removed += not candidate.exists()
    return removed


def latest_checkpoint(run: str | os.PathLike[str]) -> Path | None:
    """The directory ``latest`` names, or None when the run has no checkpoint yet."""
    pointer = checkpoint_dir(run) / LATEST
    if not pointer.exists():
        return None
    try:  # a FIFO or a device planted as ``latest`` is refused, never waited on
        name = read_regular(pointer, 4096).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{pointer}: cannot read the checkpoint pointer ({error})") from None
    path = checkpoint_dir(run) / name
    if not name.startswith("step_") or not path.is_dir():
        raise CheckpointError(f"{pointer}: names {name!r}, which is not a checkpoint directory in {path.parent}")
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint directory (or a run directory: its ``latest``), checking every file."""
    safetensors = require("safetensors.torch", extra="text", purpose="reading checkpoints")
    path = Path(path)
    if not (path / STATE_FILE).exists() and (checkpoint_dir(path) / LATEST).exists():
        path = latest_checkpoint(path)  # type: ignore[assignment]
    state_path = path / STATE_FILE
    state = read_versioned_json(
        state_path, format=FORMAT, version=VERSION, error=CheckpointError, what="a cuecraft checkpoint",
        missing=f"a checkpoint directory holds {STATE_FILE} and {', '.join(TENSOR_FILES)}")
    for key in ("step", "files", "optimizer", "config"):
        if key not in state:
            raise CheckpointError(f"{state_path}: has no {key!r} field")
    tensors = []
    for name in TENSOR_FILES:
        file = path / name
        expected = state["files"].get(name, {})
        if not file.is_file():
            raise CheckpointError(f"{file}: missing from the checkpoint")
        if file.stat().st_size != expected.get("bytes") or _digest(file) != expected.get("sha256"):
            raise CheckpointError(f"{file}: size or SHA-256 differs from what {STATE_FILE} recorded (a torn or "
                                  "altered file)")
        try:
            tensors.append(safetensors.load_file(str(file)))
        except Exception as error:  # SafetensorError and OSError
            raise CheckpointError(f"{file}: not a readable safetensors file ({error})") from None
    return Checkpoint(path, tensors[0], tensors[1], tensors[2], state)


def check_tensors(path: Path, tensors: dict[str, torch.Tensor], expected: dict[str, torch.Size]) -> None:
    """``tensors`` must hold exactly ``expected`` (names and shapes); a CheckpointError lists the rest."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [f"{k}: file {list(tensors[k].shape)}, model {list(expected[k])}"
                  for k in sorted(set(expected) & set(tensors)) if tensors[k].shape != expected[k]]
    if missing or unexpected or mismatched:
        def show(items: list[str]) -> str:
            return "none" if not items else ", ".join(items[:5]) + (f" (+{len(items) - 5})" if len(items) > 5 else "")
        raise CheckpointError(f"{path}: does not fit the model its config builds: missing {show(missing)}; "
                              f"unexpected {show(unexpected)}; shape mismatches {show(mismatched)}")
