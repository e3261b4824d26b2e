"""Stage ``baseline``: a context-free logistic regression on the same features -> metrics/<name>.json.

    python -m pipeline.baseline [--params params.yaml] [--set key=value ...] [--manifest data/prepared]
        [--features data/features] [--out metrics] [--name <corpus>_logreg]

Reads ``modalities`` (their features are concatenated), ``extract`` (the caches are checked against
it) and ``baseline``: ``Cs`` (grid, picked on dev), ``class_weights`` (inverse_frequency | none),
``max_iter``. Writes the same files as the evaluate stage: ``<name>.json`` (test/dev scores) and
``<name>.details.json`` (``test_wa_f1``, ``per_class``, ``counts``, provenance, ...).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from config.baseline import BaselineConfig
from config.params import load_params
from config.schema import checked
from extractors import params_extensions
from model.context_free import fit_logistic_regression
from pipeline.cli import stage_main
from pipeline.lib.inputs import feature_provenance, load_inputs, split_counts
from pipeline.lib.metrics import build_details, classification_report, details_path, seed_stat, write_metrics
from pipeline.lib.timings import write_timings

# The params sections this stage reads (validated; any other passes through unchecked).
SECTIONS = ("baseline", "extract")


def run(params: dict, manifest_dir: Path, features_dir: Path, out_dir: Path, name: str | None = None) -> dict:
    params = checked(params, SECTIONS, defaults=("baseline",))
    config = BaselineConfig(**params["baseline"])
    inputs = load_inputs(params, manifest_dir, features_dir)
    m = inputs.manifest
    x = np.concatenate([inputs.matrices[k] for k in inputs.matrices], axis=1)
    has_any = np.any(np.stack([inputs.present[k] for k in inputs.present]), axis=0)
    label_index = {lab: i for i, lab in enumerate(m.labels)}
    y = m.table["label"].map(label_index).to_numpy()
    split = m.table["split"].to_numpy()
    # Utterances without any feature carry nothing to learn from; at test they are still scored.
    train, dev, test = (split == "train") & has_any, split == "dev", split == "test"
    started = time.perf_counter()
    selected = fit_logistic_regression(x[train], y[train], x[dev], y[dev],
                                       Cs=config.Cs, class_weights=config.class_weights,
                                       max_iter=config.max_iter)
    fit_s = time.perf_counter() - started
    result = classification_report(y[test], selected.classifier.predict(x[test]), m.labels)
    details = build_details(
        m.corpus, m.labels, [result], split_counts(m),
        run_info={"classifier": "logistic_regression (context-free)",
                  "deterministic": True, "seeds": []},      # one run: n = 1, no spread
        selection={"selected_C": selected.C,
                   "dev_wa_f1_by_C": {str(c): f for c, f in selected.dev_by_C.items()},
                   "dev_wa_f1": seed_stat([selected.dev_wa_f1])},
        provenance={"train_utterances": int(train.sum()),
                    "train_dialogues": int(m.table.loc[train, "dialogue_id"].nunique()),
                    "modalities": list(inputs.matrices), "features": feature_provenance(inputs.metas)})
    name = name or f"{m.corpus}_logreg"
    path = write_metrics(out_dir, name, details)
    write_timings(path, {"fit_s": fit_s})
    print(f"{m.corpus} context-free logistic regression (C={selected.C:g}, dev wa-F1 "
          f"{100 * selected.dev_wa_f1:.2f}): test wa-F1 {100 * result['wa_f1']:.2f}, wa-ACC "
          f"{100 * result['wa_acc']:.2f} ({fit_s:.1f} s) -> {path}, {details_path(path)}")
    return details


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", type=Path, default=Path("data/prepared"))
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("--out", type=Path, default=Path("metrics"))
    parser.add_argument("--name", default=None, help="file stem (default: <corpus>_logreg)")


def run_cli(args: argparse.Namespace) -> None:
    params = load_params(args.params, args.overrides, params_extensions(), SECTIONS)
    run(params, args.manifest, args.features, args.out, args.name)


main = stage_main("baseline", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
