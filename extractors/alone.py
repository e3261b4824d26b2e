"""Batch invariance: on the CPU every input goes through the model alone.

A row of a batched matrix product does not keep its bits when the batch around it changes: the
BLAS chooses kernels and blocking by the matrix's shape, and padding changes the shape too.
Measured here (torch 2.14.1, MKL, 2 cores): all-MiniLM-L6-v2 vectors of equal-length sentences
(no padding) differed in the last bits between batches of 1, 5 and 32 for 271 of 339 sentences;
a lone ``Linear(384, 1536)`` row differs between 1-15 rows and more; and a lone sentence's vector
differs between 1 and 2 torch threads. So a vector computed in batches depends on its neighbours,
hence on what the feature store already held (only the missing inputs are batched).

On the CPU each input is therefore computed as a batch of one, never padded, by single-threaded
torch, in a pool of worker threads (one per torch thread the process had): its vector is a
function of the input alone, whatever the batch, the store or the core count. Measured on 2 cores
(``benchmarks/extract_speed.py``): text 180 against 225 utterances/s batched, visual faster than
batched (29 against 21). On CUDA inputs are batched for throughput (``batch_size: 1`` gives the
same invariance there); the identity names the device (:func:`model.device.compute_identity`), so
vectors of the two never share a feature-store shelf.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")
_threads_lock = threading.Lock()


def forward_invariant(forward_batch: Callable[[list[T]], np.ndarray], items: Sequence[T],
                      device: torch.device) -> np.ndarray:
    """``forward_batch`` over ``items``: one call on CUDA; on the CPU one call per item, alone
    (``forward_batch`` must then be safe to call from several threads at once)."""
    if device.type != "cpu" or len(items) == 0:
        return forward_batch(list(items))
    return np.concatenate(each_alone(lambda item: forward_batch([item]), items))


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
