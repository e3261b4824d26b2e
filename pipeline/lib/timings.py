"""Seconds a stage took: measurements, never results.

A DVC-tracked output must depend on the inputs alone, or the same command on the same inputs
changes ``dvc.lock`` and the git-tracked metrics (``make demo`` in a fresh clone would leave git
dirty). So timings are written beside the output they time, as ``<stem>.timings.json``, a file no
stage declares and git ignores (``*.timings.json``), and read back for reports where present.
"""
from __future__ import annotations

import json
from pathlib import Path

SUFFIX = ".timings.json"


def timings_path(output: Path) -> Path:
    """``metrics/x.json`` -> ``metrics/x.timings.json``; a folder ``data/model`` ->
    ``data/model.timings.json``."""
    output = Path(output)
    return output.with_name(output.name.removesuffix(".json") + SUFFIX)


def write_timings(output: Path, timings: dict) -> Path:
    path = timings_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(timings, indent=2, sort_keys=True, default=float) + "\n")
    return path


def read_timings(output: Path) -> dict:
    """The timings written for ``output``, {} where none were (another machine, a fresh clone)."""
    path = timings_path(output)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
