"""Metrics files of the evaluate and baseline stages: one module owns their names and content,
and builds both (:func:`build_details`).

- ``<name>.json``          the headline, what ``dvc metrics show`` / ``dvc exp show`` list:
  ``test.{wa_f1, wa_f1_std, wa_acc, wa_acc_std, macro_f1}``, ``dev.wa_f1``, ``seeds``
  (means over seeds; ``*_std`` the sample standard deviation, null for one seed)
- ``<name>.details.json``  everything else: the per-seed statistics (:func:`seed_stat`), per class,
  confusion, counts, timings and provenance (corpus, labels, modalities, feature identities, device)
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from config.paths import atomic_file
from model.scores import scores


def seed_stat(values: list[float]) -> dict:
    """Mean and spread over seeds: ``sample_std`` is the sample standard deviation (ddof = 1; null
    for a single seed, where it is undefined), ``n`` the number of seeds."""
    values = [float(v) for v in values]
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"mean": float(np.mean(values)), "sample_std": spread, "n": len(values), "per_seed": values}


def headline(details: dict) -> dict:
    """The metrics file proper: test/dev scores over seeds, nothing else (provenance and per-seed
    numbers stay in the details file, so ``dvc exp show`` fits a terminal)."""
    test = {}
    for key in ("wa_f1", "wa_acc", "macro_f1"):
        stat = details[f"test_{key}"]
        test[key] = round(stat["mean"], 6)
        if key != "macro_f1":
            test[f"{key}_std"] = None if stat["sample_std"] is None else round(stat["sample_std"], 6)
    return {"test": test, "dev": {"wa_f1": round(details["dev_wa_f1"]["mean"], 6)},
            "seeds": details["test_wa_f1"]["n"]}


def details_path(metrics_path: Path) -> Path:
    """``metrics/x.json`` -> ``metrics/x.details.json``."""
    return Path(metrics_path).with_suffix(".details.json")


def write_metrics(out_dir: Path, name: str, details: dict) -> Path:
    """``<name>.json`` (headline) and ``<name>.details.json`` (everything); returns the first."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    with atomic_file(details_path(path), "w") as fh:
        fh.write(json.dumps(details, indent=2) + "\n")
    with atomic_file(path, "w") as fh:              # the headline last: DVC's metric
        fh.write(json.dumps(headline(details), indent=2) + "\n")
    return path


def format_stat(stat: dict | None, *, with_n: bool = True) -> str:
    """``mean ± sample std (n = k)`` in percent (a single run has no spread), without ``(n = k)``
    when ``with_n`` is false; "—" where there is no score."""
    if not stat:
        return "—"
    text = f"{100 * stat['mean']:.2f}"
    if stat.get("sample_std") is not None:
        text += f" ± {100 * stat['sample_std']:.2f}"
    return f"{text} (n = {stat.get('n', 1)})" if with_n else text


def classification_report(gold: np.ndarray, pred: np.ndarray, label_names: list[str]) -> dict:
    """wa-F1, wa-ACC, macro F1, per-class recall/precision/F1/support and the confusion matrix.

    Macro F1 averages over the classes with test support (``macro_f1_classes``): a class absent
    from the test split has no recall to average (sklearn would count it as 0 where nothing
    predicts it, and not at all where something does). Classes without support, and those the
    model predicts all the same, are named (``no_test_support``, ``predicted_without_support``)."""
    labels = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(gold, pred, labels=labels,
                                                                     zero_division=0)
    present = [i for i in labels if support[i] > 0]
    macro = f1_score(gold, pred, labels=present, average="macro", zero_division=0) if present else 0.0
    return {**scores(gold, pred), "macro_f1": float(macro),
            "macro_f1_classes": [label_names[i] for i in present],
            "no_test_support": [label_names[i] for i in labels if not support[i]],
            "predicted_without_support": [label_names[i] for i in labels
                                          if not support[i] and bool(np.any(np.asarray(pred) == i))],
            "per_class": {name: {"recall": float(recall[i]), "f1": float(f1[i]),
                                 "precision": float(precision[i]), "support": int(support[i])}
                          for i, name in enumerate(label_names)},
            "confusion": confusion_matrix(gold, pred, labels=labels).tolist()}


def build_details(corpus: str, labels: list[str], runs: list[dict], counts: dict[str, int], *,
                  run_info: dict, selection: dict, provenance: dict) -> dict:
    """The details file of one evaluated configuration: test scores over ``runs`` (one
    :func:`classification_report` per seed, or one for a deterministic classifier), per class
    (mean over runs), the first run's confusion, split counts; ``run_info`` (which runs: seeds, the
    classifier) goes first, ``selection`` (how dev chose: epochs or C, dev wa-F1) and
    ``provenance`` (timings, modalities, features, device) after the scores."""
    first = runs[0]
    return {"corpus": corpus, "labels": labels, **run_info,
            "test_wa_f1": seed_stat([r["wa_f1"] for r in runs]),
            "test_wa_acc": seed_stat([r["wa_acc"] for r in runs]),
            "test_macro_f1": seed_stat([r["macro_f1"] for r in runs]),
            "macro_f1_classes": first["macro_f1_classes"], "no_test_support": first["no_test_support"],
            "predicted_without_support": sorted({c for r in runs for c in r["predicted_without_support"]},
                                                key=labels.index),
            "per_class": {name: {k: float(np.mean([r["per_class"][name][k] for r in runs]))
                                 for k in ("recall", "f1", "precision")}
                          | {"support": first["per_class"][name]["support"]} for name in labels},
            "confusion_first_seed": first["confusion"], "counts": counts,
            **selection, **provenance}


def selection_summary(details: dict) -> tuple[str, str, str]:
    """How dev chose, the seconds it cost and the seed count, as report cells: the graph model's
    selected epochs, seconds per epoch and n; the logistic regression's C, fit seconds and no seeds
    (it is deterministic)."""
    if "selected_C" in details:       # written by build_details for the baseline stage
        fit = f"{details['fit_s']:.1f} (fit)" if "fit_s" in details else "—"
        return f"C={details['selected_C']:g}", fit, "—"
    seconds = details.get("epoch_s")    # from the timings beside the details (older files: inside)
    return ("epochs " + ", ".join(str(e) for e in details["selected_epochs"]),
            f"{seconds['mean']:.2f}" if seconds else "—", str(details["test_wa_f1"]["n"]))


def write_per_class_csv(path: Path, details: dict) -> None:
    """``label, support, recall, precision, f1, note`` per class (the details' means over seeds);
    ``note`` marks a class without test support (its zeros are not scores; macro F1 leaves it out)."""
    absent = set(details.get("no_test_support", []))
    predicted = set(details.get("predicted_without_support", []))
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", "support", "recall", "precision", "f1", "note"])
        for label, row in details["per_class"].items():
            note = ("no test support, predicted: not in macro F1" if label in predicted else
                    "no test support: not in macro F1" if label in absent else "")
            writer.writerow([label, row["support"], f"{row['recall']:.4f}", f"{row['precision']:.4f}",
                             f"{row['f1']:.4f}", note])
