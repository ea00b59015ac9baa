"""Training batches: which items each rank reads at each step, reproducibly and resumably.

Map-style datasets (folders, manifests): epoch e is a permutation of the items drawn from
``seed + e``, cut to whole global batches (``batch_size`` items per optimizer step). Optimizer
step j of the epoch takes items ``[j * batch_size, (j + 1) * batch_size)`` of it; accumulation
micro-batch a takes its a-th slice, and rank r of K takes every K-th item of that slice from r
(DistributedSampler's interleaving). The union over ranks is the same for every world size, so
a run on K processes sees the same global batches as one process, and the position is a
function of the step: a resumed run continues with exactly the batches it would have read.

Streamed WebDataset shards split themselves by rank (``ShardDataset``); their position is the
epoch and the number of batches read in it, and resuming skips that many batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, IterableDataset, Sampler

from cuecraft.errors import DatasetError


@dataclass(frozen=True)
class BatchPlan:
    """How a global batch splits: ``micro`` items per rank and micro-batch."""

    batch_size: int  # items per optimizer step, over all ranks and micro-batches
    grad_accum: int
    world_size: int
    rank: int

    @property
    def chunk(self) -> int:
        """Items per micro-batch over all ranks."""
        return self.batch_size // self.grad_accum

    @property
    def micro(self) -> int:
        """Items per micro-batch on this rank."""
        return self.chunk // self.world_size

    def check(self) -> None:
        if self.chunk % self.world_size:
            raise DatasetError(f"training.batch_size {self.batch_size} / grad_accum {self.grad_accum} = {self.chunk} "
                               f"items per micro-batch cannot be split over {self.world_size} processes; make it a "
                               "multiple of the number of processes")


class StepBatches(Sampler[list[int]]):
    """The micro-batches (lists of dataset indices) of this rank for one epoch, from step ``start``
    of it on (see the module docstring)."""

    def __init__(self, size: int, plan: BatchPlan, *, seed: int, epoch: int, start: int = 0):
        self.size, self.plan, self.seed, self.epoch, self.start = size, plan, seed, epoch, start

    @staticmethod
    def steps_per_epoch(size: int, batch_size: int) -> int:
        return size // batch_size

    def __len__(self) -> int:
        return (self.steps_per_epoch(self.size, self.plan.batch_size) - self.start) * self.plan.grad_accum

    def __iter__(self) -> Iterator[list[int]]:
        plan = self.plan
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        for step in range(self.start, self.steps_per_epoch(self.size, plan.batch_size)):
            batch = order[step * plan.batch_size: (step + 1) * plan.batch_size]
            for a in range(plan.grad_accum):
                chunk = batch[a * plan.chunk: (a + 1) * plan.chunk]
                yield chunk[plan.rank:: plan.world_size]


def epoch_loader(dataset, collate, plan: BatchPlan, *, seed: int, epoch: int, start: int,
                 num_workers: int) -> DataLoader:
    """The DataLoader of one epoch from step ``start`` of it (batches already read are skipped)."""
    collate.set_epoch(epoch)
    if isinstance(dataset, IterableDataset):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        return DataLoader(dataset, batch_size=plan.micro, collate_fn=collate, num_workers=num_workers,
                          drop_last=True)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    sampler = StepBatches(len(dataset), plan, seed=seed, epoch=epoch, start=start)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers)


def frame_mask(padding_mask: torch.Tensor, frames: int, hop: int) -> torch.Tensor:
    """A sample padding mask bool [B, T] -> a frame mask bool [B, frames]: a frame is real when any
    sample of its hop is."""
    batch, length = padding_mask.shape
    padded = torch.nn.functional.pad(padding_mask, (0, max(0, frames * hop - length)))[:, : frames * hop]
    return padded.view(batch, frames, hop).any(-1)
