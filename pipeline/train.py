"""Stage ``train``: manifest + features -> data/model/checkpoints/seed_<s>.pt, data/model/curves/seed_<s>.csv.

    python -m pipeline.train [--params params.yaml] [--set key=value ...] [--manifest data/prepared]
        [--features data/features] [--out data/model]

Reads ``modalities``, ``device``, ``model`` (architecture) and ``train`` (optimisation, seeds,
modality dropout); feature caches are checked against ``extract.<modality>`` (a stale cache is
refused). Params are
validated before any training starts, naming the key at fault.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from model.ambdsgdn import GRAPHS, ModelConfig
from model.device import pick_device
from model.training import TrainConfig, train_one
from pipeline.cli import choices_epilog, stage_main
from pipeline.lib.inputs import load_inputs, split_dialogues, trainable_mask
from pipeline.lib.params import load_params
from pipeline.lib.runs import checkpoint_path, save_run
from pipeline.lib.schema import validate


def run(params: dict, manifest_dir: Path, features_dir: Path, out_dir: Path) -> list[dict]:
    params = validate({**params, **{s: params.get(s) or {} for s in ("model", "train")}})
    model_params = dict(params["model"])
    train_params = dict(params["train"])
    seeds = [int(s) for s in train_params.pop("seeds", [0])]
    config = TrainConfig(**train_params, device=params["device"])
    pick_device(config.device)   # fails at once where the device is not there
    inputs = load_inputs(params, manifest_dir, features_dir)
    m = inputs.manifest
    model_config = ModelConfig(input_dims={k: v.shape[1] for k, v in inputs.matrices.items()},
                               num_classes=len(m.labels), **model_params)
    max_speakers = int(m.table["speaker_idx"].max()) + 1
    if max_speakers > model_config.max_speakers:
        raise ValueError(f"model.max_speakers={model_config.max_speakers}: a dialogue has "
                         f"{max_speakers} speakers")
    splits = split_dialogues(m)
    trainable = trainable_mask(inputs)
    summaries = []
    for seed in seeds:
        result = train_one(seed, model_config, config, splits, inputs.matrices, inputs.present, trainable)
        checkpoint = save_run(out_dir, result, inputs, vars(config))
        summaries.append({"seed": seed, "selected_epoch": checkpoint["selected_epoch"],
                          "dev_wa_f1": checkpoint["dev_wa_f1"],
                          "epoch_s": float(np.mean([r["epoch_s"] for r in result.curves]))})
        print(f"seed {seed}: selected epoch {checkpoint['selected_epoch']} "
              f"(dev wa-F1 {checkpoint['dev_wa_f1']:.4f}) -> {checkpoint_path(out_dir, seed)}")
    return summaries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = choices_epilog({"model.graph": GRAPHS.names()})
    parser.add_argument("--manifest", type=Path, default=Path("data/prepared"))
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("--out", type=Path, default=Path("data/model"))


def run_cli(args: argparse.Namespace) -> None:
    run(load_params(args.params, args.overrides), args.manifest, args.features, args.out)


main = stage_main("train", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
