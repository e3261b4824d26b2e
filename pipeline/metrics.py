"""Metrics files of the evaluate and baseline stages: one module owns their names and content.

- ``<name>.json``          the headline, what ``dvc metrics show`` / ``dvc exp show`` list:
  ``test.{wa_f1, wa_f1_std, wa_acc, wa_acc_std, macro_f1}``, ``dev.wa_f1``, ``seeds``
  (means over seeds; ``*_std`` the sample standard deviation, null for one seed)
- ``<name>.details.json``  everything else: the per-seed statistics (:func:`seed_stat`), per class,
  confusion, counts, timings and provenance (corpus, labels, modalities, feature identities, device)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


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
    path.write_text(json.dumps(headline(details), indent=2) + "\n")
    details_path(path).write_text(json.dumps(details, indent=2) + "\n")
    return path


def format_stat(stat: dict) -> str:
    """``mean ± sample std (n = k)`` in percent; a single run shows ``(n = 1)`` only."""
    if stat.get("sample_std") is None:
        return f"{100 * stat['mean']:.2f} (n = {stat.get('n', 1)})"
    return f"{100 * stat['mean']:.2f} ± {100 * stat['sample_std']:.2f} (n = {stat['n']})"
