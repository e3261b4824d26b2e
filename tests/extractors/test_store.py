"""The feature store heals itself (a damaged chunk is quarantined, a non-finite vector recomputed,
never stored) and can be listed, verified and pruned from the command line."""
import json
import os
import time

import numpy as np

from extractors.store import QUARANTINE, FeatureStore, Shelf, main, prune_plan
from tests.extractors import test_cache
from tests.extractors.test_cache import Fake, run

table = test_cache.table        # the same fixture


def shelf_of(out) -> Shelf:
    (path, info), = FeatureStore(f"{out}.store").shelves()
    return Shelf(path, info["dim"])


def test_a_damaged_chunk_is_quarantined_named_and_its_vectors_recomputed(table, tmp_path, caplog):
    out = tmp_path / "features"
    Fake.calls, Fake.nan = [], set()
    first = run(table, out)
    shelf = shelf_of(out)
    chunks = shelf.chunks()
    chunks[0].write_bytes(chunks[0].read_bytes()[:50])            # truncated (a full disk, a kill)
    np.savez(shelf.path / "00-wrong-shape.npz", keys=np.array(["d2_u4|"]), features=np.zeros((1, 7), np.float32),
             stats=np.array(["{}"]))                               # read first (names sort by time)
    Fake.calls = []
    again = run(table, tmp_path / "again", store=FeatureStore(f"{out}.store"))
    assert again["reused"] == 11 and len(Fake.calls) == 4          # the 4 vectors of the damaged chunk
    quarantined = sorted(p.name for p in (shelf.path / QUARANTINE).iterdir())
    assert quarantined == sorted([chunks[0].name, f"{chunks[0].name}.reason.txt", "00-wrong-shape.npz",
                                  "00-wrong-shape.npz.reason.txt"])
    assert "unreadable" in (shelf.path / QUARANTINE / f"{chunks[0].name}.reason.txt").read_text()
    assert f"quarantined {chunks[0]}" in caplog.text
    np.testing.assert_array_equal(np.load(out / "features.npy"), np.load(tmp_path / "again" / "features.npy"))
    assert first["n_ok"] == again["n_ok"] == 15
    Fake.calls = []
    run(table, tmp_path / "third", store=FeatureStore(f"{out}.store"))
    assert Fake.calls == []                                         # healed: nothing recomputed now


def test_non_finite_vectors_are_never_stored_and_stored_ones_are_recomputed(table, tmp_path):
    out = tmp_path / "features"
    Fake.calls, Fake.nan = [], {"d1_u0"}
    meta = run(table, out, max_failed_fraction=1.0)
    assert meta["n_failed"] == 1
    shelf = shelf_of(out)
    stored = [k for c in shelf.chunks() for k in np.load(c)["keys"].tolist()]
    assert len(stored) == 14 and not any(k.startswith("d1_u0|") for k in stored)
    # A store written before this rule (or damaged in place): a NaN row is skipped, then recomputed.
    Fake.nan = set()
    np.savez(shelf.path / "zz-nan.npz", keys=np.array(["d1_u0|"]), features=np.full((1, 3), np.nan, np.float32),
             stats=np.array(["{}"]))
    Fake.calls = []
    healed = run(table, tmp_path / "healed", store=FeatureStore(f"{out}.store"))
    assert healed["n_failed"] == 0 and Fake.calls == ["d1_u0"]


def test_the_cli_lists_verifies_and_prunes(table, tmp_path, capsys):
    out = tmp_path / "features"
    Fake.calls, Fake.nan = [], set()
    run(table, out)
    run(table, tmp_path / "scaled", params={"scale": 2.0}, store=FeatureStore(f"{out}.store"))
    root = f"{out}.store"
    assert main(["--root", root]) == 0
    listing = capsys.readouterr().out
    assert "2 shelves" in listing and "last used" in listing and "total" in listing
    shelves = [Shelf(p, 3) for p, _ in FeatureStore(root).shelves()]
    shelves[0].chunks()[0].write_bytes(b"garbage")
    assert main(["--root", root, "verify"]) == 0
    assert "quarantined: unreadable" in capsys.readouterr().out
    old = time.time() - 40 * 86400
    os.utime(shelves[0].path / "identity.json", (old, old))
    assert main(["--root", root, "prune", "--older-than", "30", "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out and shelves[0].path.exists()
    kept = json.loads((out / "meta.json").read_text())
    assert main(["--root", root, "prune", "--older-than", "30", "--keep", str(out)]) == 0
    assert shelves[0].path.exists() == (shelves[0].path.name == f"{kept['extractor']}-{kept['identity_hash']}")
    assert main(["--root", root, "prune", "--max-size", "0"]) == 0   # budget 0: everything goes
    assert FeatureStore(root).shelves() == []


def test_prune_by_budget_takes_the_least_recently_used_first(tmp_path):
    shelves = []
    for i, age in enumerate([3, 1, 2]):
        path = tmp_path / "audio" / f"fake-{i}"
        path.mkdir(parents=True)
        (path / "identity.json").write_text("{}")
        os.utime(path / "identity.json", (time.time() - age * 86400,) * 2)
        shelves.append((Shelf(path, 3), 100))
    chosen = prune_plan(shelves, max_bytes=150)
    assert [s.path.name for s in chosen] == ["fake-0", "fake-2"]       # oldest first, until <= 150
    assert [s.path.name for s in prune_plan(shelves, max_bytes=150, keep={"fake-0"})] == ["fake-2", "fake-1"]


# -- concurrent writers (two ranks, two clones, two users on one machine's store) ----------------

DIM, KEYS = 64, [f"k{i:03d}" for i in range(200)]


def vector_of(key: str) -> np.ndarray:
    """The one vector every writer files under ``key`` (as a deterministic extractor would)."""
    return np.random.default_rng(int(key[1:])).standard_normal(DIM).astype(np.float32)


def _write_all(root: str, order_seed: int, start, read_during) -> None:
    """A writer: every key, chunk by chunk (sizes vary), in its own order, starting with the others;
    its last chunk waits until the reader has read what is there (so reads overlap the writes)."""
    shelf = FeatureStore(root).shelf("audio", "fake", "0123456789abcdef", DIM, {"extractor": "fake"})
    order = np.random.default_rng(order_seed).permutation(len(KEYS))
    start.wait()
    chunks = [[KEYS[i] for i in order[at:at + 7]] for at in range(0, len(order), 7)]
    for n, part in enumerate(chunks):
        if n == len(chunks) - 1:
            read_during.wait(60)
        shelf.add(part, np.stack([vector_of(k) for k in part]), [{"writer": order_seed}] * len(part))


def _read_while_written(root: str, start, stop, read_during, problems) -> None:
    """A reader during the writes: whatever it finds must be whole and right."""
    store = FeatureStore(root)
    start.wait()
    while not stop.is_set():
        if not store.shelves():
            continue
        shelf = Shelf(store.shelves()[0][0], DIM)
        found, _ = shelf.lookup(set(KEYS))
        problems.extend([k for k, v in found.items() if not np.array_equal(v, vector_of(k))])
        if found:
            read_during.set()       # a read of some chunks while both writers still hold one back
        if list(shelf.path.glob(f"{QUARANTINE}/*.npz")):
            problems.append("a chunk was quarantined: a reader saw a partial file")


def test_two_processes_writing_the_same_entries_at_once_leave_a_whole_store(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager()
    start, stop, read_during, problems = ctx.Barrier(3), ctx.Event(), ctx.Event(), manager.list()
    writers = [ctx.Process(target=_write_all, args=(str(tmp_path), seed, start, read_during))
               for seed in (1, 2)]
    reader = ctx.Process(target=_read_while_written, args=(str(tmp_path), start, stop, read_during, problems))
    for p in [*writers, reader]:
        p.start()
    for p in writers:
        p.join(120)
    stop.set()
    reader.join(60)
    assert [p.exitcode for p in [*writers, reader]] == [0, 0, 0]
    assert read_during.is_set(), "the reader never read while the writers were writing"
    assert list(problems) == []
    (path, _), = FeatureStore(tmp_path).shelves()
    shelf = Shelf(path, DIM)
    assert shelf.verify() == [] and not list(path.glob(".*.tmp"))      # no partial chunk left behind
    vectors, _ = shelf.size()
    assert vectors == 2 * len(KEYS)                                    # both wrote every key...
    found, stats = shelf.lookup(set(KEYS))
    assert sorted(found) == KEYS and all(np.array_equal(found[k], vector_of(k)) for k in KEYS)
    writers_seen = {s["writer"] for s in stats.values()}
    assert writers_seen <= {1, 2}                                       # ...and a key reads as one entry
    again, _ = shelf.lookup(set(KEYS))
    assert all(np.array_equal(again[k], found[k]) for k in KEYS)
