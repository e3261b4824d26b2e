"""model.distributed: shards, the gradient exchange of data parallelism (2 gloo processes), and
the training batches each rank takes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from model.data import Dialogue, batches
from model.distributed import World, all_gather, average_gradients, gather
from model.training import rank_batches


def test_shards_cover_everything_once_in_order():
    items = list(range(11))
    parts = [World(r, 3).shard(items) for r in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert World().shard(items) == items and World().main and not World(1, 2).main


def _exchange(rank: int, size: int, init: str, out) -> None:
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=size)
    world = World(rank, size)
    torch.manual_seed(0)                # the same weights and data as the test's
    layer = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    if rank == 0:                       # rank 1 had nothing to learn from: no gradient at all
        layer(x).pow(2).sum().backward()
    average_gradients(layer.parameters(), world)
    out[rank] = {"grads": [p.grad.clone() for p in layer.parameters()],
                 "gathered": all_gather(rank * 10, world), "to_main": gather(f"r{rank}", world)}
    torch.distributed.destroy_process_group()


def test_gradients_are_averaged_over_the_ranks_an_idle_rank_counting_zero(tmp_path):
    out = mp.Manager().dict()
    mp.spawn(_exchange, args=(2, f"file://{tmp_path / 'rendezvous'}", out), nprocs=2)
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    layer(x).pow(2).sum().backward()
    for rank in (0, 1):
        for got, full in zip(out[rank]["grads"], layer.parameters()):
            torch.testing.assert_close(got, full.grad / 2)
        assert out[rank]["gathered"] == [0, 10]
    assert out[0]["to_main"] == ["r0", "r1"] and out[1]["to_main"] is None


def test_a_world_of_one_exchanges_nothing():
    layer = torch.nn.Linear(2, 1)
    layer(torch.ones(1, 2)).sum().backward()
    before = [p.grad.clone() for p in layer.parameters()]
    average_gradients(layer.parameters(), World())
    assert all(torch.equal(a, p.grad) for a, p in zip(before, layer.parameters()))
    assert gather("x", World()) == ["x"] and all_gather(1, World()) == [1]


@pytest.mark.parametrize("size", [2, 3])
def test_each_rank_takes_its_share_of_the_same_batches(size):
    items = [Dialogue(f"d{i}", np.arange(3 * i, 3 * i + 2 + i % 3), np.zeros(2 + i % 3, int),
                      np.zeros(2 + i % 3, int)) for i in range(10)]
    matrices = {"text": np.random.default_rng(0).standard_normal((40, 4)).astype(np.float32)}
    present = {"text": np.ones(40, bool)}
    alone = [b.dialogue_ids for b in batches(items, 4, matrices, present, np.random.default_rng(5))]
    shares = [[None if b is None else b.dialogue_ids
               for b in rank_batches(items, 4, matrices, present, np.random.default_rng(5), World(r, size))]
              for r in range(size)]
    assert all(len(s) == len(alone) for s in shares)          # every rank steps as often
    for i, ids in enumerate(alone):
        joined = [d for r in range(size) for d in (shares[r][i] or [])]
        assert sorted(joined) == sorted(ids)
    assert [b.dialogue_ids for b in rank_batches(items, 4, matrices, present, np.random.default_rng(5),
                                                 World())] == alone


def test_a_trainer_without_a_data_parallel_mode_is_refused():
    from config.model import ModelConfig
    from config.train import TrainConfig
    from model.training import AMBDSGDNTrainee

    class Sequential(AMBDSGDNTrainee):
        data_parallel = False

    with pytest.raises(ValueError, match="train.parallel=dialogues: AMBDSGDN's trainer has no data-parallel"):
        Sequential(0, ModelConfig(input_dims={"text": 4}, num_classes=2), TrainConfig(device="cpu"),
                   {"train": []}, {}, {}, world=World(0, 2))
