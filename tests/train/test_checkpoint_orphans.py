"""Temporary checkpoint folders of a writer killed during a save are removed by the next save, as a
resumed run makes one (issue 23); a live writer's and this process's are kept. A ``latest`` that is
a FIFO is an error, not a hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch

from cuecraft.errors import CheckpointError
from cuecraft.train.checkpoint import checkpoint_dir, latest_checkpoint, save_checkpoint


def _save(run, step):
    model = {"w": torch.ones(2)}
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1).state_dict()
    return save_checkpoint(run, step, model=model, ema=model, optimizer=optimizer, state={"config": {}})


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_orphans_of_dead_writers_are_removed_by_the_next_save(tmp_path):
    _save(tmp_path, 1)
    root = checkpoint_dir(tmp_path)
    dead, live = _dead_pid(), os.getppid()
    for name in (f".step_00000002.{dead}.tmp", f".step_00000002.{dead}.old", f".step_00000003.{live}.tmp"):
        (root / name).mkdir()
        (root / name / "model.safetensors").write_bytes(b"torn")
    _save(tmp_path, 2)
    assert sorted(p.name for p in root.iterdir()) == [f".step_00000003.{live}.tmp", "latest", "step_00000001",
                                                      "step_00000002"]


def test_a_fifo_latest_is_refused_not_waited_on(tmp_path):
    _save(tmp_path, 1)
    pointer = checkpoint_dir(tmp_path) / "latest"
    pointer.unlink()
    os.mkfifo(pointer)
    signal.alarm(10)
    try:
        with pytest.raises(CheckpointError, match="it is a FIFO, not a regular file"):
            latest_checkpoint(tmp_path)
    finally:
        signal.alarm(0)
