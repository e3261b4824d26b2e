"""Training-epoch time of AMB-DSGDN on random features with IEMOCAP's real shape (a benchmark script).

Shape: the 120 train (+dev) and 31 test dialogues of the standard split with their real lengths and
speaker sequences, read from ``../shared/data/iemocap_text/iemocap_text.csv``; feature dims
text 1024 / audio 1582 / visual 342; batch 16 dialogues, hidden 512, window 20, all three
modalities, 8 encoder heads, 2 differential heads. One epoch = a training pass + a test pass.
Timed with modality dropout off and on (warm-up 0, p_exe 0.5). Prints mean seconds per epoch
(after one warm-up epoch) and peak resident memory.

    python benchmarks/train_speed.py [--epochs 3] [--device auto] [--precision fp16] [--model ar_iigcn]

``--model ar_iigcn``: AR-IIGCN with its defaults (docs/ar_iigcn.md), with and without its GAN.

On CUDA it also prints the peak GPU memory allocated (``precision``: autocast on CUDA only).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from config.ar_iigcn import ARIIGCNConfig  # noqa: E402
from config.model import ModelConfig  # noqa: E402
from config.train import TrainConfig  # noqa: E402
from model import MODELS  # noqa: E402
from model.data import Dialogue  # noqa: E402
from model.training import train_one  # noqa: E402

DIMS = {"text": 1024, "audio": 1582, "visual": 342}
CSV = REPO.parent / "shared" / "data" / "iemocap_text" / "iemocap_text.csv"
AMBDSGDN_CONFIG = ModelConfig(input_dims=dict(DIMS), num_classes=6, d_hidden=512, window=20, graph_heads=2,
                              encoder_heads=8, dropout=0.5)


def iemocap_shaped() -> tuple[dict[str, list[Dialogue]], dict, dict]:
    table = pd.read_csv(CSV)
    table["speaker_idx"] = (table["speaker"] == "F").astype(int)   # M=0, F=1
    rng = np.random.default_rng(0)
    table["label_idx"] = rng.integers(0, 6, len(table))
    splits: dict[str, list[Dialogue]] = {"train": [], "dev": [], "test": []}
    for dia, g in table.sort_values(["dialogue_id", "turn"]).groupby("dialogue_id"):
        split = "test" if g["split"].iat[0] == "test" else "train"   # the paper's 120 / 31
        splits[split].append(Dialogue(dia, g.index.to_numpy(), g["speaker_idx"].to_numpy(),
                                      g["label_idx"].to_numpy()))
    splits["dev"] = splits["test"][:1]   # selection is not what is timed; keep dev minimal
    matrices = {m: rng.standard_normal((len(table), d)).astype(np.float32) for m, d in DIMS.items()}
    present = {m: np.ones(len(table), bool) for m in DIMS}
    return splits, matrices, present


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp16", help="fp32 | fp16 | bf16 (CUDA only)")
    parser.add_argument("--model", default="ambdsgdn", choices=["ambdsgdn", "ar_iigcn"])
    args = parser.parse_args()
    if not CSV.exists():
        raise SystemExit(f"{CSV} not found: the benchmark needs ../shared/data beside the repository")
    splits, matrices, present = iemocap_shaped()
    lengths = [len(d.rows) for d in splits["train"] + splits["test"]]
    print(f"# {len(splits['train'])} train / {len(splits['test'])} test dialogues, length mean "
          f"{np.mean(lengths):.1f} max {max(lengths)}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, CUDA {torch.cuda.is_available()}, device {args.device}, "
          f"precision {args.precision}")
    variants = {   # label -> (model config, modality dropout)
        "ambdsgdn": [("modality dropout off", AMBDSGDN_CONFIG, False),
                     ("modality dropout on ", AMBDSGDN_CONFIG, True)],
        "ar_iigcn": [(label, ARIIGCNConfig(input_dims=dict(DIMS), num_classes=6, dropout=0.5, **kw), False)
                     for label, kw in (("full (GAN, ICCL, IMCL)", {}), ("without the GAN", {"gan": False}))],
    }[args.model]
    for label, model_config, dropout_on in variants:
        config = TrainConfig(epochs=args.epochs + 1, batch_size=16, lr=6.8e-5, device=args.device,
                             precision=args.precision, modality_dropout=dropout_on, warm_up_epochs=0,
                             p_exe=0.5)
        cuda = torch.cuda.is_available() and args.device != "cpu"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        result = train_one(0, model_config, config, splits, matrices, present, log=lambda *_: None)
        # The test pass of train_one also scores dev; dev is one dialogue here.
        per_epoch = [r["epoch_s"] for r in result.curves[1:]]
        params = sum(p.numel() for p in MODELS.get(args.model)(model_config).parameters())
        print(f"{args.model} {label}: {np.mean(per_epoch):.2f} s/epoch "
              f"(train + test, mean of {len(per_epoch)} after 1 warm-up epoch; total "
              f"{time.perf_counter() - started:.0f} s), {params / 1e6:.2f} M parameters, peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
              + (f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if cuda else ""),
              flush=True)

if __name__ == "__main__":
    main()
