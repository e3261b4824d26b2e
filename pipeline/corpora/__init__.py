"""Corpus adapters: each turns a corpus root into a validated :class:`~pipeline.manifest.Manifest`.

Adding a corpus = one module with a ``load(root, options, **params)`` function + one entry here.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from pipeline.corpora import generic_csv, iemocap, meld
from pipeline.corpora.common import PrepareOptions
from pipeline.errorlog import ErrorLog
from pipeline.manifest import Manifest, ManifestError

ADAPTERS: dict[str, Callable[..., tuple[Manifest, ErrorLog]]] = {
    "iemocap": iemocap.load,
    "meld": meld.load,
    "csv": generic_csv.load,
}


def load_corpus(corpus: str, root: str | Path, options: PrepareOptions | None = None,
                **params) -> tuple[Manifest, ErrorLog]:
    """Read ``root`` with the adapter named ``corpus``; ``params`` are that adapter's own."""
    if corpus not in ADAPTERS:
        raise ManifestError(f"prepare.corpus: unknown corpus {corpus!r} "
                            f"(expected one of {', '.join(ADAPTERS)})")
    adapter = ADAPTERS[corpus]
    accepted = [p for p in inspect.signature(adapter).parameters if p not in ("root", "path", "options")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ManifestError(f"prepare.{corpus}.{unknown[0]}: unknown parameter "
                            f"(accepted: {', '.join(accepted) or 'none'})")
    return adapter(Path(root), options or PrepareOptions(), **params)
