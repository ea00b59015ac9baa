"""DDP: 2 CPU processes under torchrun (gloo) train to the weights of one process at the same global batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from cuecraft.train.export import read_export
from cuecraft.train.loop import train
from tests.train.helpers import NAMES, fast_config, make_data, one_thread, quiet


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("corpus"), items=8, seconds=1.0)


def _torchrun(arguments: list[str], *, timeout: float) -> subprocess.CompletedProcess:
    """Run ``torchrun --standalone --nproc_per_node 2 -m cuecraft ...`` robustly on a loaded machine.

    - ``--standalone`` binds the rendezvous store to port 0, so the kernel picks a free port for
      every run (the process group shares that store: no fixed 29500 to collide on).
    - gloo on the loopback interface (``GLOO_SOCKET_IFNAME=lo``), whatever the host name resolves to.
    - one OpenMP / MKL thread per worker: two workers on a 2-core machine otherwise oversubscribe it.
    - ``CUECRAFT_DIST_TIMEOUT``: a stuck collective fails the run within 60 s with gloo's timeout error.
    - the whole process group (torchrun and its workers) is killed on ``timeout``, with a message
      naming the timeout and the output so far, never leaving orphan workers.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo",
           "CUECRAFT_DIST_TIMEOUT": "60"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "cuecraft", *arguments]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"torchrun with 2 processes did not finish within {timeout:.0f} s (killed); its output:\n"
                    f"{stderr[-4000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_two_processes_match_one(corpus, tmp_path):
    config = fast_config(max_steps=4, segment_seconds=1.0)
    config["conditioning"]["dropout"] = {"cfg": 0.0}  # drawn per rank batch, so it would differ
    path = tmp_path / "model.json"
    path.write_text(json.dumps(config))
    done = _torchrun(["train", "--config", str(path), "--data", str(corpus), "--out", str(tmp_path / "ddp"),
                      "--device", "cpu", "--no-progress"], timeout=240)
    assert done.returncode == 0, f"torchrun exited with {done.returncode}:\n{done.stderr[-6000:]}"
    assert "world size 2" in done.stderr
    assert "find_unused_parameters" not in done.stderr  # torch's warning that the flag is unneeded
    with one_thread():
        train(config, corpus, tmp_path / "one", log=quiet, device="cpu")
    one, two = read_export(tmp_path / "one" / "model")[1], read_export(tmp_path / "ddp" / "model")[1]
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-5, rtol=0, msg=name)
    # only rank 0 wrote: one metrics file, checkpoints from one process
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("nulls", [False, True])
def test_every_trainable_parameter_gets_a_gradient_in_the_first_step(nulls):
    """Why DDP runs with find_unused_parameters=False: every trainable parameter is in the autograd
    graph of every step, the first included (adaLN-zero: the zero gates give the blocks' weights
    zero gradients, but gradients all the same), with conditions and with every condition null
    (CFG dropout of a whole batch); prepend and input-concat roles included."""
    from cuecraft.config.model import build_model
    from cuecraft.guidance import unconditional
    from cuecraft.train.module import DiffusionModule

    config = fast_config()
    config["conditioning"]["conditioners"] += [
        {"id": "bpm_prepend", "type": "number", "roles": ["prepend", "input_concat"],
         "config": {"min_val": 40, "max_val": 240}}]
    config["conditioning"]["default_keys"] = {"bpm_prepend": "bpm"}
    config["backbone"].update(prepend_dim=32, input_concat_dim=32)
    stack, _, dit, objective = build_model(config)
    module = DiffusionModule(stack, dit)
    metadata = [{"name": NAMES[i], "bpm": 60 + 20 * i} for i in range(3)]
    attributes = stack.provider.to_attributes(metadata)
    tokens = stack.provider.tokenize(unconditional(attributes) if nulls else attributes, train=True)
    x0, eps, t = torch.randn(3, 16, 20), torch.randn(3, 16, 20), torch.tensor([0.2, 0.5, 0.9])
    prediction = module(objective.noise(x0, eps, t), t, tokens)
    objective.loss(prediction, objective.target(x0, eps, t)).backward()
    missing = [name for name, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    zero = [name for name, p in module.named_parameters() if p.requires_grad and not p.grad.any()]
    assert "dit.out.weight" not in zero  # the zero-initialised output layer learns first
