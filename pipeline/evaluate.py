"""Stage ``evaluate``: checkpoints -> metrics/<name>.json (+ .details.json, _confusion.png, _curves.png,
_per_class.csv).

    python -m pipeline.evaluate [--params params.yaml] [--set key=value ...] [--manifest data/prepared]
        [--features data/features] [--models data/model] [--out metrics] [--name ambdsgdn]

Scores every seed's dev-selected checkpoint on the test split and reports mean +- std over seeds.
``<name>.json`` holds the few numbers ``dvc metrics show`` and ``dvc exp show`` list (test wa-F1,
wa-ACC, macro F1, dev wa-F1, seeds); ``<name>.details.json`` holds everything else: per seed, per
class, confusion, counts, timings and provenance (corpus, labels, feature identities, device).
Also reports, clearly labelled, the score of the public reference's protocol (the best *test*
epoch over training), which is not a valid estimate because it selects on test.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from extractors.device import pick_device
from model.data import dialogues
from model.training import load_model, predict, scores
from pipeline import manifest
from pipeline.cli import stage_main
from pipeline.metrics import details_path, format_stat, seed_stat, write_metrics
from pipeline.params import load_params
from pipeline.train import load_inputs

REFERENCE_NOTE = ("best test wa-F1 over training epochs, as the public reference implementation "
                  "reports it; it selects on test and is NOT a valid estimate: use test_wa_f1")


def report(gold: np.ndarray, pred: np.ndarray, label_names: list[str]) -> dict:
    """wa-F1, wa-ACC, macro F1, per-class recall/precision/F1/support and the confusion matrix."""
    labels = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(gold, pred, labels=labels,
                                                                     zero_division=0)
    return {**scores(gold, pred),
            "macro_f1": float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
            "per_class": {name: {"recall": float(recall[i]), "f1": float(f1[i]),
                                 "precision": float(precision[i]), "support": int(support[i])}
                          for i, name in enumerate(label_names)},
            "confusion": confusion_matrix(gold, pred, labels=labels).tolist()}


def evaluate_checkpoint(path: Path, m, matrices, present, device: str = "cpu") -> dict:
    model, checkpoint = load_model(path, device)
    if checkpoint["labels"] != m.labels:
        raise ValueError(f"{path}: trained on labels {checkpoint['labels']}, manifest has {m.labels}")
    test = dialogues(m.table, m.labels, "test")
    gold, pred = predict(model, test, {k: matrices[k] for k in model.modalities}, present, 16, device)
    return {**report(gold, pred, m.labels),
            "selected_epoch": checkpoint["selected_epoch"], "seed": checkpoint["seed"],
            "dev_wa_f1": checkpoint["dev_wa_f1"], "features": checkpoint["features"],
            "train_dialogues": len(checkpoint.get("train_dialogues", []))}


def run(params: dict, manifest_dir: Path, features_dir: Path, models_dir: Path, out_dir: Path,
        name: str = "ambdsgdn") -> dict:
    device = str(pick_device(params.get("device", "auto")))   # before reading anything
    m, matrices, present, _ = load_inputs(params, manifest_dir, features_dir)
    paths = sorted((models_dir / "checkpoints").glob("seed_*.pt"))
    if not paths:
        raise ValueError(f"{models_dir}/checkpoints: no seed_*.pt (run the train stage)")
    runs = [evaluate_checkpoint(p, m, matrices, present, device) for p in paths]
    reference, epoch_s, curves_by_seed = [], [], {}
    for p, run_ in zip(paths, runs):
        curves = models_dir / "curves" / f"{p.stem}.csv"
        if not curves.is_file():
            raise ValueError(f"{curves}: missing (written by the train stage with {p.name})")
        with open(curves) as fh:
            rows = list(csv.DictReader(fh))
        curves_by_seed[run_["seed"]] = (rows, run_["selected_epoch"])
        reference.append(max(float(r["test_wa_f1_reference_protocol_only"]) for r in rows))
        epoch_s.append(float(np.mean([float(r["epoch_s"]) for r in rows])))
    first = runs[0]
    metrics = {
        "corpus": m.corpus, "labels": m.labels, "seeds": [r["seed"] for r in runs],
        "test_wa_f1": seed_stat([r["wa_f1"] for r in runs]),
        "test_wa_acc": seed_stat([r["wa_acc"] for r in runs]),
        "test_macro_f1": seed_stat([r["macro_f1"] for r in runs]),
        "per_class": {name: {k: float(np.mean([r["per_class"][name][k] for r in runs]))
                             for k in ("recall", "f1", "precision")}
                      | {"support": first["per_class"][name]["support"]} for name in m.labels},
        "confusion_first_seed": first["confusion"],
        "counts": {s: int((m.table["split"] == s).sum()) for s in manifest.SPLITS},
        "selected_epochs": [r["selected_epoch"] for r in runs],
        "dev_wa_f1": seed_stat([r["dev_wa_f1"] for r in runs]),
        "epoch_s": seed_stat(epoch_s),                 # train + dev/test scoring, per epoch
        "train_dialogues": first["train_dialogues"],   # how many reached the optimiser
        "modalities": list(matrices), "device": device,
        "features": first["features"],
        "reference_protocol": {"note": REFERENCE_NOTE, "test_wa_f1": seed_stat(reference)},
    }
    path = write_metrics(out_dir, name, metrics)
    with open(out_dir / f"{name}_per_class.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", "support", "recall", "precision", "f1"])
        for label, row in metrics["per_class"].items():
            writer.writerow([label, row["support"], f"{row['recall']:.4f}", f"{row['precision']:.4f}",
                             f"{row['f1']:.4f}"])
    plot_confusion(np.array(first["confusion"]), m.labels, out_dir / f"{name}_confusion.png",
                   f"{m.corpus} test, seed {first['seed']}")
    plot_curves(curves_by_seed, out_dir / f"{name}_curves.png", m.corpus)
    print(f"{m.corpus} test: wa-F1 {format_stat(metrics['test_wa_f1'])}, wa-ACC "
          f"{format_stat(metrics['test_wa_acc'])} -> {path}, {details_path(path)}, "
          f"{out_dir / (name + '_curves.png')}, "
          f"{out_dir / (name + '_confusion.png')}, {out_dir / (name + '_per_class.csv')}")
    return metrics


def plot_curves(curves: dict[int, tuple[list[dict], int]], path: Path, title: str) -> None:
    """Learning curves as a PNG (no CDN needed, unlike ``dvc plots show``): train loss and dev /
    test wa-F1 per epoch, one line per seed, the dev-selected epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (seed, (rows, selected)) in enumerate(sorted(curves.items())):
        color = f"C{i}"
        epochs = [int(r["epoch"]) for r in rows]
        loss_ax.plot(epochs, [float(r["train_loss"]) for r in rows], color=color, label=f"seed {seed}")
        f1_ax.plot(epochs, [100 * float(r["dev_wa_f1"]) for r in rows], color=color,
                   label=f"seed {seed} dev")
        f1_ax.plot(epochs, [100 * float(r["test_wa_f1_reference_protocol_only"]) for r in rows],
                   color=color, linestyle=":", label=f"seed {seed} test")
        f1_ax.axvline(selected, color=color, alpha=0.3)
    loss_ax.set(xlabel="epoch", ylabel="train loss (Eq. 33)", title=f"{title}: training loss")
    f1_ax.set(xlabel="epoch", ylabel="wa-F1 (%)",
              title=f"{title}: dev (solid) / test (dotted); line = selected on dev")
    loss_ax.legend(fontsize=8)
    f1_ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.8 * len(labels)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", type=Path, default=Path("data/prepared"))
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("--models", type=Path, default=Path("data/model"))
    parser.add_argument("--out", type=Path, default=Path("metrics"))
    parser.add_argument("--name", default="ambdsgdn", help="file stem (default: ambdsgdn)")


def run_cli(args: argparse.Namespace) -> None:
    run(load_params(args.params, args.overrides), args.manifest, args.features, args.models,
        args.out, args.name)


main = stage_main("evaluate", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
