"""Prediction speed on a 20-turn demo conversation (a benchmark script, not a test).

Takes a Session 5 (test) dialogue of the demo corpus with at least ``--turns`` turns, writes its
first turns as a transcript CSV (``speaker,start,end,text``) and predicts it from the dialogue's
video (``avi``) and audio (``wav``) with the trained demo model, every time with an empty feature
store (so everything is extracted). It prints:

- **end to end**: ``python -m pipeline.predict`` in a fresh process, wall clock: Python imports,
  model and extractor loading, extraction, the model, writing CSV / JSON / timeline;
- **loading**: the model folder (``ModelFolder.from_pretrained``) and each extractor, in seconds;
- **per turn**: the marginal cost of one more turn, ``(t(N) - t(N/2)) / (N/2)`` of
  ``Predictor.predict`` (extraction + model), median of ``--repeats``, with the model's own share.

    make demo    # once: the demo corpus and model
    python benchmarks/predict_speed.py [--model data/model/checkpoints/seed_0]
        [--corpus data/demo/IEMOCAP_full_release] [--turns 20] [--repeats 3] [--sample-out DIR]

``--sample-out DIR`` keeps the first end-to-end run's transcript and outputs in DIR (the README's
sample: ``--sample-out benchmarks/predict_sample``).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SPEAKER_SIDE = {"F": "left", "M": "right"}     # the demo's IEMOCAP layout
SPEAKER_INDEX = {"M": 0, "F": 1}               # the IEMOCAP adapter's convention, as in training


def conversation(corpus: Path, turns: int, out: Path) -> tuple[Path, list[Path], str]:
    """(transcript CSV of the first ``turns`` turns, [video, audio], dialogue) of the first Session 5
    dialogue that has that many."""
    import pandas as pd

    from pipeline.corpora.iemocap import TRANSCRIPT_LINE

    dialog = corpus / "Session5" / "dialog"
    for path in sorted((dialog / "transcriptions").glob("*.txt")):
        lines = [m for line in path.read_text().splitlines() if (m := TRANSCRIPT_LINE.match(line))]
        if len(lines) >= turns:
            rows = [{"speaker": m.group(1).rsplit("_", 1)[1][0], "start": float(m.group(2)),
                     "end": float(m.group(3)), "text": m.group(4)} for m in lines]
            rows = sorted(rows, key=lambda r: r["start"])[:turns]
            csv = out / f"{path.stem}_{turns}.csv"
            pd.DataFrame(rows).to_csv(csv, index=False)
            media = [dialog / "avi" / "DivX" / f"{path.stem}.avi", dialog / "wav" / f"{path.stem}.wav"]
            return csv, media, path.stem
    raise SystemExit(f"no Session 5 dialogue of {corpus} has {turns} turns")


def child(model: Path, corpus: Path, turns: int, repeats: int) -> dict:
    """In one process: loading times, then predict on N/2 and N turns, each with an empty store."""
    started = time.perf_counter()
    from extractors.store import FeatureStore
    from model.folder import ModelFolder
    from pipeline.lib.predictor import Predictor, read_conversation

    imports_s = time.perf_counter() - started
    started = time.perf_counter()
    ModelFolder.from_pretrained(model, "cpu")
    model_load_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        predictor = Predictor.from_dir(model, device="cpu")
        runs: dict[int, list[dict]] = {turns // 2: [], turns: []}
        for k in range(repeats):
            for n in runs:
                transcript, media, _ = conversation(corpus, n, tmp)
                predictor.store = FeatureStore(tmp / f"store_{n}_{k}")   # nothing reused
                conv, _ = read_conversation(transcript, media, labels=predictor.labels,
                                            speaker_side=SPEAKER_SIDE, speaker_index=SPEAKER_INDEX)
                t0 = time.perf_counter()
                result = predictor.predict(conv)
                runs[n].append({**result.timings, "predict_s": time.perf_counter() - t0})
    half, full = (statistics.median(r["predict_s"] for r in runs[n]) for n in (turns // 2, turns))
    per_modality = {m: statistics.median(r[f"{m}_extract_s"] for r in runs[turns])
                    for m in predictor.modalities}
    return {"imports_s": imports_s, "model_load_s": model_load_s, "load": predictor.timings,
            "predict_s": {str(turns // 2): half, str(turns): full},
            "per_turn_s": (full - half) / (turns - turns // 2),
            "extract_s": per_modality,
            "model_s": statistics.median(r["model_s"] for r in runs[turns])}


def end_to_end(model: Path, corpus: Path, turns: int, sample_out: Path | None) -> float:
    """Wall clock of ``python -m pipeline.predict`` in a fresh process (paths relative to the
    repository, so a kept sample names no machine's folders)."""
    def rel(path: Path) -> str:
        return os.path.relpath(path, REPO)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if sample_out:
            sample_out.mkdir(parents=True, exist_ok=True)
        transcript, media, _ = conversation(corpus, turns, sample_out or tmp)
        out = sample_out or tmp / "out"
        cmd = [sys.executable, "-m", "pipeline.predict", "--model", rel(model),
               "--transcript", rel(transcript), *[a for p in media for a in ("--media", rel(p))],
               "--out", rel(out), "--store", str(tmp / "store"),
               *[a for s, v in SPEAKER_SIDE.items() for a in ("--speaker-side", f"{s}={v}")],
               *[a for s, v in SPEAKER_INDEX.items() for a in ("--speaker-index", f"{s}={v}")]]
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        wall = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "data/model/checkpoints/seed_0")
    parser.add_argument("--corpus", type=Path, default=REPO / "data/demo/IEMOCAP_full_release")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample-out", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.model, args.corpus, args.turns, args.repeats)))
        return
    for path, what in ((args.model, "model folder"), (args.corpus, "demo corpus")):
        if not path.exists():
            raise SystemExit(f"{path}: no {what}; run `make demo` first")
    walls = [end_to_end(args.model, args.corpus, args.turns, args.sample_out if k == 0 else None)
             for k in range(args.repeats)]
    done = subprocess.run([sys.executable, __file__, "--child", "--model", str(args.model), "--corpus",
                           str(args.corpus), "--turns", str(args.turns), "--repeats", str(args.repeats)],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        raise SystemExit(done.stderr)
    r = json.loads(done.stdout.strip().splitlines()[-1])
    n = args.turns
    print(f"prediction on a {n}-turn demo conversation (video + audio + transcript), CPU, "
          "empty feature store")
    print(f"  end to end (python -m pipeline.predict, fresh process): median "
          f"{statistics.median(walls):.1f} s ({', '.join(f'{w:.1f}' for w in walls)})")
    loads = {k.removesuffix("_extractor_load_s"): v for k, v in r["load"].items()
             if k.endswith("_extractor_load_s")}
    print(f"  imports {r['imports_s']:.1f} s; model folder load {r['model_load_s']:.3f} s; "
          "extractor loading: " + ", ".join(f"{k} {v:.2f} s" for k, v in loads.items()))
    print(f"  Predictor.predict: {r['predict_s'][str(n // 2)]:.2f} s for {n // 2} turns, "
          f"{r['predict_s'][str(n)]:.2f} s for {n} turns -> {r['per_turn_s'] * 1000:.0f} ms per extra turn")
    total = sum(r["extract_s"].values()) + r["model_s"]
    print(f"  at {n} turns: " + ", ".join(f"{m} extraction {s:.2f} s" for m, s in r["extract_s"].items())
          + f", model {r['model_s'] * 1000:.1f} ms ({100 * r['model_s'] / total:.2f}% of extraction + model)")


if __name__ == "__main__":
    main()
