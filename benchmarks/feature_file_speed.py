"""Importing an IEMOCAP-sized released feature file, and training on it (a benchmark script).

The file: the ``amb_dsgdn`` layout's exact structure (extractors/feature_pickles.py) with the real
IEMOCAP dialogues, turn order, speakers and labels of ``../shared/data/iemocap_text/iemocap_text.csv``
(151 dialogues, 7,433 utterances; dev folded into train as the released file does) and random
float32 vectors: text 1024 (videoText, roberta2..4), audio 1582, visual 342; pickled with protocol 2.
Prints, each stage in its own subprocess (its own peak memory):

- read: ``read_feature_file`` alone (unpickle, checks, normalisation);
- prepare: the ``pickled`` corpus adapter -> manifest;
- extract: each modality's cache from the file (``pickled`` family, an empty feature store);
- train@<model>: AMB-DSGDN with the paper's IEMOCAP widths (hidden 512, window 20, 8 encoder heads,
  batch 16), and AR-IIGCN with its defaults (docs/ar_iigcn.md) on the same caches: mean seconds per
  epoch over ``--epochs`` after one warm-up epoch, and the model's parameter count. (The vectors are
  random, so no score is reported: this measures the path, its speed and its memory.)

    python benchmarks/feature_file_speed.py [--epochs 3] [--models ambdsgdn ar_iigcn]
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CSV = REPO.parent / "shared" / "data" / "iemocap_text" / "iemocap_text.csv"
DIMS = {"videoText": 1024, "roberta2": 1024, "roberta3": 1024, "roberta4": 1024, "videoAudio": 1582,
        "videoVisual": 342}
LABELS = ("hap", "sad", "neu", "ang", "exc", "fru")
PAPER = ["model.d_hidden=512", "model.encoder_heads=8", "model.dropout=0.5", "model.window=20",
         "train.lr=6.8e-5", "train.batch_size=16", "train.warm_up_epochs=0", "train.seeds=[0]"]


def build(path: Path) -> dict:
    import pandas as pd

    table = pd.read_csv(CSV, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    items = {k: {} for k in ("ids", "speakers", "labels", "sentences", *DIMS)}
    splits = {"train": [], "test": []}
    for dia, rows in table.groupby("dialogue_id", sort=False):
        rows = rows.sort_values("turn", key=lambda t: t.astype(int))
        splits["test" if rows["split"].iat[0] == "test" else "train"].append(dia)
        items["ids"][dia] = rows["utterance_id"].tolist()
        items["speakers"][dia] = rows["speaker"].tolist()
        items["labels"][dia] = [LABELS.index(x) for x in rows["label"]]
        items["sentences"][dia] = rows["text"].tolist()
        for name, dim in DIMS.items():
            items[name][dia] = list(rng.standard_normal((len(rows), dim)).astype(np.float32))
    order = ("ids", "speakers", "labels", "videoText", "roberta2", "roberta3", "roberta4", "videoAudio",
             "videoVisual", "sentences")
    path.write_bytes(pickle.dumps(tuple(items[k] for k in order) + (splits["train"], splits["test"]),
                                  protocol=2))
    return {"dialogues": sum(len(v) for v in splits.values()), "utterances": len(table),
            "mb": path.stat().st_size / 2**20}


def child(step: str, work: Path, epochs: int) -> dict:
    path = work / "iemocap_multimodal_features.pkl"
    sets = [f"prepare.root={path}", "device=cpu"]
    for modality, entry in (("text", "videoText"), ("audio", "videoAudio"), ("visual", "videoVisual")):
        sets += [f"extract.{modality}.name=pickled",
                 f"extract.{modality}.pickled={{file: {path}, entry: {entry}}}"]
    args = ["--params", str(REPO / "params.yaml"), *(a for s in sets for a in ("--set", s))]
    started = time.perf_counter()
    if step == "read":
        from extractors.feature_pickles import read_feature_file
        read_feature_file(path)
    elif step == "prepare":
        from pipeline import prepare
        assert prepare.main([*args, "--out", str(work / "prepared")]) == 0
    elif step.startswith("extract@"):
        from pipeline import extract
        modality = step.partition("@")[2]
        assert extract.main([modality, *args, "--manifest", str(work / "prepared"),
                             "--out", str(work / "features" / modality)]) == 0
    elif step.startswith("train@"):
        from pipeline import train
        name = step.partition("@")[2]
        sets = [*PAPER, f"train.epochs={epochs + 1}", f"model.name={name}"]
        paper = [a for s in sets for a in ("--set", s)]
        assert train.main([*args, *paper, "--manifest", str(work / "prepared"), "--features",
                           str(work / "features"), "--out", str(work / name)]) == 0
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"step": step, "s": seconds, "peak_rss_mb": peak}
    if step.startswith("train@"):
        from model.folder import ModelFolder

        name = step.partition("@")[2]
        timings = json.loads((work / f"{name}.timings.json").read_text())["epoch_s"]["0"]
        out["epoch_s"] = float(np.mean(timings[1:]))
        folder = ModelFolder.from_pretrained(work / name / "checkpoints" / "seed_0")
        out["parameters"] = sum(p.numel() for p in folder.model.parameters())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["ambdsgdn", "ar_iigcn"],
                        choices=["ambdsgdn", "ar_iigcn"])
    parser.add_argument("--child", nargs=2, metavar=("STEP", "WORK"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.epochs)))
        return
    if not CSV.exists():
        raise SystemExit(f"{CSV} not found: the benchmark needs ../shared/data beside the repository")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        size = build(work / "iemocap_multimodal_features.pkl")
        print(f"# {size['dialogues']} dialogues, {size['utterances']} utterances, file {size['mb']:.0f} MB; "
              f"{os.cpu_count()} CPUs", flush=True)
        env = {**os.environ, "AMBDSGDN_FEATURE_STORE": str(work / "store"), "HF_HUB_OFFLINE": "1"}
        for step in ("read", "prepare", "extract@text", "extract@audio", "extract@visual",
                     *(f"train@{m}" for m in args.models)):
            command = [sys.executable, __file__, "--epochs", str(args.epochs), "--child", step, str(work)]
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode:
                print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
                raise SystemExit(done.returncode)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            extra = (f", {r['epoch_s']:.2f} s/epoch (mean of {args.epochs} after 1 warm-up), "
                     f"{r['parameters'] / 1e6:.2f} M parameters" if "epoch_s" in r else "")
            print(f"{step:>15}: {r['s']:6.1f} s, peak RSS {r['peak_rss_mb']:5.0f} MB{extra}", flush=True)


if __name__ == "__main__":
    main()
