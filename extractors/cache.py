"""Feature caches: one directory per (corpus, modality), resumable and atomic.

Layout of ``data/features/<modality>/``:

- ``features.npy``  float32 ``(n_utterances, dim)``, rows in manifest order (zeros where masked)
- ``mask.npy``      bool ``(n_utterances,)``: True where the utterance has features
- ``ids.txt``       the manifest's utterance ids, one per line (row order of the matrix)
- ``keys.txt``      per row, the fingerprint of the extractor's input (text / media file + span)
- ``meta.json``     extractor name/params/identity, dim, counts, timings, failures, reports;
                    ``"complete": true`` is written last, so a cache without it is never used
- ``chunks/``       work in progress: ``<n>.npz`` files written atomically (tmp + rename) while
                    extracting; a killed run loses at most the chunk in flight and a rerun
                    continues from them. Removed once the cache is complete.

Results are reused only under the same extractor identity hash and for the same utterance id with
the same input fingerprint; anything else is recomputed.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FEATURES, MASK, IDS, KEYS, META, CHUNKS = ("features.npy", "mask.npy", "ids.txt", "keys.txt",
                                           "meta.json", "chunks")


class CacheError(ValueError):
    """Missing, incomplete, stale or mismatched feature cache; the message says which and why."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)


class CacheWriter:
    """Collects results chunk by chunk under one identity; reuses what an earlier run left."""

    def __init__(self, out_dir: Path, identity_hash: str, dim: int) -> None:
        self.dir, self.identity_hash, self.dim = out_dir, identity_hash, dim
        self.chunks = out_dir / CHUNKS
        self.chunks.mkdir(parents=True, exist_ok=True)
        self.discarded = 0
        self._mark_incomplete()

    def reusable(self, wanted: dict[str, str]) -> dict[str, np.ndarray]:
        """id -> vector computed earlier under this identity for the same input key ``wanted[id]``.

        Failures are not reused (they are retried); stale entries are counted in ``discarded``.
        """
        done: dict[str, np.ndarray] = {}

        def take(ids, keys, rows) -> None:
            for uid, key, row in zip(ids, keys, rows):
                if wanted.get(uid) == key:
                    done[uid] = np.array(row)
                else:
                    self.discarded += 1

        meta = _read_meta(self.dir)
        if meta and (self.dir / FEATURES).exists() and (self.dir / KEYS).exists():
            ids = (self.dir / IDS).read_text(encoding="utf-8").splitlines()
            if meta.get("identity_hash") == self.identity_hash:
                keys = (self.dir / KEYS).read_text(encoding="utf-8").splitlines()
                feats, mask = np.load(self.dir / FEATURES, mmap_mode="r"), np.load(self.dir / MASK)
                keep = np.flatnonzero(mask)
                take([ids[i] for i in keep], [keys[i] for i in keep], (feats[i] for i in keep))
            else:
                self.discarded += int(meta.get("n_ok", 0))
        for path in sorted(self.chunks.glob("*.npz")):
            with np.load(path) as chunk:  # written atomically: never torn
                same_identity = str(chunk["identity_hash"]) == self.identity_hash
                if same_identity:
                    take(chunk["ids"].tolist(), chunk["keys"].tolist(), chunk["features"])
                else:
                    self.discarded += len(chunk["ids"])
            if not same_identity:
                path.unlink()
        return done

    def write_chunk(self, ids: list[str], keys: list[str], features: np.ndarray) -> None:
        index = len(list(self.chunks.glob("*.npz")))
        while (self.chunks / f"{index:06d}.npz").exists():
            index += 1
        tmp = self.chunks / f".{index:06d}.npz.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, ids=np.array(ids, dtype=str), keys=np.array(keys, dtype=str),
                     identity_hash=np.array(self.identity_hash),
                     features=features.astype(np.float32).reshape(len(ids), self.dim))
        os.replace(tmp, self.chunks / f"{index:06d}.npz")

    def finalize(self, ids: list[str], keys: list[str], vectors: dict[str, np.ndarray],
                 meta: dict) -> None:
        """Write the manifest-ordered matrix, mask and ids, then meta (complete) last."""
        matrix = np.zeros((len(ids), self.dim), np.float32)
        mask = np.zeros(len(ids), bool)
        for i, uid in enumerate(ids):
            if uid in vectors:
                matrix[i], mask[i] = vectors[uid], True
        atomic_save_npy(self.dir / FEATURES, matrix)
        atomic_save_npy(self.dir / MASK, mask)
        atomic_write_bytes(self.dir / IDS, ("\n".join(ids) + "\n").encode("utf-8"))
        atomic_write_bytes(self.dir / KEYS, ("\n".join(keys) + "\n").encode("utf-8"))
        meta = {**meta, "identity_hash": self.identity_hash, "dim": self.dim, "complete": True}
        atomic_write_bytes(self.dir / META, (json.dumps(meta, indent=2) + "\n").encode())
        shutil.rmtree(self.chunks, ignore_errors=True)

    def _mark_incomplete(self) -> None:
        meta = _read_meta(self.dir)
        if meta and meta.get("complete"):
            meta["complete"] = False
            atomic_write_bytes(self.dir / META, (json.dumps(meta, indent=2) + "\n").encode())


@dataclass
class Features:
    matrix: np.ndarray   # (n_utterances, dim) float32, manifest order
    mask: np.ndarray     # (n_utterances,) bool
    meta: dict

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])


def read_features(out_dir: Path | str, manifest_ids: list[str], name: str | None = None,
                  params: dict | None = None) -> Features:
    """Load a complete cache, refusing one that is incomplete, stale or mismatched.

    ``name``/``params``: the extractor the caller asks for (e.g. from params.yaml); a cache built
    by another extractor or other params is refused. Rows must match ``manifest_ids`` exactly.
    """
    out_dir = Path(out_dir)
    meta = _read_meta(out_dir)
    where = f"feature cache {out_dir}"
    if meta is None:
        raise CacheError(f"{where}: no cache here (run `dvc repro` for the extract stage)")
    if not meta.get("complete"):
        raise CacheError(f"{where}: incomplete (an interrupted or running extraction); "
                         "rerun the extract stage, it resumes where it stopped")
    if name is not None and meta.get("extractor") != name:
        raise CacheError(f"{where}: stale: built by extractor {meta.get('extractor')!r}, "
                         f"requested {name!r}; rerun the extract stage")
    if params is not None and meta.get("params") != params:
        changed = sorted(k for k in set(params) | set(meta.get("params", {}))
                         if params.get(k) != meta.get("params", {}).get(k))
        raise CacheError(f"{where}: stale: built with other extractor params "
                         f"({', '.join(changed)}); rerun the extract stage")
    ids = (out_dir / IDS).read_text(encoding="utf-8").splitlines()
    if ids != list(manifest_ids):
        extra, missing = len(set(ids) - set(manifest_ids)), len(set(manifest_ids) - set(ids))
        raise CacheError(f"{where}: stale: built for another manifest ({len(ids)} rows, "
                         f"{missing} manifest utterances absent, {extra} unknown, or another "
                         "order); rerun the extract stage")
    matrix, mask = np.load(out_dir / FEATURES), np.load(out_dir / MASK)
    if matrix.shape != (len(ids), meta["dim"]) or mask.shape != (len(ids),):
        raise CacheError(f"{where}: corrupt: features {matrix.shape}, mask {mask.shape}, "
                         f"{len(ids)} ids, dim {meta['dim']}")
    return Features(matrix, mask, meta)


def _read_meta(out_dir: Path) -> dict | None:
    path = out_dir / META
    return json.loads(path.read_text()) if path.is_file() else None
