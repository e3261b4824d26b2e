"""Training AMB-DSGDN on cached features: one run per seed, model selection on dev only.

Per epoch: shuffled dialogue batches; after ``warm_up_epochs`` the adaptive modality dropout
(Alg. 2) masks the hidden representations between the graph blocks and the heads, with each
modality's performance (Eq. 19) taken from its head on the same forward pass (as the public code
does); the loss is Eq. 33. Curves record the mean drop rate ``q_<modality>`` of each epoch. Then
dev is scored (selection) and test is scored too, only to report the reference implementation's
protocol (best test epoch), never to select.
"""
from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from config.model import ModelConfig
from config.train import TrainConfig
from model.ambdsgdn import AMBDSGDN
from model.class_weights import loss_weights
from model.classifier import total_loss
from model.data import Batch, Dialogue, batches
from model.device import autocast, grad_scaler, pick_device
from model.modality_dropout import adaptive_modality_dropout
from model.scores import scores


@dataclass
class RunResult:
    seed: int
    checkpoint: dict
    curves: list[dict] = field(default_factory=list)


def set_seed(seed: int) -> np.random.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


@dataclass
class Inference:
    """Per-utterance outputs of a model over some dialogues (one row per real utterance)."""

    rows: np.ndarray                 # (N,) manifest row index
    gold: np.ndarray                 # (N,) label index, -1 where unlabelled
    log_probs: np.ndarray            # (N, C) fused log-probabilities P (Eq. 29-30)
    logits: dict[str, np.ndarray]    # modality -> (N, C) its head's logits z_m (Eq. 28)
    present: dict[str, np.ndarray]   # modality -> (N,) bool: the utterance had that modality

    @property
    def predicted(self) -> np.ndarray:
        return self.log_probs.argmax(1)


def infer(model: AMBDSGDN, items: list[Dialogue], matrices, present, batch_size: int,
          device: torch.device | str) -> Inference:
    """Every real utterance of ``items`` through the model in eval mode (dialogues taken by length,
    which packs batches tightly; each dialogue is its own graph, so the grouping does not change
    any output)."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {"rows": [], "gold": [], "fused": []}
    by_length = sorted(items, key=lambda d: len(d.rows))
    with torch.inference_mode():
        for b in batches(by_length, batch_size, matrices, present):
            rows = np.concatenate(b.rows)
            b = b.to(device)
            out = model(b.features, b.speakers, b.lengths, b.present)
            parts["rows"].append(rows)
            parts["gold"].append(b.labels[b.mask].cpu().numpy())
            for key in ("fused", *model.modalities):
                parts.setdefault(key, []).append(out[key][b.mask].float().cpu().numpy())
            for m in model.modalities:
                parts.setdefault(f"has_{m}", []).append(b.present[m][b.mask].cpu().numpy())
    joined = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    return Inference(joined["rows"], joined["gold"], joined["fused"],
                     {m: joined[m] for m in model.modalities},
                     {m: joined[f"has_{m}"] for m in model.modalities})


def predict(model: AMBDSGDN, items: list[Dialogue], matrices, present, batch_size: int,
            device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predictions) over every real utterance of ``items``."""
    out = infer(model, items, matrices, present, batch_size, device)
    return out.gold, out.predicted


def train_one(seed: int, model_config: ModelConfig, config: TrainConfig, splits: dict[str, list[Dialogue]],
              matrices, present, loss_mask_rows: np.ndarray | None = None, log=print,
              reference_protocol: bool = True) -> RunResult:
    """Train one seed; return the dev-selected checkpoint and per-epoch curves. Without
    ``reference_protocol`` the test split is never scored (its curve column is NaN)."""
    rng = set_seed(seed)
    device = pick_device(config.device)
    model = AMBDSGDN(model_config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    weights = loss_weights(np.concatenate([d.labels for d in splits["train"]]), model_config.num_classes,
                           config.class_weights)
    weights = weights.to(device) if weights is not None else None
    scaler = grad_scaler(device, config.precision)
    generator = torch.Generator().manual_seed(seed)

    def dropout_active(epoch: int) -> bool:
        return config.modality_dropout and epoch > config.warm_up_epochs and len(model.modalities) > 1
    best, curves, trained_on = None, [], set()
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        losses, q_sum, q_batches = [], np.zeros(len(model.modalities)), 0
        for b in batches(splits["train"], config.batch_size, matrices, present, rng):
            trained_on.update(b.dialogue_ids)
            b = b.to(device)
            mask = b.mask if loss_mask_rows is None else b.mask & _trainable(b, loss_mask_rows, device)
            labels, has = b.labels, b.present
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, config.precision):
                hidden = model.encode(b.features, b.speakers, b.lengths, has)
                logits = model.classify(hidden)
                if dropout_active(epoch):    # Alg. 2 on the hidden representations
                    dropped = adaptive_modality_dropout(
                        [hidden[m] for m in model.modalities], [logits[m] for m in model.modalities],
                        labels, [mask & has[m] for m in model.modalities], q_base=config.q_base,
                        lam=config.lam, p_exe=config.p_exe, rule=config.q_rule, metric=config.p_metric,
                        generator=generator)
                    q_batches += 1
                    q_sum += dropped.q.cpu().numpy()
                    if dropped.applied:
                        kept = dropped.kept
                        if len(kept) == 0:
                            continue
                        hidden = dict(zip(model.modalities, dropped.features))
                        logits = model.classify(hidden)
                        labels, mask = labels[kept], mask[kept]
                        has = {m: x[kept] for m, x in has.items()}
            loss, _ = total_loss({m: z.float() for m, z in logits.items()}, labels, mask, weights, has)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.item())
        dev = scores(*predict(model, splits["dev"], matrices, present, config.batch_size, device))
        test = (scores(*predict(model, splits["test"], matrices, present, config.batch_size, device))
                if reference_protocol else {"wa_f1": float("nan")})
        row = {"seed": seed, "epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               "dev_wa_f1": dev["wa_f1"], "dev_wa_acc": dev["wa_acc"],
               "test_wa_f1_reference_protocol_only": test["wa_f1"],
               **{f"q_{m}": float(q_sum[i] / max(q_batches, 1)) for i, m in enumerate(model.modalities)},
               "epoch_s": time.perf_counter() - started}
        curves.append(row)
        if best is None or dev["wa_f1"] > best[0]:
            best = (dev["wa_f1"], epoch, copy.deepcopy(model.state_dict()))
        eta = np.mean([r["epoch_s"] for r in curves]) * (config.epochs - epoch)
        log(f"seed {seed} epoch {epoch:3d}/{config.epochs}: loss {row['train_loss']:.4f} dev wa-F1 "
            f"{dev['wa_f1']:.4f} acc {dev['wa_acc']:.4f} ({row['epoch_s']:.2f} s, seed ETA {eta:.0f} s)")
    checkpoint = {"model": model.name, "state_dict": {k: v.cpu() for k, v in best[2].items()},
                  "model_config": model_config.to_dict(), "selected_epoch": best[1],
                  "dev_wa_f1": best[0], "seed": seed,
                  "train_dialogues": sorted(trained_on)}   # what reached the optimiser (provenance)
    return RunResult(seed, checkpoint, curves)


def _trainable(b: Batch, trainable_rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, L) bool: utterances allowed in the training loss (``on_failure: drop`` removes some)."""
    out = torch.zeros_like(b.mask)
    for i, rows in enumerate(b.rows):
        out[i, : len(rows)] = torch.from_numpy(trainable_rows[rows]).to(device)
    return out
