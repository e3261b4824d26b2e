"""Feature store: every vector ever extracted, shared by all corpora, found again by content.

A vector is filed under its extractor's identity hash (model, weights, params, code; see
:meth:`extractors.base.Extractor.identity_hash`) and the fingerprint of the input it was computed
from (the text, or the media file's content digest + span + face side; see
:meth:`~extractors.base.Extractor.input_key`). Returning to an earlier extractor config or corpus
therefore costs a lookup, whatever the route back (hand edit, ``dvc exp run -S``, ``dvc exp apply``,
another clone, a queued experiment).

Layout under the root (:func:`default_root`: ``$AMBDSGDN_FEATURE_STORE``, else
``~/.cache/ambdsgdn-erc/features``):

- ``<modality>/<extractor>-<identity hash>/identity.json``  what the shelf holds (name, params,
  identity, dim), written once
- ``<modality>/<extractor>-<identity hash>/<unique>.npz``    ``keys`` (input fingerprints),
  ``features`` (float32, one row per key) and ``stats`` (per key, the extractor's load counters as
  JSON, e.g. face-detection fallbacks), each written atomically (tmp + rename) as extraction
  proceeds: a killed run loses at most the chunk in flight, and a rerun continues from the rest
- ``digests.sqlite``  content digests of media files, memoized by (path, size, mtime, inode), so a
  file is read once per change, and a restored or copied file (new mtime) is matched by content

Failures are never stored (they are retried). Nothing here is a DVC output: DVC tracks the
per-manifest cache of :mod:`extractors.cache` that each extract stage assembles from the store.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

STORE_ENV = "AMBDSGDN_FEATURE_STORE"
IDENTITY, DIGESTS = "identity.json", "digests.sqlite"


def default_root() -> Path:
    """``$AMBDSGDN_FEATURE_STORE``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)/ambdsgdn-erc/features."""
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "ambdsgdn-erc" / "features"


class Shelf:
    """The vectors of one extractor identity: lookup by input key, append chunk by chunk."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path, self.dim = path, dim

    def chunks(self) -> list[Path]:
        return sorted(self.path.glob("*.npz"))

    def lookup(self, wanted: set[str]) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        """(key -> vector, key -> load counters) for every key of ``wanted`` on the shelf."""
        found: dict[str, np.ndarray] = {}
        stats: dict[str, dict] = {}
        for path in self.chunks():
            if len(found) == len(wanted):
                break
            try:
                with np.load(path) as chunk:   # an npz reads each array on access: keys first
                    keys = chunk["keys"].tolist()
                    rows = [i for i, k in enumerate(keys) if k in wanted and k not in found]
                    if not rows:
                        continue
                    features = chunk["features"]
                    counters = (chunk["stats"].tolist() if "stats" in chunk.files
                                else ["{}"] * len(keys))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                log.warning("feature store: skipping unreadable chunk %s (%s)", path, exc)
                continue
            if features.shape != (len(keys), self.dim) or len(counters) != len(keys):
                log.warning("feature store: skipping chunk %s: shape %s, expected (%d, %d)",
                            path, features.shape, len(keys), self.dim)
                continue
            for i in rows:
                found[keys[i]] = np.array(features[i])
                stats[keys[i]] = json.loads(counters[i])
        return found, stats

    def add(self, keys: list[str], features: np.ndarray, stats: list[dict] | None = None) -> Path:
        """File one chunk atomically under a name no concurrent writer can take."""
        features = np.asarray(features, np.float32).reshape(len(keys), self.dim)
        counters = [json.dumps(s or {}, sort_keys=True) for s in (stats or [{}] * len(keys))]
        # Sorted names follow creation time: where two runs filed the same key concurrently, every
        # later lookup takes the first one, so a key always maps to one vector.
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
        tmp = self.path / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=np.array(keys, dtype=str), features=features,
                     stats=np.array(counters, dtype=str))
        os.replace(tmp, self.path / name)
        return self.path / name

    def size(self) -> tuple[int, int]:
        """(vectors, bytes) on the shelf (vectors counted with repeats across chunks)."""
        vectors = nbytes = 0
        for path in self.chunks():
            nbytes += path.stat().st_size
            try:
                with np.load(path) as chunk:
                    vectors += len(chunk["keys"])
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                continue
        return vectors, nbytes


class FeatureStore:
    """The store root: shelves per (modality, extractor identity) and the file-digest memo."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self._db: sqlite3.Connection | None = None
        self._db_failed = False

    def shelf(self, modality: str, extractor: str, identity_hash: str, dim: int,
              description: dict) -> Shelf:
        """The shelf for one extractor identity, created (with its ``identity.json``) if new."""
        path = self.root / modality / f"{extractor}-{identity_hash}"
        path.mkdir(parents=True, exist_ok=True)
        if not (path / IDENTITY).is_file():
            tmp = path / f".{IDENTITY}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps({**description, "identity_hash": identity_hash, "dim": dim},
                                      indent=2, default=str) + "\n")
            os.replace(tmp, path / IDENTITY)
        return Shelf(path, dim)

    def shelves(self) -> list[tuple[Path, dict]]:
        """Every shelf with its ``identity.json``."""
        out = []
        for path in sorted(self.root.glob(f"*/*/{IDENTITY}")):
            try:
                out.append((path.parent, json.loads(path.read_text())))
            except (OSError, ValueError):
                out.append((path.parent, {}))
        return out

    def digest(self, path: Path) -> str:
        """sha256 of a file's content, memoized by (resolved path, size, mtime_ns, inode)."""
        path = Path(path).resolve()
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        db = self._digests()
        if db is not None:
            row = db.execute("SELECT sha256 FROM digests WHERE path=? AND size=? AND mtime_ns=? "
                             "AND inode=?", key).fetchone()
            if row:
                return row[0]
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        sha = h.hexdigest()
        if db is not None:
            try:
                with db:
                    db.execute("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?)", (*key, sha))
            except sqlite3.Error as exc:   # a memo, not a record: never worth failing a run
                log.debug("feature store: digest memo not written (%s)", exc)
        return sha

    def _digests(self) -> sqlite3.Connection | None:
        if self._db is None and not self._db_failed:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.root / DIGESTS, timeout=30, check_same_thread=False)
                with self._db:
                    self._db.execute("CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, "
                                     "size INTEGER, mtime_ns INTEGER, inode INTEGER, sha256 TEXT)")
            except sqlite3.Error as exc:   # e.g. a file system without locking: digest every time
                log.warning("feature store: no digest memo at %s (%s); files are re-read each run",
                            self.root / DIGESTS, exc)
                self._db, self._db_failed = None, True
        return self._db


def main(argv: list[str] | None = None) -> int:
    """``python -m extractors.store [--root DIR]``: one line per shelf (what it holds, its size)."""
    import argparse

    parser = argparse.ArgumentParser(description="List the feature store's shelves.")
    parser.add_argument("--root", type=Path, default=None, help=f"default: ${STORE_ENV} or "
                        "~/.cache/ambdsgdn-erc/features")
    store = FeatureStore(parser.parse_args(argv).root)
    shelves = store.shelves()
    print(f"feature store {store.root}: {len(shelves)} shelves")
    for path, info in shelves:
        vectors, nbytes = Shelf(path, int(info.get("dim", 0))).size()
        print(f"  {path.parent.name}/{path.name}: {vectors} vectors, {nbytes / 2**20:.1f} MB, "
              f"dim {info.get('dim')}, params {json.dumps(info.get('params', {}), sort_keys=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
