"""Stage ``demo``: synthesize the embedded demo corpus in a real release layout.

    python -m pipeline.demo [--params params.yaml] [--out data/demo]

Reads the ``demo`` section of params.yaml (``layout``: iemocap | meld, ``seed``, ``story``,
``iemocap``, ``meld``); see :mod:`pipeline.democorpus.story` for the generative story.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipeline.democorpus import generate
from pipeline.params import DEFAULT_PARAMS, load_section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS)
    parser.add_argument("--out", type=Path, default=Path("data/demo"))
    args = parser.parse_args(argv)
    try:
        params = load_section("demo", args.params)
        started = time.perf_counter()
        root = generate(params.get("layout", "iemocap"), args.out, int(params.get("seed", 0)),
                        params.get("story"), params.get("iemocap"), params.get("meld"))
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    files = [p for p in root.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files) / 1e6
    print(f"demo corpus ({params.get('layout', 'iemocap')} layout) -> {root}: {len(files)} files, "
          f"{size:.1f} MB in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
