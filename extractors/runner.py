"""Running an extractor over a manifest into a feature cache.

Media for the next batch are decoded in a background thread while the model runs on the current
one. Results are written chunk by chunk (see :mod:`extractors.cache`), so an interrupted run
resumes. Per-utterance failures are recorded with their reason; the policy (``on_failure``) and
the tolerated failure fraction are params.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from extractors.base import Extractor, UtteranceFailure
from extractors.cache import CacheWriter

# mask: the utterance keeps a zero vector and mask=False (the model treats the modality as absent)
# drop: same storage; consumers drop masked utterances from training (evaluation still sees them)
FAILURE_POLICIES = ("mask", "drop")


class ExtractionError(RuntimeError):
    """Too many utterances failed; the message lists the reasons."""


def extract(table: pd.DataFrame, media_path, extractor: Extractor, out_dir: Path, *,
            params: dict, chunk_size: int = 128, on_failure: str = "mask",
            max_failed_fraction: float = 0.1, progress: bool = True) -> dict:
    """Extract features for every manifest row not already cached; return the cache's meta."""
    if on_failure not in FAILURE_POLICIES:
        raise ValueError(f"extract.{extractor.modality}.on_failure={on_failure!r}: "
                         f"use one of {', '.join(FAILURE_POLICIES)}")
    started = time.perf_counter()
    writer = CacheWriter(out_dir, extractor.identity_hash(), extractor.dim)
    keys = {row["utterance_id"]: extractor.input_key(row, media_path) for _, row in table.iterrows()}
    vectors = writer.reusable(keys)
    todo = table[~table["utterance_id"].isin(vectors)]
    failures: dict[str, str] = {}
    stats: dict[str, dict[str, int]] = {}    # counter -> utterance id -> value (non-zero only)
    timing = {"load_s": 0.0, "model_s": 0.0}
    bar = tqdm(total=len(todo), unit="utt", desc=f"extract {extractor.modality} ({extractor.name})",
               disable=not progress, mininterval=1.0)
    for start in range(0, len(todo), chunk_size):
        chunk = todo.iloc[start:start + chunk_size]
        ids, feats = [], []
        for batch_ids, batch_feats, batch_failures in _batches(chunk, media_path, extractor, timing,
                                                               stats):
            ids += batch_ids
            feats += list(batch_feats)
            failures.update(batch_failures)
            bar.update(len(batch_ids) + len(batch_failures))
        if ids:
            writer.write_chunk(ids, [keys[u] for u in ids], np.stack(feats))
            vectors.update(zip(ids, feats))
    bar.close()
    elapsed = time.perf_counter() - started
    meta = _report(table, vectors, failures, extractor, params, on_failure, len(table) - len(todo),
                   writer.discarded, {**timing, "total_s": elapsed,
                                      "utt_per_s": len(todo) / elapsed if elapsed else 0.0})
    # Counters cover the utterances computed in this run (reused ones were counted when computed).
    meta["load_stats"] = {counter: {"total": sum(per.values()), "utterances": len(per),
                                    "per_utterance": per} for counter, per in stats.items()}
    ids = table["utterance_id"].tolist()
    writer.finalize(ids, [keys[u] for u in ids], meta.pop("_clean_vectors"), meta)
    if meta["n_failed"] > max_failed_fraction * len(table):
        reasons = pd.Series(failures).value_counts().head(5)
        raise ExtractionError(
            f"extract.{extractor.modality}: {meta['n_failed']} of {len(table)} utterances failed "
            f"(> max_failed_fraction={max_failed_fraction}); most common reasons:\n  "
            + "\n  ".join(f"{n} x {r}" for r, n in reasons.items())
            + f"\n  (all listed in {out_dir / 'meta.json'})")
    return meta


def _batches(chunk: pd.DataFrame, media_path, extractor: Extractor, timing: dict,
             stats: dict[str, dict[str, int]]) -> Iterator[tuple[list[str], np.ndarray, dict[str, str]]]:
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
            for counter, value in extractor.load_stats(loaded).items():
                if value:
                    stats.setdefault(counter, {})[uid] = value
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


def _report(table: pd.DataFrame, vectors: dict[str, np.ndarray], failures: dict[str, str],
            extractor: Extractor, params: dict, on_failure: str, reused: int, discarded: int,
            timings: dict) -> dict:
    """Counts, failures, non-finite rows (masked and listed) and constant dimensions."""
    ids = table["utterance_id"].tolist()
    clean = {}
    for uid in ids:
        if uid in vectors:
            if np.isfinite(vectors[uid]).all():
                clean[uid] = vectors[uid]
            else:
                failures[uid] = "non-finite feature values"
    ok = np.stack([clean[u] for u in ids if u in clean]) if clean else np.zeros((0, extractor.dim))
    constant = np.flatnonzero(ok.std(axis=0) == 0).tolist() if len(ok) > 1 else []
    return {
        "_clean_vectors": clean,
        "modality": extractor.modality, "extractor": extractor.name, "params": params,
        "identity": {**extractor.identity(), "code_sha256": extractor.code_digest()},
        "on_failure": on_failure,
        "n_utterances": len(ids), "n_ok": len(clean), "n_failed": len(ids) - len(clean),
        "reused": reused, "discarded_stale": discarded,
        "failures": [{"utterance_id": u, "reason": failures.get(u, "not extracted")}
                     for u in ids if u not in clean],
        "constant_dims": {"count": len(constant), "first": constant[:50]},
        "timings": timings,
    }
