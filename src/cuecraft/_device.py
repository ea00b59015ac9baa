"""Checking a device name a user gave (``--device``) before anything is built on it.

``torch.device("garbage")`` is a RuntimeError, and ``cuda`` on a CPU build an AssertionError deep in
model loading; ``check_device`` turns every such case into a DeviceError that lists the devices
this torch build and machine have.
"""

from __future__ import annotations

from typing import Any

import torch

from cuecraft._text import short_repr
from cuecraft.errors import DeviceError


def available_devices() -> list[str]:
    """The device names that work here: ``cpu``, ``cuda:N`` for each GPU, ``mps`` / ``xpu`` when present."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        names += ["xpu", *(f"xpu:{i}" for i in range(xpu.device_count()))]
    return names


def check_device(name: Any, *, what: str = "--device") -> torch.device:
    """``torch.device(name)`` when it names a device this machine can compute on; else a DeviceError
    (not a device name, a backend this torch build lacks, an index past the device count, ``meta``)."""
    allowed = ", ".join(available_devices())
    if isinstance(name, torch.device):
        device = name
    else:
        try:
            device = torch.device(name if isinstance(name, str) and len(name) <= 64 else "")
        except (RuntimeError, TypeError, ValueError):
            raise DeviceError(f"{what}: {short_repr(name)} is not a device name; devices here: {allowed}") from None
    kind, index = device.type, device.index
    if kind == "cpu":
        return device
    if kind == "cuda" and torch.cuda.is_available() and (index is None or index < torch.cuda.device_count()):
        return device
    mps = getattr(torch.backends, "mps", None)
    if kind == "mps" and mps is not None and mps.is_available():
        return device
    xpu = getattr(torch, "xpu", None)
    if kind == "xpu" and xpu is not None and xpu.is_available() and (index is None or index < xpu.device_count()):
        return device
    raise DeviceError(f"{what}: {short_repr(name)} is not available here (this torch build and machine); "
                      f"devices here: {allowed}")
