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
import csv
import sys
from pathlib import Path

import numpy as np
import torch

from extractors import extractor_class, section_params
from extractors.cache import read_features
from extractors.device import pick_device
from model.ambdsgdn import MODALITIES, ModelConfig
from model.data import dialogues
from model.training import TrainConfig, train_one
from pipeline import manifest
from pipeline.cli import stage_main
from pipeline.params import load_params
from pipeline.schema import validate


def load_inputs(params: dict, manifest_dir: Path, features_dir: Path):
    """Manifest, per-modality feature matrices/masks (checked caches), feature metadata."""
    m = manifest.read(manifest_dir)
    ids = m.table["utterance_id"].tolist()
    matrices, present, metas = {}, {}, {}
    for modality in validate({"modalities": params.get("modalities", list(MODALITIES))})["modalities"]:
        section = params.get("extract", {}).get(modality) or {}
        name = section.get("name")
        code = extractor_class(name).code_digest() if name else None
        cache = read_features(features_dir / modality, ids, name, section_params(section), code)
        matrices[modality], present[modality], metas[modality] = cache.matrix, cache.mask, cache.meta
    return m, matrices, present, metas


def check_disjoint(splits: dict[str, list]) -> None:
    """No dialogue may sit in two splits (dev/test material must never reach training)."""
    seen: dict[str, str] = {}
    for split, items in splits.items():
        for d in items:
            if d.dialogue_id in seen:
                raise ValueError(f"dialogue {d.dialogue_id} is in both {seen[d.dialogue_id]} and {split}")
            seen[d.dialogue_id] = split


def run(params: dict, manifest_dir: Path, features_dir: Path, out_dir: Path) -> list[dict]:
    params = validate({**params, **{s: params.get(s) or {} for s in ("model", "train")}})
    model_params = dict(params["model"])
    train_params = dict(params["train"])
    seeds = [int(s) for s in train_params.pop("seeds", [0])]
    config = TrainConfig(**train_params, device=params["device"])
    pick_device(config.device)   # fails at once where the device is not there
    m, matrices, present, metas = load_inputs(params, manifest_dir, features_dir)
    model_config = ModelConfig(input_dims={k: v.shape[1] for k, v in matrices.items()},
                               num_classes=len(m.labels), **model_params)
    max_speakers = int(m.table["speaker_idx"].max()) + 1
    if max_speakers > model_config.max_speakers:
        raise ValueError(f"model.max_speakers={model_config.max_speakers}: a dialogue has "
                         f"{max_speakers} speakers")
    splits = {s: dialogues(m.table, m.labels, s) for s in manifest.SPLITS}
    empty = [s for s, d in splits.items() if not d]
    if empty:
        raise ValueError(f"the manifest has no {empty[0]} dialogues")
    check_disjoint(splits)
    # on_failure: drop -> utterances without features of a modality leave the training loss.
    trainable = np.ones(len(m.table), bool)
    for modality, meta in metas.items():
        if meta.get("on_failure") == "drop":
            trainable &= present[modality]
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = []
    for seed in seeds:
        result = train_one(seed, model_config, config, splits, matrices, present,
                           None if trainable.all() else trainable)
        checkpoint = {**result.checkpoint, "labels": m.labels, "corpus": m.corpus,
                      "features": {k: {"extractor": v["extractor"], "params": v["params"],
                                       "identity": v["identity"], "dim": v["dim"]}
                                   for k, v in metas.items()},
                      "train_config": vars(config)}
        (out_dir / "checkpoints").mkdir(exist_ok=True)
        (out_dir / "curves").mkdir(exist_ok=True)
        torch.save(checkpoint, out_dir / "checkpoints" / f"seed_{seed}.pt")
        with open(out_dir / "curves" / f"seed_{seed}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(result.curves[0]))
            writer.writeheader()
            writer.writerows(result.curves)
        summaries.append({"seed": seed, "selected_epoch": checkpoint["selected_epoch"],
                          "dev_wa_f1": checkpoint["dev_wa_f1"],
                          "epoch_s": float(np.mean([r["epoch_s"] for r in result.curves]))})
        print(f"seed {seed}: selected epoch {checkpoint['selected_epoch']} "
              f"(dev wa-F1 {checkpoint['dev_wa_f1']:.4f}) -> {out_dir / 'checkpoints' / f'seed_{seed}.pt'}")
    return summaries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", type=Path, default=Path("data/prepared"))
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("--out", type=Path, default=Path("data/model"))


def run_cli(args: argparse.Namespace) -> None:
    run(load_params(args.params, args.overrides), args.manifest, args.features, args.out)


main = stage_main("train", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
