"""Stage ``report``: metrics of evaluate / baseline stages -> a Markdown results table.

    python -m pipeline.report METRICS.json|DIR [...] --out results.md [--title TEXT] [--command TEXT]
        [--timings]

One row per metrics file (its stem names the row; the numbers are read from its
``.details.json``; a folder stands for every metrics file in it, grouped by feature set, then
diff, gat, none, ar-iigcn, logreg): test wa-F1 and wa-ACC mean +- sample std (ddof = 1) over seeds, macro F1,
per-class F1, the selected epochs (or C for the logistic regression), seconds per epoch and the
number of seeds n. ``--command`` is printed under the table as the command that reproduces it.
Seconds come from the ``*.timings.json`` beside each file only with ``--timings`` (else "—"): they
are measurements, not results, and a DVC stage's table must be the same bytes on a rerun.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from pipeline.cli import stage_main
from pipeline.lib.metrics import details_path, format_stat, selection_summary
from pipeline.lib.timings import read_timings


def row(name: str, details: dict) -> dict[str, str]:
    """The table cells of one metrics file (from its details)."""
    selection, seconds, seeds = selection_summary(details)
    per_class = " ".join(f"{label} {100 * v['f1']:.1f}" for label, v in details["per_class"].items())
    pm = partial(format_stat, with_n=False)
    return {"run": name, "test wa-F1": pm(details["test_wa_f1"]), "test wa-ACC": pm(details["test_wa_acc"]),
            "macro-F1": pm(details["test_macro_f1"]), "per-class F1": per_class,
            "selected on dev": selection, "s/epoch": seconds, "seeds": seeds}


VARIANT_ORDER = {"diff": 0, "gat": 1, "none": 2, "ar-iigcn": 3, "logreg": 4}


def metrics_files(paths: Sequence[Path]) -> list[Path]:
    """``paths`` with each folder replaced by its metrics files (``<name>.json`` beside a
    ``<name>.details.json``), ordered by feature set (``<features>_<variant>``), then variant."""
    out = []
    for path in map(Path, paths):
        if not path.is_dir():
            out.append(path)
            continue
        found = [p for p in path.glob("*.json")
                 if not p.name.endswith(".details.json") and details_path(p).is_file()]
        out += sorted(found, key=lambda p: (p.stem.rpartition("_")[0],
                                            VARIANT_ORDER.get(p.stem.rpartition("_")[2], 9), p.stem))
    return out


def table(paths: Sequence[Path], title: str = "", command: str = "", timings: bool = False) -> str:
    """A Markdown table with one row per metrics file (folders expanded: :func:`metrics_files`);
    ``timings``: seconds from the untracked timings files (not reproducible)."""
    paths = metrics_files(paths)
    if not paths:
        raise ValueError("no metrics files given")
    rows = []
    for path in paths:
        details = details_path(path)
        if not details.is_file():
            raise FileNotFoundError(f"{details}: details of {path} not found (written by the "
                                    "evaluate / baseline stage beside it)")
        metrics = {**json.loads(details.read_text()), **(read_timings(path) if timings else {})}
        try:
            rows.append(row(Path(path).stem, metrics))
        except KeyError as exc:
            raise ValueError(f"{details}: not an evaluate/baseline details file (no {exc})") from None
    header = list(rows[0])
    lines = [f"### {title}", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r[h] for h in header) + " |" for r in rows]
    if command:
        lines += ["", f"Reproduce: `{command}`"]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("metrics", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="")
    parser.add_argument("--command", default="")
    parser.add_argument("--timings", action="store_true",
                        help="fill the seconds column from the *.timings.json beside each file "
                             "(not reproducible: leave it off in DVC stages)")


def run_cli(args: argparse.Namespace) -> None:
    text = table(args.metrics, args.title, args.command, timings=args.timings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text, end="")


main = stage_main("report", __doc__, add_arguments, run_cli, params=False)

if __name__ == "__main__":
    sys.exit(main())
