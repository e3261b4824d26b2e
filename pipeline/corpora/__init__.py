"""Corpus adapters: each turns a corpus root into a validated :class:`~pipeline.lib.manifest.Manifest`.

Adding a corpus = one module with a ``load(root, options, **params)`` function + one
``ADAPTERS.register`` line here (its keyword params become ``prepare.<corpus>.<param>``, checked by
the params schema through :func:`params_extensions`).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from config.paths import file_problem
from config.prepare import PrepareOptions
from config.registry import Registry
from config.schema import Section, from_signature
from pipeline.lib.errorlog import ErrorLog
from pipeline.lib.manifest import Manifest, ManifestError

ADAPTERS: Registry[Callable[..., tuple[Manifest, ErrorLog]]] = Registry("prepare.corpus", "corpus",
                                                                         ManifestError)
ADAPTERS.register("iemocap", "pipeline.corpora.iemocap:load")
ADAPTERS.register("meld", "pipeline.corpora.meld:load")
ADAPTERS.register("csv", "pipeline.corpora.generic_csv:load")
ADAPTERS.register("pickled", "pipeline.corpora.pickled:load")


ADAPTER_INPUTS = ("root", "path", "options")   # what every adapter takes besides its own params


def adapter_params(name: str) -> Section:
    """An adapter's own params (``prepare.<name>.*``): its keyword params, types and defaults."""
    return from_signature(ADAPTERS.get(name), skip=ADAPTER_INPUTS)


def params_extensions() -> dict:
    """The ``prepare`` section's adapter keys for :func:`config.schema.validate` (each registered
    adapter's module imported now)."""
    return {"prepare": {name: adapter_params(name) for name in ADAPTERS.names()}}


def detect_corpus(root: str | Path) -> str:
    """The adapter for ``root`` (``prepare.corpus: auto``): a ``.csv`` file -> csv, a folder with
    MELD's ``*_sent_emo.csv`` -> meld, a folder with IEMOCAP's ``Session<n>/`` -> iemocap."""
    from pipeline.corpora import meld

    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".csv":
        return "csv"
    if root.is_file() and root.suffix.lower() in (".pkl", ".pickle"):
        return "pickled"
    if root.is_dir():
        if any((root / name).is_file() for name in meld.CSV_FILES.values()):
            return "meld"
        if any(p.is_dir() and p.name[len("Session"):].isdigit() for p in root.glob("Session*")):
            return "iemocap"
    problem = file_problem(root)
    what = ("does not exist" if not root.exists() else
            problem if problem and problem != "is a directory, not a file" else
            "is neither a .csv file, a released feature file (.pkl), a MELD.Raw folder "
            "(train_sent_emo.csv, ...) nor an IEMOCAP release folder (Session1/ ...)")
    raise ManifestError(f"prepare.corpus=auto: {root} {what}; check prepare.root, or name the "
                        f"adapter: prepare.corpus: {' | '.join(ADAPTERS.names())}")


def load_corpus(corpus: str, root: str | Path, options: PrepareOptions | None = None,
                **params) -> tuple[Manifest, ErrorLog]:
    """Read ``root`` with the adapter named ``corpus``; ``params`` are that adapter's own."""
    accepted = adapter_params(corpus)
    unknown = sorted(set(params) - set(accepted.keys))
    if unknown:
        raise ManifestError(f"prepare.{corpus}.{unknown[0]}: unknown parameter "
                            f"(accepted: {accepted.accepted()})")
    return ADAPTERS.get(corpus)(Path(root), options or PrepareOptions(), **params)
