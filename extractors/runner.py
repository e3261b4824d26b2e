"""Running an extractor over a manifest: feature store -> missing vectors -> per-manifest cache.

Input fingerprints are looked up in the :mod:`extractors.store` shelf of the extractor's identity;
only what is not there is computed. Media for the next batch are decoded in a background thread
while the model runs on the current one, and every chunk of results is filed in the store at once,
so an interrupted run resumes. The cache for this manifest (:mod:`extractors.cache`) is written
last. Per-utterance failures are recorded with their reason; the policy (``on_failure``) and the
tolerated failure fraction are params.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from config.vocabulary import SOURCE_COLUMN
from extractors.base import Extractor, UtteranceFailure
from extractors.cache import write_cache
from extractors.store import FeatureStore
from model.distributed import World, gather

# mask: the utterance keeps a zero vector and mask=False (the model treats the modality as absent)
# drop: same storage; consumers drop masked utterances from training (evaluation still sees them)
FAILURE_POLICIES = ("mask", "drop")


class ExtractionError(RuntimeError):
    """Too many utterances failed; the message lists the reasons."""


def input_keys(table: pd.DataFrame, media_path, extractor: Extractor, store: FeatureStore,
               progress: bool = True) -> dict[str, str]:
    """utterance id -> input fingerprint (media files are digested once per change)."""
    rows = tqdm(table.iterrows(), total=len(table), unit="utt", mininterval=1.0,
                desc=f"fingerprint {extractor.modality} inputs",
                disable=not progress or extractor.modality == "text")
    return {row["utterance_id"]: extractor.input_key(row, media_path, store.digest) for _, row in rows}


@dataclass
class Collected:
    """The vectors of one extractor for a table's utterances, from the store or computed now."""

    keys: dict[str, str]                  # utterance id -> input fingerprint
    vectors: dict[str, np.ndarray]        # utterance id -> finite vector (absent: failed)
    failures: dict[str, str]              # utterance id -> reason
    counters: dict[str, dict[str, int]]   # utterance id -> the extractor's load counters
    reused: int                           # utterances served by the store
    computed: int                         # distinct inputs computed now
    timings: dict[str, float]
    shelf: Path


def shard_rows(table: pd.DataFrame, modality: str, world: World) -> pd.DataFrame:
    """This rank's rows: the table's distinct sources (a text, a media file) in order of first
    appearance, dealt round-robin, each with all its rows. Deterministic, and an input said or
    filmed twice is computed by one rank only."""
    source = table[SOURCE_COLUMN[modality]].astype(str)
    mine = set(world.shard(list(pd.unique(source))))
    return table[source.isin(mine)]


def collect(table: pd.DataFrame, media_path, extractor: Extractor, *, params: dict,
            store: FeatureStore | None = None, chunk_size: int = 128, progress: bool = True,
            labelled: bool = True, shard: World = World(), known_failures: dict[str, str] | None = None
            ) -> Collected:
    """Features for every row of ``table``: looked up in the store by input fingerprint, the rest
    computed (one computation per distinct input) and filed in the store chunk by chunk, so an
    interrupted run resumes. Failures (with their reason) and non-finite vectors are not vectors.
    ``labelled``: the table's splits are real (a manifest to train on, not one to predict on).
    ``shard``: only this rank's rows (:func:`shard_rows`; the extractor still prepares the whole
    table: a text's context comes from rows of any shard). ``known_failures``: utterance id ->
    reason, failed already in this run (by another rank): recorded, not retried."""
    started = time.perf_counter()
    extractor.prepare_inputs(table, labelled)
    if shard.size > 1:
        table = shard_rows(table, extractor.modality, shard)
    store = store or FeatureStore()
    shelf = store.shelf(extractor.modality, extractor.name, extractor.identity_hash(), extractor.dim,
                        {"modality": extractor.modality, "extractor": extractor.name,
                         "params": params, "identity": extractor.full_identity()})
    keys = input_keys(table, media_path, extractor, store, progress)
    found, found_stats = shelf.lookup(set(keys.values()))
    vectors = {uid: found[key] for uid, key in keys.items() if key in found}
    counters = {uid: found_stats[key] for uid, key in keys.items() if key in found}
    lookup_s = time.perf_counter() - started
    failures = {u: r for u, r in (known_failures or {}).items() if u in keys and u not in vectors}
    known = len(failures)
    todo = table[~table["utterance_id"].isin(vectors) & ~table["utterance_id"].isin(failures)]
    # One computation per distinct input (e.g. a transcript said many times): every utterance with
    # that input gets the same vector, bit for bit, whether it was computed now or taken from the store.
    sharing: dict[str, list[str]] = {}
    for uid in todo["utterance_id"]:
        sharing.setdefault(keys[uid], []).append(uid)
    distinct = todo[todo["utterance_id"].isin([uids[0] for uids in sharing.values()])]
    timing = {"lookup_s": lookup_s, "load_s": 0.0, "model_s": 0.0}
    who = ", ".join(filter(None, [extractor.name, shard.label()]))
    bar = tqdm(total=len(distinct), unit="utt", mininterval=1.0, desc=f"extract {extractor.modality} ({who})",
               disable=not progress or distinct.empty or not shard.main)
    for start in range(0, len(distinct), chunk_size):
        chunk = distinct.iloc[start:start + chunk_size]
        ids, feats = [], []
        for batch_ids, batch_feats, batch_failures in _batches(chunk, media_path, extractor, timing,
                                                               counters):
            ids += batch_ids
            feats += list(batch_feats)
            for uid, reason in batch_failures.items():
                failures.update((other, reason) for other in sharing[keys[uid]])
            bar.update(len(batch_ids) + len(batch_failures))
        finite = [i for i, f in enumerate(feats) if np.isfinite(f).all()]   # non-finite: never stored
        if finite:
            shelf.add([keys[ids[i]] for i in finite], np.stack([feats[i] for i in finite]),
                      [counters.get(ids[i], {}) for i in finite])
        for uid, feat in zip(ids, feats):
            for other in sharing[keys[uid]]:
                vectors[other], counters[other] = feat, counters.get(uid, {})
    bar.close()
    for uid in [u for u, v in vectors.items() if not np.isfinite(v).all()]:
        del vectors[uid]
        failures[uid] = "non-finite feature values"
    elapsed = time.perf_counter() - started
    return Collected(keys, vectors, failures, counters, len(table) - len(todo) - known,
                     len(distinct),
                     {**timing, "total_s": elapsed,
                      "utt_per_s": len(distinct) / elapsed if elapsed and len(distinct) else 0.0},
                     shelf.path)


def extract(table: pd.DataFrame, media_path, extractor: Extractor, out_dir: Path, *,
            params: dict, store: FeatureStore | None = None, chunk_size: int = 128,
            on_failure: str = "mask", max_failed_fraction: float = 0.1,
            progress: bool = True, labelled: bool = True, world: World = World()) -> dict | None:
    """The cache of ``table`` (:func:`collect`, then :func:`~extractors.cache.write_cache`); return
    the cache's meta plus this run's report (``reused``, ``computed``, ``timings``, ``store``), which
    is printed but not written into the cache: the cache's content depends only on the inputs, so
    DVC sees an unchanged output when the same features are assembled again.

    In a launch of several processes (``world``) each rank computes its shard into the store
    (:func:`collect` with ``shard``), then rank 0, once every rank has reported its failures,
    assembles the cache from the store: the same bytes a single process writes. Other ranks
    return None."""
    if on_failure not in FAILURE_POLICIES:
        raise ValueError(f"extract.{extractor.modality}.on_failure={on_failure!r}: "
                         f"use one of {', '.join(FAILURE_POLICIES)}")
    store = store or FeatureStore()
    kwargs = dict(params=params, store=store, chunk_size=chunk_size, progress=progress, labelled=labelled)
    known, shards = None, []
    if world.size > 1:
        part = collect(table, media_path, extractor, shard=world, **kwargs)
        shards = gather({"rank": world.rank, "failures": part.failures, "computed": part.computed,
                         "reused": part.reused, "utterances": len(part.keys), "timings": part.timings}, world)
        if not world.main:
            return None
        known = {u: r for s in shards for u, r in s["failures"].items()}
    got = collect(table, media_path, extractor, known_failures=known, **kwargs)
    meta = _report(table, got, extractor, params, on_failure)
    ids = table["utterance_id"].tolist()
    error = None
    if meta["n_failed"] > max_failed_fraction * len(table):
        reasons = pd.Series({f["utterance_id"]: f["reason"] for f in meta["failures"]}).value_counts()
        error = (f"extract.{extractor.modality}: {meta['n_failed']} of {len(table)} utterances failed "
                 f"(> max_failed_fraction={max_failed_fraction}); most common reasons:\n  "
                 + "\n  ".join(f"{n} x {r}" for r, n in reasons.head(5).items())
                 + f"\n  (all listed in {out_dir / 'meta.json'})")
        meta["error"] = error
    write_cache(out_dir, ids, [got.keys[u] for u in ids], got.vectors, extractor.dim,
                {**meta, "identity_hash": extractor.identity_hash()}, complete=error is None)
    if error:
        raise ExtractionError(error)
    report = {**meta, "reused": got.reused, "computed": got.computed, "timings": got.timings,
              "store": {"root": str(store.root), "shelf": got.shelf.name}}
    if shards:       # what the ranks did: the assembly itself only looked vectors up
        report["ranks"] = [{k: v for k, v in s.items() if k != "failures"} for s in shards]
        report["computed"] = sum(s["computed"] for s in shards) + got.computed
        report["reused"] = sum(s["reused"] for s in shards)
        elapsed = max(s["timings"]["total_s"] for s in shards) + got.timings["total_s"]
        report["timings"] = {**{k: sum(s["timings"][k] for s in shards) for k in ("load_s", "model_s")},
                             "lookup_s": got.timings["lookup_s"], "total_s": elapsed,
                             "utt_per_s": report["computed"] / elapsed if elapsed else 0.0}
    return report


def _batches(chunk: pd.DataFrame, media_path, extractor: Extractor, timing: dict,
             counters: dict[str, dict[str, int]]) -> Iterator[tuple[list[str], np.ndarray, dict[str, str]]]:
    """Yield (ids, features, failures) per batch; loading batch i+1 overlaps the model on batch i."""
    rows = sorted((r for _, r in chunk.iterrows()), key=extractor.order_key)  # stable
    batches = [rows[i:i + extractor.batch_size] for i in range(0, len(rows), extractor.batch_size)]

    def load(batch: list[pd.Series]) -> tuple[list[str], list[Any], dict[str, str], float]:
        t0 = time.perf_counter()
        ids, inputs, failed = [], [], {}
        for row in batch:
            uid = row["utterance_id"]
            try:
                loaded = extractor.load(row, media_path)
            except UtteranceFailure as exc:
                failed[uid] = str(exc)
                continue
            inputs.append(loaded)
            ids.append(uid)
            counters[uid] = {c: v for c, v in extractor.load_stats(loaded).items() if v}
        return ids, inputs, failed, time.perf_counter() - t0

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, batches[0]) if batches else None
        for i in range(len(batches)):
            ids, inputs, failed, load_s = pending.result()
            if i + 1 < len(batches):
                pending = pool.submit(load, batches[i + 1])
            timing["load_s"] += load_s
            t0 = time.perf_counter()
            feats = extractor.forward(inputs) if inputs else np.zeros((0, extractor.dim), np.float32)
            timing["model_s"] += time.perf_counter() - t0
            yield ids, feats, failed


def _report(table: pd.DataFrame, got: Collected, extractor: Extractor, params: dict,
            on_failure: str) -> dict:
    """Counts, failures (non-finite rows among them), constant dimensions and the load counters
    (non-zero ones, per utterance with features)."""
    ids = table["utterance_id"].tolist()
    clean = got.vectors
    ok = np.stack([clean[u] for u in ids if u in clean]) if clean else np.zeros((0, extractor.dim))
    constant = np.flatnonzero(ok.std(axis=0) == 0).tolist() if len(ok) > 1 else []
    per_counter: dict[str, dict[str, int]] = {}
    for uid in ids:
        for counter, value in got.counters.get(uid, {}).items() if uid in clean else ():
            per_counter.setdefault(counter, {})[uid] = value
    split_of = dict(zip(table["utterance_id"], table["split"])) if "split" in table else {}
    return {
        "modality": extractor.modality, "extractor": extractor.name, "params": params,
        "identity": extractor.full_identity(), "on_failure": on_failure,
        "n_utterances": len(ids), "n_ok": len(clean), "n_failed": len(ids) - len(clean),
        "failures": [{"utterance_id": u, "reason": got.failures.get(u, "not extracted")}
                     for u in ids if u not in clean],
        "constant_dims": {"count": len(constant), "first": constant[:50]},
        "load_stats": {counter: {"total": sum(per.values()), "utterances": len(per),
                                 "per_split": _per_split(per, split_of), "per_utterance": per}
                       for counter, per in sorted(per_counter.items())},
    }


def _per_split(per_utterance: dict[str, int], split_of: dict[str, str]) -> dict[str, int]:
    """A load counter's total per split (e.g. face-detection fallbacks in train / dev / test)."""
    out: dict[str, int] = {}
    for uid, value in per_utterance.items():
        split = split_of.get(uid, "")
        out[split] = out.get(split, 0) + int(value)
    return out
