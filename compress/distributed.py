"""Data-parallel training by hand: torchrun's ranks, a barrier, and gradient averaging.

Every rank trains the same student on different batches (sample_batch mixes the rank into its seed);
gradients are averaged after each backward pass, so the replicas stay equal. Rank 0 writes the files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch.distributed as dist
from torch import nn


@dataclass
class Dist:
    """This process's rank among `world` processes (rank 0 writes the RUN_DIR files)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        """Wait for every rank, then take the process group down: a rank that exits with its gloo
        group still up can abort at exit ("terminate called without an active exception", SIGABRT),
        and torchrun then kills the rank still writing the files."""
        if self.world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def init_distributed(device: str) -> Dist:
    """torchrun sets WORLD_SIZE/RANK: gloo on CPU, nccl on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def all_reduce_grads(module: nn.Module, d: Dist) -> None:
    """Average gradients over ranks (what DDP does; done by hand because the student changes shape
    when it is compacted, and re-wrapping DDP mid-run would rebuild its buckets every time)."""
    if d.world == 1:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(d.world)
