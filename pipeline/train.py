"""Stage ``train``: manifest + features -> data/model/checkpoints/seed_<s>/, data/model/curves/seed_<s>.csv.

    python -m pipeline.train [--params params.yaml] [--set key=value ...] [--manifest data/prepared]
        [--features data/features] [--out data/model]

Reads ``modalities``, ``device``, ``model`` (architecture) and ``train`` (optimisation, seeds,
modality dropout); feature caches are checked against ``extract.<modality>`` (a stale cache is
refused). Under ``torchrun --nproc_per_node N`` (the ``launcher`` param) the seeds train in
parallel, one process each (``train.parallel: seeds``), or each seed data-parallel over dialogues
(``dialogues``); docs/parallel.md. Params are
validated before any training starts, naming the key at fault.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config.params import load_params
from extractors import params_extensions
from model import distributed
from model.ambdsgdn import GRAPHS
from pipeline.cli import choices_epilog, stage_main
from pipeline.lib.runs import train_models

# The params sections this stage reads (validated; any other passes through unchecked).
SECTIONS = ("model", "train", "extract")


def run(params: dict, manifest_dir: Path, features_dir: Path, out_dir: Path) -> list[dict]:
    return train_models(params, manifest_dir, features_dir, out_dir)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = choices_epilog({"model.graph": GRAPHS.names()})
    parser.add_argument("--manifest", type=Path, default=Path("data/prepared"))
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("--out", type=Path, default=Path("data/model"))


def run_cli(args: argparse.Namespace) -> None:
    params = load_params(args.params, args.overrides, params_extensions(), SECTIONS)
    try:
        run(params, args.manifest, args.features, args.out)
    finally:
        distributed.finish()


main = stage_main("train", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
