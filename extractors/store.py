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

Failures and non-finite vectors are never stored (they are retried). The store heals itself: a
chunk that cannot be read or has the wrong shape is moved to ``<shelf>/quarantine/`` with the
reason beside it, and its vectors, like any stored row holding NaN or Inf, are recomputed by the
next extraction. ``python -m extractors.store`` lists, sizes, verifies and prunes it (:func:`main`).
A shelf's ``identity.json`` is touched whenever an extraction uses it: its mtime is the shelf's
last use. Nothing here is a DVC output: DVC tracks the per-manifest cache of
:mod:`extractors.cache` that each extract stage assembles from the store.
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

from config.paths import atomic_file

log = logging.getLogger(__name__)

STORE_ENV = "AMBDSGDN_FEATURE_STORE"
IDENTITY, DIGESTS, QUARANTINE = "identity.json", "digests.sqlite", "quarantine"
# What reading a damaged chunk raises (a truncated zip, a missing array, garbage bytes).
DAMAGED = (ValueError, KeyError, EOFError, zipfile.BadZipFile)


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
        """(key -> vector, key -> load counters) for every key of ``wanted`` on the shelf. A
        damaged chunk is quarantined (:meth:`quarantine`) and a row holding NaN or Inf skipped:
        what they held is not found, so it is computed again."""
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
            except DAMAGED as exc:
                self.quarantine(path, f"unreadable: {type(exc).__name__}: {exc}")
                continue
            except OSError as exc:             # e.g. permissions: not the file's fault, left alone
                log.warning("feature store: cannot read chunk %s (%s); its vectors are recomputed",
                            path, exc)
                continue
            problem = chunk_problem(features, len(keys), len(counters), self.dim)
            if problem:
                self.quarantine(path, problem)
                continue
            finite = np.isfinite(features[rows]).all(axis=1)
            if not finite.all():
                log.warning("feature store: %d vector(s) of %s hold NaN or Inf; recomputed",
                            (~finite).sum(), path)
            for i in np.asarray(rows)[finite]:
                found[keys[i]] = np.array(features[i])
                stats[keys[i]] = json.loads(counters[i])
        return found, stats

    def quarantine(self, path: Path, reason: str) -> Path | None:
        """Move a damaged chunk out of the shelf (``quarantine/<name>`` + ``<name>.reason.txt``),
        naming it in a warning; None if another process moved it first."""
        target_dir = self.path / QUARANTINE
        target_dir.mkdir(exist_ok=True)
        target = target_dir / path.name
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return None
        (target_dir / f"{path.name}.reason.txt").write_text(reason + "\n")
        log.warning("feature store: quarantined %s (%s) -> %s; its vectors are recomputed",
                    path, reason, target)
        return target

    def verify(self) -> list[tuple[Path, str]]:
        """Read every chunk whole; quarantine the damaged ones. Returns (chunk, problem) for each
        chunk quarantined or holding non-finite rows (those rows are skipped by lookups)."""
        out = []
        for path in self.chunks():
            try:
                with np.load(path) as chunk:
                    keys, features = chunk["keys"], np.asarray(chunk["features"])
                    counters = chunk["stats"] if "stats" in chunk.files else keys
            except DAMAGED as exc:
                reason = f"unreadable: {type(exc).__name__}: {exc}"
                self.quarantine(path, reason)
                out.append((path, f"quarantined: {reason}"))
                continue
            problem = chunk_problem(features, len(keys), len(counters), self.dim)
            if problem:
                self.quarantine(path, problem)
                out.append((path, f"quarantined: {problem}"))
            elif not np.isfinite(features).all():
                bad = int((~np.isfinite(features).all(axis=1)).sum())
                out.append((path, f"{bad} vector(s) hold NaN or Inf (skipped; recomputed when needed)"))
        return out

    def add(self, keys: list[str], features: np.ndarray, stats: list[dict] | None = None) -> Path:
        """File one chunk atomically under a name no concurrent writer can take."""
        features = np.asarray(features, np.float32).reshape(len(keys), self.dim)
        counters = [json.dumps(s or {}, sort_keys=True) for s in (stats or [{}] * len(keys))]
        # Sorted names follow creation time: where two runs filed the same key concurrently, every
        # later lookup takes the first one, so a key always maps to one vector.
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
        with atomic_file(self.path / name) as fh:    # a kill or a full disk leaves no chunk
            np.savez(fh, keys=np.array(keys, dtype=str), features=features,
                     stats=np.array(counters, dtype=str))
        return self.path / name

    def size(self) -> tuple[int, int]:
        """(vectors, bytes) on the shelf (vectors counted with repeats across chunks)."""
        vectors = nbytes = 0
        for path in self.chunks():
            nbytes += path.stat().st_size
            try:
                with np.load(path) as chunk:
                    vectors += len(chunk["keys"])
            except (OSError, *DAMAGED):
                continue
        return vectors, nbytes

    def last_used(self) -> float:
        """When an extraction last used the shelf (its ``identity.json``'s mtime), as a timestamp."""
        try:
            return (self.path / IDENTITY).stat().st_mtime
        except OSError:
            return 0.0


def chunk_problem(features: np.ndarray, keys: int, counters: int, dim: int) -> str | None:
    """What is wrong with a chunk's arrays, or None."""
    if features.ndim != 2 or features.shape != (keys, dim) or counters != keys:
        return f"shape {features.shape} with {keys} keys and {counters} counters, expected ({keys}, {dim})"
    return None


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
            with atomic_file(path / IDENTITY, "w") as fh:
                fh.write(json.dumps({**description, "identity_hash": identity_hash, "dim": dim},
                                    indent=2, default=str) + "\n")
        else:
            try:
                os.utime(path / IDENTITY)     # its mtime says when the shelf was last used (prune)
            except OSError:
                pass
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


def used_shelves(features_dirs: list[Path]) -> set[str]:
    """Shelf names (``<extractor>-<identity hash>``) of the feature caches under ``features_dirs``
    (each cache's ``meta.json``): what a manifest's extraction uses."""
    names = set()
    for root in features_dirs:
        for meta in Path(root).rglob("meta.json"):
            try:
                info = json.loads(meta.read_text())
            except (OSError, ValueError):
                continue
            if info.get("extractor") and info.get("identity_hash"):
                names.add(f"{info['extractor']}-{info['identity_hash']}")
    return names


def prune_plan(shelves: list[tuple[Shelf, int]], *, older_than_days: float | None = None,
               max_bytes: int | None = None, keep: set[str] = frozenset(), now: float | None = None
               ) -> list[Shelf]:
    """The shelves to remove: those unused for ``older_than_days``, then, least recently used
    first, as many as needed to bring the total under ``max_bytes``; never one named in ``keep``."""
    now = time.time() if now is None else now
    candidates = sorted(((s, n) for s, n in shelves if s.path.name not in keep),
                        key=lambda x: x[0].last_used())
    chosen = [s for s, _ in candidates
              if older_than_days is not None and now - s.last_used() > older_than_days * 86400]
    if max_bytes is not None:
        total = sum(n for s, n in shelves if s not in chosen)
        for s, n in candidates:
            if total <= max_bytes:
                break
            if s not in chosen:
                chosen.append(s)
                total -= n
    return chosen


def main(argv: list[str] | None = None) -> int:
    """``python -m extractors.store [--root DIR] [list | verify | prune ...]``: list the shelves
    (what each holds, its size, its last use), verify every chunk (damaged ones quarantined), or
    prune shelves by age, size budget, keeping those a project's feature caches use."""
    import argparse
    import shutil

    parser = argparse.ArgumentParser(description="List, verify and prune the feature store.")
    parser.add_argument("--root", type=Path, default=None, help=f"default: ${STORE_ENV} or "
                        "~/.cache/ambdsgdn-erc/features")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("list", help="one line per shelf (the default)")
    sub.add_parser("verify", help="read every chunk; quarantine damaged ones")
    prune = sub.add_parser("prune", help="remove shelves (whole extractor identities)")
    prune.add_argument("--older-than", type=float, metavar="DAYS", help="unused for more than DAYS")
    prune.add_argument("--max-size", type=float, metavar="GB", help="least recently used first, down to GB")
    prune.add_argument("--keep", type=Path, nargs="*", default=[], metavar="FEATURES_DIR",
                       help="never remove a shelf a cache under these folders uses (e.g. data/features)")
    prune.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    args = parser.parse_args(argv)
    store = FeatureStore(args.root)
    shelves = [(Shelf(path, int(info.get("dim", 0))), info) for path, info in store.shelves()]
    command = args.command or "list"
    if command == "prune" and args.older_than is None and args.max_size is None:
        parser.error("prune: give --older-than DAYS and/or --max-size GB")
    total = 0
    if command == "list":
        print(f"feature store {store.root}: {len(shelves)} shelves")
    for shelf, info in shelves:
        vectors, nbytes = shelf.size()
        total += nbytes
        if command == "list":
            used = time.strftime("%Y-%m-%d %H:%M", time.localtime(shelf.last_used()))
            name = f"{shelf.path.parent.name}/{shelf.path.name}"
            print(f"  {name}: {vectors} vectors, {nbytes / 2**20:.1f} MB, "
                  f"dim {info.get('dim')}, last used {used}, "
                  f"params {json.dumps(info.get('params', {}), sort_keys=True)}")
        elif command == "verify":
            problems = shelf.verify()
            for chunk, problem in problems:
                print(f"  {chunk}: {problem}")
            print(f"  {shelf.path.parent.name}/{shelf.path.name}: "
                  f"{'ok' if not problems else f'{len(problems)} chunk(s) with problems'}")
    if command == "list":
        print(f"total {total / 2**20:.1f} MB")
    if command == "prune":
        sized = [(shelf, shelf.size()[1]) for shelf, _ in shelves]
        keep = used_shelves(args.keep)
        budget = None if args.max_size is None else int(args.max_size * 2**30)
        chosen = prune_plan(sized, older_than_days=args.older_than, max_bytes=budget, keep=keep)
        freed = sum(n for s, n in sized if s in chosen)
        for shelf in chosen:
            verb = "would remove" if args.dry_run else "removing"
            print(f"  {verb} {shelf.path.parent.name}/{shelf.path.name}")
            if not args.dry_run:
                shutil.rmtree(shelf.path, ignore_errors=True)
        print(f"{len(chosen)} of {len(shelves)} shelves, {freed / 2**20:.1f} MB "
              f"{'would be freed' if args.dry_run else 'freed'}; {len(keep)} in use by "
              f"{', '.join(map(str, args.keep)) or 'no --keep folder'} kept")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
