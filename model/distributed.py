"""Several processes on one stage: ``torch.distributed`` as ``torchrun`` (or ``srun torchrun``)
starts it, and nothing else (no scheduler of our own).

A process started by ``python -m pipeline.<stage>`` is a world of one: every function here is
then a no-op and no process group is created. Under ``torchrun --nproc_per_node N`` (the top-level
``launcher`` param, docs/parallel.md) each process learns its rank from the environment torchrun
sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and joins the
default group on first use: gloo for the coordination every stage needs (barriers, gathering
small reports), NCCL for CUDA tensors where there are GPUs (``cpu:gloo,cuda:nccl``).

It lives in :mod:`model`, below ``extractors`` and ``pipeline``, like :mod:`model.device`.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")

# A rank may wait this long at a collective for the slowest rank (a shard of a large corpus can
# take hours). A rank that dies does not leave the others waiting: torchrun stops the whole group.
TIMEOUT = timedelta(hours=24)


@dataclass(frozen=True)
class World:
    """This process's place among the processes of one launch."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0          # the rank on this machine (its GPU index)

    @property
    def main(self) -> bool:
        """The process that writes a stage's outputs (rank 0)."""
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items``: every ``size``-th from position ``rank`` (deterministic,
        sizes differ by at most one)."""
        return list(items[self.rank::self.size])

    def label(self) -> str:
        return f"rank {self.rank}/{self.size}" if self.size > 1 else ""

    def main_log(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log`` on rank 0, silence on the others (rank 0 speaks for the launch)."""
        return log if self.main else _silent


def _silent(message: str) -> None:
    """The log of a rank other than 0."""


def use_threads(threads: int) -> None:
    """Compute with ``threads`` torch threads in this process (0: leave torch's default, one per
    core). A CPU training's last bits depend on this count, not on the machine or the launcher
    (torchrun would give each process one), so the train and evaluate stages set it from the
    top-level ``threads`` param."""
    if threads > 0:
        torch.set_num_threads(threads)


def launched() -> bool:
    """Whether this process was started by a launcher with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def current(device: torch.device | str | None = None) -> World:
    """This process's :class:`World`; in a launched run the default process group is joined on the
    first call (``device``: where the stage computes; CUDA adds NCCL for its tensors)."""
    if not launched():
        return World()
    if not dist.is_initialized():
        cuda = device is not None and torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", timeout=TIMEOUT)
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def rank_device(device: torch.device, world: World) -> torch.device:
    """The device of this rank: its own GPU (``cuda:<local rank>``) where the stage runs on CUDA
    without naming an index, else ``device`` itself."""
    if device.type == "cuda" and world.size > 1 and device.index is None:
        return torch.device("cuda", world.local_rank)
    return device


def gather(obj: Any, world: World) -> list[Any] | None:
    """Every rank's ``obj`` (a small picklable report), in rank order, on rank 0; None elsewhere.
    Also a barrier: rank 0 returns when every rank has sent. Between our own processes only (the
    objects are pickled over the group's sockets, never read from a file)."""
    if world.size == 1:
        return [obj]
    out: list[Any] | None = [None] * world.size if world.main else None
    dist.gather_object(obj, out, dst=0)
    return out


def all_gather(obj: Any, world: World) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if world.size == 1:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: T, world: World) -> T:
    """Rank 0's ``obj`` on every rank."""
    if world.size == 1:
        return obj
    box = [obj if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def average_gradients(parameters: Iterable[torch.nn.Parameter], world: World) -> None:
    """Data parallelism's one exchange: every rank's gradients replaced by their mean over the
    ranks, as DistributedDataParallel does after backward (one flat all-reduce per step; a
    parameter without a gradient on this rank counts as zero, so every rank reduces the same
    tensor even when one had no utterance to learn from)."""
    if world.size == 1:
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def finish() -> None:
    """Leave the process group, if this process joined one (at the end of a launched stage)."""
    if dist.is_initialized():
        dist.destroy_process_group()
