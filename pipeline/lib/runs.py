"""The train stage's output folder (``data/model``), one module for its writer and readers:

- ``checkpoints/seed_<s>.pt``: the dev-selected weights of one seed's run, a plain state dict
  read with ``torch.load(weights_only=True)`` (no pickled code can run);
- ``checkpoints/seed_<s>.json``: its metadata: model name and config, labels, corpus, selected
  epoch, dev score, seed, training dialogues, feature provenance, train config;
- ``curves/seed_<s>.csv``: one row per epoch (train loss, dev wa-F1, the reference protocol's test
  wa-F1, drop rates, seconds), what ``dvc plots`` and :func:`read_curves` read.
"""
from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import torch

from model.ambdsgdn import AMBDSGDN
from model.data import dialogues
from model.training import RunResult, predict, restore
from pipeline.lib.inputs import Inputs, feature_provenance
from pipeline.lib.metrics import classification_report


def save_run(out_dir: Path, result: RunResult, inputs: Inputs, train_config: dict) -> dict:
    """Write one seed's weights, metadata and curves; returns the metadata."""
    m = inputs.manifest
    meta = {**{k: v for k, v in result.checkpoint.items() if k != "state_dict"},
            "labels": m.labels, "corpus": m.corpus, "features": feature_provenance(inputs.metas),
            "train_config": train_config}
    (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out_dir / "curves").mkdir(exist_ok=True)
    path = checkpoint_path(out_dir, result.seed)
    torch.save(result.checkpoint["state_dict"], path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    with open(out_dir / "curves" / f"seed_{result.seed}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(result.curves[0]))
        writer.writeheader()
        writer.writerows(result.curves)
    return meta


def load_run(path: Path, device: str = "cpu") -> tuple[AMBDSGDN, dict]:
    """The model of one seed's checkpoint and its metadata; weights are read weights-only."""
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        raise ValueError(f"{meta_path}: missing (written by the train stage with {path.name})")
    try:
        meta = json.loads(meta_path.read_text())
        state = torch.load(path, map_location=device, weights_only=True)
    except (json.JSONDecodeError, RuntimeError, pickle.UnpicklingError, EOFError) as exc:
        raise ValueError(f"{path}: not a checkpoint the train stage wrote ({exc})") from None
    try:
        return restore(meta, state, device), meta
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def checkpoint_path(models_dir: Path, seed: int) -> Path:
    return models_dir / "checkpoints" / f"seed_{seed}.pt"


def checkpoint_paths(models_dir: Path) -> list[Path]:
    """Every seed's checkpoint, sorted; refuses a folder without any."""
    paths = sorted((models_dir / "checkpoints").glob("seed_*.pt"))
    if not paths:
        raise ValueError(f"{models_dir}/checkpoints: no seed_*.pt (run the train stage)")
    return paths


def read_curves(checkpoint: Path) -> list[dict]:
    """The curves written with ``checkpoint`` (rows of strings, one per epoch)."""
    curves = checkpoint.parent.parent / "curves" / f"{checkpoint.stem}.csv"
    if not curves.is_file():
        raise ValueError(f"{curves}: missing (written by the train stage with {checkpoint.name})")
    with open(curves) as fh:
        return list(csv.DictReader(fh))


def mean_epoch_seconds(curves: list[dict]) -> float:
    return float(np.mean([float(r["epoch_s"]) for r in curves]))


def score_checkpoint(path: Path, inputs: Inputs, device: str = "cpu") -> dict:
    """The dev-selected model of one seed scored on the test split: the classification report
    plus the seed, selected epoch, dev score, features and train dialogue count it recorded."""
    m = inputs.manifest
    model, checkpoint = load_run(path, device)
    if checkpoint["labels"] != m.labels:
        raise ValueError(f"{path}: trained on labels {checkpoint['labels']}, manifest has {m.labels}")
    test = dialogues(m.table, m.labels, "test")
    gold, pred = predict(model, test, {k: inputs.matrices[k] for k in model.modalities}, inputs.present,
                         16, device)
    return {**classification_report(gold, pred, m.labels),
            "selected_epoch": checkpoint["selected_epoch"], "seed": checkpoint["seed"],
            "dev_wa_f1": checkpoint["dev_wa_f1"], "features": checkpoint["features"],
            "train_dialogues": len(checkpoint.get("train_dialogues", []))}
