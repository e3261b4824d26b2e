"""Batch invariance: an input's vector does not depend on the inputs batched with it.

A row of a batched matrix product does not keep its bits when the batch around it changes shape:
the BLAS chooses kernels, blocking and the split across threads by the matrix's shape, and padding
to the longest input changes the shape too. Measured here (torch 2.14.1, MKL, 2 cores):
all-MiniLM-L6-v2 vectors of equal-length sentences (no padding) differed in the last bits between
batches of 1, 5 and 32 for 271 of 339 sentences; a ``Linear(384, 1536)`` row differs between 1-15
rows and more; a lone sentence's vector differs between 1 and 2 torch threads. Only the inputs
missing from the feature store are batched, so batched vectors depended on what the store held.

So every input is computed in a **canonical batch**: exactly ``batch_size`` inputs of one shape
(``shape_of``: for text the token length rounded up to a multiple of 8, padded to it; for video
the number of frames), the last batch of a shape filled up with copies of its first input. Every
product then has the same shape, whatever the neighbours. On the CPU each batch runs with
single-threaded torch, batches spread over as many worker threads as torch had threads, so the
core count does not change a bit either. Within one shape, a row's result does not depend on its
position or its neighbours (measured: all rows equal across random compositions, 1 thread); the
tests check it byte for byte for every extractor family. The same batches run on CUDA, one after
another (by construction; not yet measured on a GPU).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")
_threads_lock = threading.Lock()


def forward_invariant(forward_batch: Callable[[list[T], Hashable], np.ndarray], items: Sequence[T], *,
                      batch_size: int, shape_of: Callable[[T], Hashable],
                      device: torch.device) -> np.ndarray:
    """``forward_batch(batch, shape)`` -> ``(len(batch), d)`` over ``items`` in canonical batches
    (module docstring); rows returned in the order of ``items``. On the CPU ``forward_batch`` is
    called from several threads at once and must be safe for that."""
    if len(items) == 0:
        return np.zeros((0, 0), np.float32)   # callers with nothing to compute do not call
    batch_size = max(1, int(batch_size))
    groups: dict[Hashable, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(shape_of(item), []).append(i)
    jobs = []
    for shape, members in groups.items():
        for start in range(0, len(members), batch_size):
            rows = members[start:start + batch_size]
            filler = [items[rows[0]]] * (batch_size - len(rows))
            jobs.append((rows, [items[i] for i in rows] + filler, shape))

    def run(job) -> np.ndarray:
        rows, batch, shape = job
        return forward_batch(batch, shape)[:len(rows)]

    outputs = each_alone(run, jobs) if device.type == "cpu" else [run(job) for job in jobs]
    out = np.empty((len(items), outputs[0].shape[1]), np.float32)
    for (rows, _, _), result in zip(jobs, outputs):
        out[rows] = result
    return out


def each_alone(fn: Callable[[T], np.ndarray], items: Sequence[T]) -> list[np.ndarray]:
    """``[fn(x) for x in items]`` with torch single-threaded inside ``fn``, ``fn`` calls spread
    over as many worker threads as torch had threads (results in the order of ``items``)."""
    with single_threaded_torch() as workers:
        if workers == 1 or len(items) == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="alone") as pool:
            return list(pool.map(fn, items))


@contextlib.contextmanager
def single_threaded_torch() -> Iterator[int]:
    """torch's intra-op threads set to 1 inside; yields how many it had (the worker count)."""
    with _threads_lock:
        workers = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield workers
        finally:
            torch.set_num_threads(workers)
