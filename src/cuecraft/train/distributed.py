"""Distributed data parallel set-up from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

``torchrun --nproc_per_node K -m cuecraft train ...`` starts K processes; each calls
``start_distributed`` which joins the process group (gloo on CPU, nccl on CUDA) and picks its
device (``cuda:LOCAL_RANK`` when CUDA is available). Without torchrun's variables it is a single
process and nothing is initialised. Multi-node runs are torchrun's own ``--nnodes`` /
``--rdzv-endpoint``; nothing here changes.

``CUECRAFT_DIST_TIMEOUT`` (seconds, default torch's 30 minutes) bounds every collective: a rank
that stops answering fails the others with a timeout error instead of a hang.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from cuecraft.errors import ConfigError


@dataclass(frozen=True)
class DistributedContext:
    rank: int  # this process among all (0: the one that writes files)
    world_size: int  # processes in the run
    local_rank: int  # this process on its node (its GPU)
    device: torch.device
    initialised: bool  # whether this call joined a process group (and must leave it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}: expected an integer (as torchrun sets it); "
                          f"got {value!r}") from None


def start_distributed(device: str | torch.device | None = None) -> DistributedContext:
    """Join torchrun's process group when WORLD_SIZE > 1; pick this process's device.

    ``device``: "cpu", "cuda" or None (CUDA when available). With torchrun and CUDA each process
    takes ``cuda:LOCAL_RANK``.
    """
    world = _env_int("WORLD_SIZE") or 1
    rank = _env_int("RANK") or 0
    local = _env_int("LOCAL_RANK") or 0
    if device is not None and not (torch.cuda.is_available() and str(device).startswith("cuda")):
        from cuecraft._device import check_device

        check_device(device, what="device")
    wanted = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    if wanted.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: CUDA is not available on this machine")
        wanted = torch.device("cuda", local if wanted.index is None else wanted.index)
        torch.cuda.set_device(wanted)
    initialised = False
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if wanted.type == "cuda" else "gloo"
        timeout = _env_int("CUECRAFT_DIST_TIMEOUT")
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"environment variable CUECRAFT_DIST_TIMEOUT: expected seconds > 0; got {timeout}")
        dist.init_process_group(backend=backend, **({"timeout": datetime.timedelta(seconds=timeout)}
                                                    if timeout is not None else {}))
        initialised = True
    return DistributedContext(rank, world, local, wanted, initialised)


def stop_distributed(context: DistributedContext) -> None:
    """Leave the process group ``start_distributed`` joined (no-op otherwise)."""
    if context.initialised and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """The mean of ``value`` over ranks (itself in a single process)."""
    if not context.distributed:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / context.world_size


def any_rank(flag: bool, context: DistributedContext) -> bool:
    """True on every rank when ``flag`` is True on any (e.g. a stop signal seen by one process)."""
    if not context.distributed:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def barrier(context: DistributedContext) -> None:
    if context.distributed:
        dist.barrier()
