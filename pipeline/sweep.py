"""Stage ``sweep``: a small grid of training recipes, each trained and scored on **dev only**.

    python -m pipeline.sweep --grid GRID.yaml [--params params.yaml] [--set key=value ...]
        [--manifest data/prepared] [--features data/features] --out sweeps/NAME.md

``GRID.yaml`` holds ``points``: name -> the dotted params keys it sets over the params file
(``{train.lr: 2.0e-4, model.dropout: 0.3}``; an empty mapping is the params file as it is). Each
point trains ``--seeds`` (default: the params' first seed) and records the dev wa-F1 of its
dev-selected epoch; the test split is never scored. Writes ``NAME.md`` (one row per point, the selected
one marked) and ``NAME.json`` (every number, and ``selected``: the point with the best mean dev
wa-F1, first in the grid on ties, with its settings), so a recipe can cite the point it uses.
There is no separate epochs axis: the learning rate is constant, so a shorter run is the same
run stopped earlier, which dev selection of the epoch already covers.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from config.params import load_params
from config.paths import file_problem
from config.schema import checked
from extractors import params_extensions
from pipeline.cli import stage_main
from pipeline.lib.experiments import with_settings
from pipeline.lib.runs import train_models
from pipeline.lib.timings import write_timings

# The params sections this stage reads (validated; any other passes through unchecked).
SECTIONS = ("model", "train", "extract")


def read_grid(path: Path) -> dict[str, dict]:
    problem = file_problem(path)
    if problem:
        raise ValueError(f"{path}: the grid file {problem}")
    grid = yaml.safe_load(Path(path).read_text()) or {}
    points = grid.get("points") if isinstance(grid, dict) else None
    if not isinstance(points, dict) or not points:
        raise ValueError(f"{path}: expected `points:` mapping names to {{dotted.key: value}}")
    for name, point in points.items():
        if not isinstance(point, dict):
            raise ValueError(f"{path}: point {name!r}: expected a mapping of dotted keys to values")
    return points


def with_point(params: dict, point: dict, seeds: list[int]) -> dict:
    """``params`` with the point's keys set (YAML values) and ``train.seeds``, checked by the schema."""
    return with_settings(params, point, seeds)


def run(params: dict, grid: Path, manifest_dir: Path, features_dir: Path, out: Path,
        seeds: list[int] | None = None) -> dict:
    points = read_grid(grid)
    seeds = seeds or [int(checked(params, SECTIONS).get("train", {}).get("seeds", [0])[0])]
    at_point = {name: with_point(params, point, seeds) for name, point in points.items()}   # before any work
    rows, seconds = [], {}
    for name, point_params in at_point.items():
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            runs = train_models(point_params, manifest_dir, features_dir, Path(scratch), log=lambda _: None,
                                reference_protocol=False)
        dev = [r["dev_wa_f1"] for r in runs]
        rows.append({"point": name, "settings": points[name], "dev_wa_f1": float(np.mean(dev)),
                     "dev_wa_f1_per_seed": dev, "selected_epochs": [r["selected_epoch"] for r in runs]})
        seconds[name] = {"epoch_s": float(np.mean([r["epoch_s"] for r in runs])),
                         "minutes": (time.perf_counter() - started) / 60}
        print(f"sweep {name}: dev wa-F1 {100 * rows[-1]['dev_wa_f1']:.2f} (epochs "
              f"{rows[-1]['selected_epochs']}) {points[name]}", flush=True)
    best = max(rows, key=lambda r: r["dev_wa_f1"])      # max keeps the first of equals
    result = {"grid": str(grid), "seeds": seeds, "selection": "best mean dev wa-F1 (test never scored)",
              "selected": {"point": best["point"], "settings": best["settings"]}, "points": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.write_text(table(result))
    write_timings(out.with_suffix(".json"), seconds)   # beside, untracked: not results
    print(f"sweep: selected {best['point']} (dev wa-F1 {100 * best['dev_wa_f1']:.2f}) -> {out}, "
          f"{out.with_suffix('.json')}")
    return result


def table(result: dict) -> str:
    lines = [f"Dev-only sweep ({result['grid']}, seeds {result['seeds']}): {result['selection']}.", "",
             "| point | settings | dev wa-F1 | selected epochs |", "|---|---|---|---|"]
    for r in result["points"]:
        mark = " **(selected)**" if r["point"] == result["selected"]["point"] else ""
        settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items()) or "(the recipe as is)"
        lines.append(f"| {r['point']}{mark} | {settings} | {100 * r['dev_wa_f1']:.2f} | "
                     f"{', '.join(map(str, r['selected_epochs']))} |")
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grid", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, default=Path("data/prepared"))
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("--out", type=Path, required=True, help="the Markdown table (.json beside it)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)


def run_cli(args: argparse.Namespace) -> None:
    params = load_params(args.params, args.overrides, params_extensions(), SECTIONS)
    run(params, args.grid, args.manifest, args.features, args.out, args.seeds)


main = stage_main("sweep", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
