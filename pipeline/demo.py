"""Stage ``demo``: synthesize the embedded demo corpus in a real release layout.

    python -m pipeline.demo [--params params.yaml] [--set key=value ...] [--out data/demo]

Reads the ``demo`` section of params.yaml (``layout``: iemocap | meld, ``seed``, ``story``,
``iemocap``, ``meld``); see :mod:`pipeline.democorpus.story` for the generative story.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from config.params import load_section
from pipeline.cli import choices_epilog, stage_main
from pipeline.democorpus import LAYOUTS, generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("data/demo"))
    parser.epilog = choices_epilog({"demo.layout": LAYOUTS.names()})


def run_cli(args: argparse.Namespace) -> None:
    params = load_section("demo", args.params, args.overrides)
    started = time.perf_counter()
    root = generate(params["layout"], args.out, params["seed"], params["story"], params["iemocap"],
                    params["meld"], log=lambda line: print(line, flush=True))
    files = [p for p in root.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files) / 1e6
    print(f"demo corpus ({params['layout']} layout) -> {root}: {len(files)} files, "
          f"{size:.1f} MB in {time.perf_counter() - started:.1f} s")


main = stage_main("demo", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
