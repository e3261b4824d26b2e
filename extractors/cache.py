"""Feature caches: one directory per (corpus, modality), the extract stage's DVC output.

Layout of ``data/features/<modality>/``:

- ``features.npy``  float32 ``(n_utterances, dim)``, rows in manifest order (zeros where absent)
- ``mask.npy``      bool ``(n_utterances,)``: True where the utterance has features (read as
  :attr:`Features.present`; the file keeps its name, so caches keep their bytes)
- ``ids.txt``       the manifest's utterance ids, one per line (row order of the matrix)
- ``keys.txt``      per row, the fingerprint of the extractor's input (text / media content + span)
- ``meta.json``     extractor name/params/identity, dim, counts, timings, failures, reports;
                    ``"complete": true`` is written last, so a cache without it is never used.
                    A modality the run does not use gets only ``{"unused": true, ...}``.

The cache is assembled from :mod:`extractors.store`, which keeps every vector ever computed (and
the work in progress of an interrupted run), so this directory is a plain DVC output that DVC may
delete, restore from its run-cache or check out from an old experiment.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config.paths import atomic_file

FEATURES, PRESENT, IDS, KEYS, META = "features.npy", "mask.npy", "ids.txt", "keys.txt", "meta.json"
LEGACY_CHUNKS = "chunks"   # work area of caches written before the feature store; removed


class CacheError(ValueError):
    """Missing, incomplete, stale or mismatched feature cache; the message says which and why."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path) as fh:
        fh.write(data)


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as fh:
        np.save(fh, array)


def clear(out_dir: Path) -> None:
    """Empty ``out_dir`` of a cache (meta first: a half-replaced cache is never read as complete)."""
    (out_dir / META).unlink(missing_ok=True)
    for name in (FEATURES, PRESENT, IDS, KEYS):
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / LEGACY_CHUNKS, ignore_errors=True)


def write_cache(out_dir: Path, ids: list[str], keys: list[str], vectors: dict[str, np.ndarray],
                dim: int, meta: dict, complete: bool = True) -> None:
    """Write the manifest-ordered matrix, presence, ids and keys, then ``meta.json`` last.

    ``complete=False`` (an extraction that failed its checks) keeps the record, failures listed,
    but the cache is refused by :func:`read_features` with ``meta["error"]``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    clear(out_dir)
    matrix = np.zeros((len(ids), dim), np.float32)
    present = np.zeros(len(ids), bool)
    for i, uid in enumerate(ids):
        if uid in vectors:
            matrix[i], present[i] = vectors[uid], True
    atomic_save_npy(out_dir / FEATURES, matrix)
    atomic_save_npy(out_dir / PRESENT, present)
    atomic_write_bytes(out_dir / IDS, ("\n".join(ids) + "\n").encode("utf-8"))
    atomic_write_bytes(out_dir / KEYS, ("\n".join(keys) + "\n").encode("utf-8"))
    _write_meta(out_dir, {**meta, "dim": dim, "complete": complete})


def write_unused(out_dir: Path, modality: str, modalities: list[str]) -> None:
    """The stage output of a modality the run does not use: a ``meta.json`` saying so, no work."""
    out_dir.mkdir(parents=True, exist_ok=True)
    clear(out_dir)
    _write_meta(out_dir, {"modality": modality, "unused": True, "modalities": list(modalities),
                          "complete": True})


def _write_meta(out_dir: Path, meta: dict) -> None:
    atomic_write_bytes(out_dir / META, (json.dumps(meta, indent=2) + "\n").encode())


@dataclass
class Features:
    matrix: np.ndarray   # (n_utterances, dim) float32, manifest order
    present: np.ndarray  # (n_utterances,) bool: the utterance has features
    meta: dict

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])


def read_features(out_dir: Path | str, manifest_ids: list[str], name: str | None = None,
                  params: dict | None = None, code_sha256: str | None = None) -> Features:
    """Load a complete cache, refusing one that is incomplete, stale or mismatched.

    ``name``/``params``/``code_sha256``: the extractor the caller asks for (e.g. from params.yaml,
    and the digest of its code today); a cache built by another extractor, other params or other
    extractor code is refused. Rows must match ``manifest_ids`` exactly.
    """
    out_dir = Path(out_dir)
    meta = _read_meta(out_dir)
    where = f"feature cache {out_dir}"
    if meta is None:
        raise CacheError(f"{where}: no cache here (run `dvc repro` for the extract stage)")
    if meta.get("unused"):
        raise CacheError(f"{where}: {meta.get('modality')} is not in modalities "
                         f"{meta.get('modalities')}, so it was not extracted; add it to "
                         "`modalities` in params.yaml and run `dvc repro`")
    if meta.get("error"):
        raise CacheError(f"{where}: the extraction failed: {meta['error']}")
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
    built_by = meta.get("identity", {}).get("code_sha256")
    if code_sha256 is not None and built_by != code_sha256:
        raise CacheError(f"{where}: stale: built by other extractor code (code_sha256 {built_by}, "
                         f"the code now: {code_sha256}); rerun the extract stage")
    ids = (out_dir / IDS).read_text(encoding="utf-8").splitlines()
    if ids != list(manifest_ids):
        extra, missing = len(set(ids) - set(manifest_ids)), len(set(manifest_ids) - set(ids))
        raise CacheError(f"{where}: stale: built for another manifest ({len(ids)} rows, "
                         f"{missing} manifest utterances absent, {extra} unknown, or another "
                         "order); rerun the extract stage")
    matrix, present = np.load(out_dir / FEATURES), np.load(out_dir / PRESENT)
    if matrix.shape != (len(ids), meta["dim"]) or present.shape != (len(ids),):
        raise CacheError(f"{where}: corrupt: features {matrix.shape}, presence {present.shape}, "
                         f"{len(ids)} ids, dim {meta['dim']}")
    return Features(matrix, present, meta)


def _read_meta(out_dir: Path) -> dict | None:
    path = out_dir / META
    return json.loads(path.read_text()) if path.is_file() else None
