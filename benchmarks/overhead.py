"""The paper's overhead tables (Tables 8-9) on IEMOCAP-shaped features (a benchmark script).

Per variant, each in its own process (so that its peak memory is its own): parameters, training
seconds per epoch and per batch, inference milliseconds per dialogue and per utterance, inference
throughput (utterances/s), peak resident memory (and peak GPU memory on CUDA). Variants: AMB-DSGDN
full (DiffRGCN, adaptive modality dropout on), with plain single-map graph attention instead of
DiffRGCN (Table 8's "DiffRGCN vs GAT"), without modality balancing (Table 8's second block), without
any graph; AR-IIGCN with and without its GAN. The data: ``benchmarks/train_speed.py``'s (the real
IEMOCAP standard split's dialogue lengths and speakers, random features 1024/1582/342, batch 16,
hidden 512, window 20).

    python benchmarks/overhead.py [--epochs 3] [--device auto] [--precision fp16] [--out FILE.md]

Inference is timed in eval mode over the 31 test dialogues (``--repeats`` passes after one untimed
pass). Seconds are wall-clock on this machine: compare rows of one run, not across machines.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.train_speed import AMBDSGDN_CONFIG, CSV, DIMS, iemocap_shaped  # noqa: E402

VARIANTS = {   # name -> (model, model config changes, modality dropout)
    "AMB-DSGDN full": ("ambdsgdn", {}, True),
    "AMB-DSGDN, GAT instead of DiffRGCN": ("ambdsgdn", {"graph": "gat"}, True),
    "AMB-DSGDN without modality balancing": ("ambdsgdn", {}, False),
    "AMB-DSGDN without graph": ("ambdsgdn", {"graph": "none"}, True),
    "AR-IIGCN full": ("ar_iigcn", {}, False),
    "AR-IIGCN without GAN": ("ar_iigcn", {"gan": False}, False),
}


def model_config(name: str, changes: dict):
    from dataclasses import replace

    from config.ar_iigcn import ARIIGCNConfig

    if name == "ambdsgdn":
        return replace(AMBDSGDN_CONFIG, **changes)
    return ARIIGCNConfig(input_dims=dict(DIMS), num_classes=6, dropout=0.5, **changes)


def measure(variant: str, epochs: int, device: str, precision: str, repeats: int) -> dict:
    from config.train import TrainConfig
    from model.device import pick_device
    from model.training import infer, train_one

    name, changes, dropout_on = VARIANTS[variant]
    splits, matrices, present = iemocap_shaped()
    config = TrainConfig(epochs=epochs + 1, batch_size=16, lr=6.8e-5, device=device, precision=precision,
                         modality_dropout=dropout_on, warm_up_epochs=0, p_exe=0.5)
    cuda = pick_device(device).type == "cuda"
    result = train_one(0, model_config(name, changes), config, splits, matrices, present, log=lambda *_: None)
    per_epoch = [r["epoch_s"] for r in result.curves[1:]]
    from model import MODELS

    model = MODELS.get(name)(model_config(name, changes)).to(pick_device(device))
    model.load_state_dict(result.checkpoint["state_dict"])
    test = splits["test"]
    utterances = sum(len(d.rows) for d in test)
    infer(model, test, matrices, present, 16, pick_device(device))          # untimed: warm caches
    seconds = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        infer(model, test, matrices, present, 16, pick_device(device))
        if cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    batches = -(-len(splits["train"]) // 16)
    infer_s = float(np.mean(seconds))
    return {"variant": variant, "parameters": sum(p.numel() for p in model.parameters()),
            "epoch_s": float(np.mean(per_epoch)), "batch_ms": 1000 * float(np.mean(per_epoch)) / batches,
            "infer_ms_per_dialogue": 1000 * infer_s / len(test),
            "infer_ms_per_utterance": 1000 * infer_s / utterances,
            "throughput": utterances / infer_s,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}


def table(rows: list[dict], header: str) -> str:
    lines = [header, "", "| variant | parameters (M) | train s/epoch | train ms/batch | inference "
             "ms/dialogue | inference ms/utterance | throughput (utt./s) | peak RSS (MB) | peak GPU (MiB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gpu = f"{r['peak_gpu_mib']:.0f}" if r["peak_gpu_mib"] is not None else "—"
        lines.append(f"| {r['variant']} | {r['parameters'] / 1e6:.2f} | {r['epoch_s']:.2f} | "
                     f"{r['batch_ms']:.0f} | {r['infer_ms_per_dialogue']:.1f} | "
                     f"{r['infer_ms_per_utterance']:.2f} | "
                     f"{r['throughput']:.0f} | {r['peak_rss_mb']:.0f} | {gpu} |")
    full = {r["variant"]: r for r in rows}
    base = full.get("AMB-DSGDN full")
    for other, label in (("AMB-DSGDN, GAT instead of DiffRGCN", "DiffRGCN vs GAT"),
                         ("AMB-DSGDN without modality balancing", "modality balancing on vs off")):
        if base and other in full:
            o = full[other]
            change = {k: 100 * (base[k] / o[k] - 1)
                      for k in ("epoch_s", "infer_ms_per_dialogue", "throughput")}
            lines.append(f"\n{label}: train {change['epoch_s']:+.1f} % s/epoch, inference "
                         f"{change['infer_ms_per_dialogue']:+.1f} % ms/dialogue, throughput "
                         f"{change['throughput']:+.1f} %, parameters "
                         f"{(base['parameters'] - o['parameters']) / 1e6:+.2f} M.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp16", help="fp32 | fp16 | bf16 (CUDA only)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        metavar="NAME")
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.epochs, args.device, args.precision, args.repeats)))
        return
    if not CSV.exists():
        raise SystemExit(f"{CSV} not found: the benchmark needs ../shared/data beside the repository")
    command = shlex.join(["python", "benchmarks/overhead.py", *sys.argv[1:]])
    header = (f"Overhead (Tables 8-9), `{command}`: {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs, torch {torch.__version__} on {torch.get_num_threads()} threads, "
              f"device {args.device}, precision {args.precision}; {args.epochs} timed epochs after 1 "
              "warm-up, "
              f"inference mean of {args.repeats} passes over the 31 test dialogues.")
    rows = []
    for variant in args.variants:
        child = [sys.executable, __file__, "--child", variant, "--epochs", str(args.epochs), "--repeats",
                 str(args.repeats), "--device", args.device, "--precision", args.precision]
        done = subprocess.run(child, capture_output=True, text=True)
        if done.returncode:
            print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
            raise SystemExit(done.returncode)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{variant}: {rows[-1]['epoch_s']:.2f} s/epoch, "
              f"{rows[-1]['infer_ms_per_dialogue']:.1f} ms/dialogue", flush=True)
    text = table(rows, header)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
