"""Stage ``evaluate``: checkpoints -> metrics/<name>.json (+ .details.json, _confusion.png, _curves.png,
_per_class.csv, _test_predictions.csv).

    python -m pipeline.evaluate [--params params.yaml] [--set key=value ...] [--manifest data/prepared]
        [--features data/features] [--models data/model] [--out metrics] [--name ambdsgdn]

Scores every seed's dev-selected checkpoint on the test split and reports mean +- std over seeds.
``<name>.json`` holds the few numbers ``dvc metrics show`` and ``dvc exp show`` list (test wa-F1,
wa-ACC, macro F1, dev wa-F1, seeds); ``<name>.details.json`` holds everything else: per seed, per
class, confusion, counts, timings and provenance (corpus, labels, feature identities, device).
``<name>_test_predictions.csv`` has every seed's prediction for every test utterance (gold,
predicted, the probability of each class, each modality head's own prediction, the modalities
used; :mod:`pipeline.lib.predictions`), for error analysis without code. Also reports, clearly
labelled, the score of the public reference's protocol (the best *test* epoch over training), which
is not a valid estimate because it selects on test.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from config.params import load_params
from config.vocabulary import DEFAULT_THREADS
from extractors import params_extensions
from model.device import pick_device
from model.distributed import use_threads
from pipeline.cli import stage_main
from pipeline.lib.inputs import failure_reasons, load_inputs, split_counts
from pipeline.lib.metrics import (
    build_details,
    details_path,
    format_stat,
    seed_stat,
    write_metrics,
    write_per_class_csv,
)
from pipeline.lib.plots import plot_confusion, plot_curves
from pipeline.lib.predictions import prediction_table, write_csv
from pipeline.lib.runs import checkpoint_paths, epoch_seconds, read_curves, score_checkpoint
from pipeline.lib.timings import write_timings

REFERENCE_NOTE = ("best test wa-F1 over training epochs, as the public reference implementation "
                  "reports it; it selects on test and is NOT a valid estimate: use test_wa_f1")


# The params sections this stage reads (validated; any other passes through unchecked).
SECTIONS = ("extract",)


def run(params: dict, manifest_dir: Path, features_dir: Path, models_dir: Path, out_dir: Path,
        name: str = "ambdsgdn") -> dict:
    device = str(pick_device(params.get("device", "auto")))   # before reading anything
    use_threads(params.get("threads", DEFAULT_THREADS))      # inference's last bits, as training's
    inputs = load_inputs(params, manifest_dir, features_dir)
    m = inputs.manifest
    paths = checkpoint_paths(models_dir)
    scored = [score_checkpoint(p, inputs, device) for p in paths]
    runs = [report for report, _ in scored]
    curves = {r["seed"]: (read_curves(p), r["selected_epoch"]) for p, r in zip(paths, runs)}
    reference = [max(float(row["test_wa_f1_reference_protocol_only"]) for row in rows)
                 for rows, _ in curves.values()]
    details = build_details(
        m.corpus, m.labels, runs, split_counts(m),
        run_info={"seeds": [r["seed"] for r in runs]},
        selection={"selected_epochs": [r["selected_epoch"] for r in runs],
                   "dev_wa_f1": seed_stat([r["dev_wa_f1"] for r in runs])},
        provenance={
            "train_dialogues": runs[0]["train_dialogues"],   # how many reached the optimiser
            "modalities": list(inputs.matrices), "device": device, "features": runs[0]["features"],
            **{key: m.extra_meta[key] for key in ("dev_split", "feature_file") if key in m.extra_meta},
            "reference_protocol": {"note": REFERENCE_NOTE, "test_wa_f1": seed_stat(reference)}})
    path = write_metrics(out_dir, name, details)
    seconds = epoch_seconds(models_dir)   # per epoch: training plus dev/test scoring
    if seconds:
        write_timings(path, {"epoch_s": seed_stat([seconds[s] for s in sorted(seconds)])})
    write_per_class_csv(out_dir / f"{name}_per_class.csv", details)
    reasons = failure_reasons(inputs.metas)
    predictions = pd.concat([prediction_table(m, out, m.labels, reasons, seed=report["seed"])
                             for report, out in scored], ignore_index=True)
    write_csv(out_dir / f"{name}_test_predictions.csv", predictions)
    plot_confusion(np.array(runs[0]["confusion"]), m.labels, out_dir / f"{name}_confusion.png",
                   f"{m.corpus} test, seed {runs[0]['seed']}")
    plot_curves(curves, out_dir / f"{name}_curves.png", m.corpus, warm_up_epochs=runs[0]["warm_up_epochs"])
    print(f"{m.corpus} test: wa-F1 {format_stat(details['test_wa_f1'])}, wa-ACC "
          f"{format_stat(details['test_wa_acc'])} -> {path}, {details_path(path)}, "
          f"{out_dir / (name + '_curves.png')}, "
          f"{out_dir / (name + '_confusion.png')}, {out_dir / (name + '_per_class.csv')}, "
          f"{out_dir / (name + '_test_predictions.csv')}")
    return details


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", type=Path, default=Path("data/prepared"))
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("--models", type=Path, default=Path("data/model"))
    parser.add_argument("--out", type=Path, default=Path("metrics"))
    parser.add_argument("--name", default="ambdsgdn", help="file stem (default: ambdsgdn)")


def run_cli(args: argparse.Namespace) -> None:
    params = load_params(args.params, args.overrides, params_extensions(), SECTIONS)
    run(params, args.manifest, args.features, args.models, args.out, args.name)


main = stage_main("evaluate", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
