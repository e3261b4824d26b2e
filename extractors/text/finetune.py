"""Fine-tuning a transformers encoder for utterance emotion classification on a corpus' train split
(COSMIC-style text features): the library behind the ``finetune`` stage.

The encoder reads utterances exactly as the text extractor will (:mod:`extractors.text.encoding`:
optionally after its previous ``context_turns`` turns, speaker-tagged) and pools them the same way;
a linear head on the pooled vector is trained with it (cross-entropy, optionally class-weighted),
AdamW with linear warm-up and decay. Only train-split utterances reach the optimiser; dev wa-F1 is
measured ``evals_per_epoch`` times per epoch, the best state is kept, and training stops after
``patience`` evaluations without improvement. The output folder is what ``from_pretrained`` reads
(the encoder and its tokenizer, ``save_pretrained``), plus ``finetune.json`` (the provenance the
extractor's identity records: base model, corpus, split hash, train dialogues, params, selected
evaluation) and ``curve.csv``. Training runs on the project's one engine (:mod:`model.engine`):
after each epoch the state (weights, optimiser, schedule, loss scaler) is saved in ``.resume/``, a
killed run continues from its last finished epoch, and a finished one is not redone (same params
and data).

Cross-fitting (:func:`finetune_with_folds`, ``crossfit_folds`` k > 1): an encoder fine-tuned on
the whole train split has seen every train label, so its train features are far more separable
than its dev/test ones, and a model trained on them learns to trust them more than it should. The
train dialogues are dealt into k folds and k more encoders are fine-tuned, each without one fold
(``crossfit/fold_<i>/``); the extractor encodes a train utterance with the encoder that never saw
its dialogue and everything else with the one fine-tuned on the whole train split.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from config.finetune import FinetuneConfig
from extractors.base import ExtractorError
from extractors.text.encoding import dialogue_contexts, pool, tokenize, utterance_input
from extractors.text.hf_transformers import (
    CROSSFIT_DIR,
    FINETUNE_FILE,
    load_encoder,
    resolve_model,
    weights_digest,
)
from model.class_weights import loss_weights
from model.data import length_batches
from model.device import autocast, grad_scaler, optimizer_step, pick_device
from model.engine import Progress, Trainee, finish, fit
from model.scores import scores
from model.versions import library_versions

FORMAT_VERSION = 1
CURVE_FILE = "curve.csv"
RESUME_DIR = ".resume"
HELD_OUT = "heldout"          # the split a fold's own train dialogues get while it is fine-tuned


def split_sha256(table: pd.DataFrame) -> str:
    """16 hex of the sha256 of the corpus' (dialogue, split) pairs: which split each dialogue is in."""
    pairs = sorted(set(zip(table["dialogue_id"], table["split"])))
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]


def crossfit_assignment(table: pd.DataFrame, folds: int, seed: int) -> dict[str, int]:
    """Train dialogue -> fold (0 .. folds-1): a seeded permutation of the sorted dialogue ids dealt
    round-robin, so folds differ by at most one dialogue and a rerun assigns the same folds."""
    dialogues = sorted(set(table.loc[table["split"] == "train", "dialogue_id"]))
    order = np.random.default_rng([seed, folds]).permutation(len(dialogues))
    return {dialogues[j]: position % folds for position, j in enumerate(order)}


def without_fold(table: pd.DataFrame, fold_of: dict[str, int], fold: int) -> pd.DataFrame:
    """``table`` with the train dialogues of ``fold`` moved to the :data:`HELD_OUT` split: what
    that fold's encoder is fine-tuned (and early-stopped on dev) on."""
    held = [dialogue for dialogue, f in fold_of.items() if f == fold]
    out = table.copy()
    out.loc[out["dialogue_id"].isin(held), "split"] = HELD_OUT
    return out


class Classifier(nn.Module):
    """Encoder -> pooled utterance vector -> dropout -> linear head."""

    def __init__(self, encoder: nn.Module, num_classes: int, pooling: str, dropout: float) -> None:
        super().__init__()
        self.encoder, self.pooling = encoder, pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)

    def forward(self, batch: dict, own: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(**batch).last_hidden_state
        return self.head(self.dropout(pool(hidden, own, self.pooling)))


@dataclass
class Examples:
    ids: list[str]
    inputs: list
    labels: np.ndarray


def examples(table: pd.DataFrame, labels: list[str], split: str, turns: int,
             contexts: dict[str, str]) -> Examples:
    """The utterances of ``split`` with text and a label of the set, as the encoder reads them."""
    index = {label: i for i, label in enumerate(labels)}
    rows = table[(table["split"] == split) & table["label"].isin(index)
                 & (table["text"].str.strip() != "")]
    return Examples(rows["utterance_id"].tolist(),
                    [utterance_input(r, turns, contexts) for _, r in rows.iterrows()],
                    rows["label"].map(index).to_numpy())


def _length(item) -> int:
    return len(item) if isinstance(item, str) else len(item[0]) + len(item[1])


def evaluate(model: Classifier, tokenizer, data: Examples, config: FinetuneConfig, device: torch.device
             ) -> dict:
    model.eval()
    predicted = np.zeros(len(data.ids), np.int64)
    with torch.inference_mode():
        for idx in length_batches([_length(x) for x in data.inputs], config.batch_size * 2, sort=True):
            batch, own = tokenize(tokenizer, [data.inputs[i] for i in idx], config.max_length)
            with autocast(device, config.precision):
                logits = model({k: v.to(device) for k, v in batch.items()}, own.to(device))
            predicted[idx] = logits.argmax(-1).cpu().numpy()
    model.train()
    return scores(data.labels, predicted)


class FinetuneTrainee(Trainee):
    """The encoder + head on the engine (:func:`model.engine.fit`): an epoch of length-bucketed
    batches (reshuffled from ``[seed, epoch]``, so a resumed run needs no generator state), AdamW
    steps under the linear schedule (gradients clipped to norm 1, fp16 loss scaling on CUDA), and
    ``evals_per_epoch`` evaluation points on dev."""

    def __init__(self, model: Classifier, tokenizer, train: Examples, dev: Examples, labels: list[str],
                 config: FinetuneConfig, device: torch.device, bar: tqdm) -> None:
        self.model, self.tokenizer, self.train, self.dev = model, tokenizer, train, dev
        self.config, self.device, self.bar = config, device, bar
        self.steps_per_epoch = math.ceil(len(train.ids) / config.batch_size)
        self.optimizer, self.scheduler = _optimizer(model, config, self.steps_per_epoch * config.epochs)
        weights = loss_weights(train.labels, len(labels), config.class_weights, device)
        self.loss_fn = nn.CrossEntropyLoss(weight=weights)
        self.scaler = grad_scaler(device, config.precision)
        self.eval_at = {round(self.steps_per_epoch * k / config.evals_per_epoch): k
                        for k in range(1, config.evals_per_epoch + 1)}
        self.lengths = [_length(x) for x in train.inputs]
        self.trained_on: set[str] = set()
        self.started, self.resumed_s = time.perf_counter(), 0.0

    def train_epoch(self, epoch: int):
        config, model, device = self.config, self.model, self.device
        rng = np.random.default_rng([config.seed, epoch])   # resumable: no state carried over
        torch.manual_seed(config.seed * 1000 + epoch)
        self.bar.n = (epoch - 1) * self.steps_per_epoch
        model.train()
        losses = []
        order = length_batches(self.lengths, config.batch_size, rng, window=50, sort=True)
        for step, idx in enumerate(order, 1):
            self.trained_on.update(self.train.ids[i] for i in idx)
            batch, own = tokenize(self.tokenizer, [self.train.inputs[i] for i in idx], config.max_length)
            self.optimizer.zero_grad(set_to_none=True)
            with autocast(device, config.precision):
                logits = model({k: v.to(device) for k, v in batch.items()}, own.to(device))
            loss = self.loss_fn(logits.float(), torch.from_numpy(self.train.labels[idx]).to(device))
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer_step(self.scaler, self.optimizer, self.scheduler)   # no schedule step if skipped
            losses.append(loss.item())
            self.bar.update(1)
            if step in self.eval_at:
                yield {"step": step, "evaluation": self.eval_at[step], "train_loss": float(np.mean(losses))}

    def evaluate(self) -> dict:
        dev_scores = evaluate(self.model, self.tokenizer, self.dev, self.config, self.device)
        return {"dev_wa_f1": dev_scores["wa_f1"], "dev_wa_acc": dev_scores["wa_acc"],
                "elapsed_s": self.elapsed_s()}

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started + self.resumed_s

    def selectable(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "trained_on": sorted(self.trained_on), "elapsed_s": self.elapsed_s()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.trained_on, self.resumed_s = set(state["trained_on"]), float(state["elapsed_s"])
        self.started = time.perf_counter()


def finetune(table: pd.DataFrame, labels: list[str], config: FinetuneConfig, out_dir: Path, *,
             device: str = "auto", progress: bool = True, log=print,
             stop_at: tuple[int, int] | None = None) -> dict:
    """Fine-tune on ``table``'s train split (a labelled manifest), select on its dev split, write
    ``out_dir``; returns the provenance (``finetune.json``). ``trained_on`` in it lists every
    utterance id that reached the optimiser. ``stop_at`` = (epoch, evaluation within the epoch,
    from 1): no selection, the state at that point is kept (a cross-fitting fold trained for
    as long as the whole-train encoder was selected at)."""
    from transformers import AutoTokenizer

    chosen = pick_device(device)
    source = resolve_model(config.base_model, config.revision)
    kwargs = {"revision": config.revision} if config.revision else {}
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    contexts = dialogue_contexts(table, config.context_turns) if config.context_turns else {}
    train, dev = (examples(table, labels, split, config.context_turns, contexts)
                  for split in ("train", "dev"))
    if not len(train.ids) or not len(dev.ids):
        raise ExtractorError(f"finetune: the manifest has {len(train.ids)} train and {len(dev.ids)} dev "
                             "utterances with text and a label; both are needed")
    if stop_at is not None and not (1 <= stop_at[0] <= config.epochs
                                    and 1 <= stop_at[1] <= config.evals_per_epoch):
        raise ValueError(f"finetune: stop_at={stop_at} is outside {config.epochs} epochs of "
                         f"{config.evals_per_epoch} evaluations")
    run_key = _run_key(config, source, train, dev, labels, stop_at)
    done = _finished(out_dir, run_key)
    if done is not None:
        log(f"finetune: {out_dir} already holds this fine-tuning (same params, base weights and data)")
        return done
    torch.manual_seed(config.seed)
    model = Classifier(load_encoder(source, **kwargs), len(labels), config.pooling,
                       config.dropout).to(chosen)
    steps = math.ceil(len(train.ids) / config.batch_size) * config.epochs
    bar = tqdm(total=steps, unit="batch", disable=not progress, mininterval=2.0,
               desc=f"finetune {Path(source).name or source}")
    trainee = FinetuneTrainee(model, tokenizer, train, dev, labels, config, chosen, bar)

    def report(point: dict, _) -> None:
        bar.set_postfix(dev_wa_f1=f"{point['dev_wa_f1']:.4f}")
        log(f"finetune epoch {point['epoch']} step {point['step']}/{trainee.steps_per_epoch}: loss "
            f"{point['train_loss']:.4f} dev wa-F1 {point['dev_wa_f1']:.4f} acc {point['dev_wa_acc']:.4f}")

    fitted = fit(trainee, config.epochs, select="dev_wa_f1", patience=config.patience, stop_at=stop_at,
                 best_keys=("epoch", "step", "evaluation", "dev_wa_f1", "dev_wa_acc"),
                 resume_dir=out_dir / RESUME_DIR, run_key=run_key, save_every_s=0,
                 log=lambda line: log(f"finetune: {line}"), on_point=report)
    bar.close()
    model.load_state_dict(fitted.best_state)
    provenance = _write_output(out_dir, model, tokenizer, config, source, table, labels, train, dev,
                               fitted.progress, sorted(trainee.trained_on), chosen, run_key)
    finish(out_dir / RESUME_DIR)
    return {**provenance, "minutes": fitted.progress.elapsed_s / 60}   # for the log, never written


def finetune_with_folds(table: pd.DataFrame, labels: list[str], config: FinetuneConfig, out_dir: Path, *,
                        folds: int = 0, device: str = "auto", progress: bool = True, log=print) -> dict:
    """:func:`finetune` on the whole train split into ``out_dir`` and, ``folds`` > 1, once per fold
    of train dialogues with that fold held out (:func:`without_fold`) into ``crossfit/fold_<i>``.
    A fold encoder is trained for exactly as long as the whole-train one was selected at (same
    params and schedule, no selection of its own), so that its features on the dialogues it
    never saw stand in for the whole-train encoder's on dev and test. The provenance gains
    ``crossfit``: the fold of every train dialogue and each fold encoder's weights digest."""
    crossfit = out_dir / CROSSFIT_DIR
    if folds < 2:
        shutil.rmtree(crossfit, ignore_errors=True)   # a crossfit left by an earlier run is not this one
        provenance = finetune(table, labels, config, out_dir, device=device, progress=progress, log=log)
        if provenance.pop("crossfit", None) is not None:
            (out_dir / FINETUNE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        return provenance
    fold_of = crossfit_assignment(table, folds, config.seed)
    if len(fold_of) < folds:
        raise ExtractorError(f"finetune.crossfit_folds={folds}: the manifest has only {len(fold_of)} "
                             "train dialogues; use fewer folds (or 0)")
    provenance = finetune(table, labels, config, out_dir, device=device, progress=progress, log=log)
    selected = provenance["selected"]
    stop_at = (selected["epoch"], selected["evaluation"])
    runs = []
    for fold in range(folds):
        held = sum(f == fold for f in fold_of.values())
        log(f"finetune: cross-fitting fold {fold + 1}/{folds} ({held} train dialogues held out), "
            f"trained to epoch {stop_at[0]}, evaluation {stop_at[1]} as the whole-train encoder")
        runs.append(finetune(without_fold(table, fold_of, fold), labels, config, crossfit / f"fold_{fold}",
                             device=device, progress=progress, log=log, stop_at=stop_at))
    for stale in set(crossfit.iterdir()) - {crossfit / f"fold_{f}" for f in range(folds)}:
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    provenance["crossfit"] = {
        "folds": folds, "fold_of": fold_of, "stop_at": list(stop_at),
        "weights_sha256": [weights_digest(str(crossfit / f"fold_{f}")) for f in range(folds)],
        "selected": [run["selected"] for run in runs]}
    written = {k: v for k, v in provenance.items() if k != "minutes"}
    (out_dir / FINETUNE_FILE).write_text(json.dumps(written, indent=2) + "\n")
    provenance["crossfit_minutes"] = [run.get("minutes") for run in runs]   # for the log only
    return provenance


def _finished(out_dir: Path, run_key: str) -> dict | None:
    """The provenance of a finished fine-tuning of ``run_key`` in ``out_dir``, else None."""
    path = out_dir / FINETUNE_FILE
    if not path.is_file():
        return None
    provenance = json.loads(path.read_text())
    if provenance.get("run_key") != run_key or not list(out_dir.glob("*.safetensors")):
        return None
    return provenance


def _optimizer(model: nn.Module, config: FinetuneConfig, total_steps: int):
    """AdamW (no decay on biases and norms) with linear warm-up then linear decay to 0."""
    from transformers import get_linear_schedule_with_warmup

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    named = list(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": config.weight_decay},
         {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0}], lr=config.lr)
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps),
                                                      total_steps)


def _run_key(config: FinetuneConfig, source: str, train: Examples, dev: Examples, labels: list[str],
             stop_at: tuple[int, int] | None) -> str:
    """What a resumed run must share with the interrupted one: params, base weights, data."""
    data = json.dumps([asdict(config), source, weights_digest(source), labels, train.ids,
                       train.labels.tolist(), dev.ids, stop_at], default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _write_output(out_dir: Path, model: Classifier, tokenizer, config: FinetuneConfig, source: str,
                  table: pd.DataFrame, labels: list[str], train: Examples, dev: Examples, state: Progress,
                  trained_on: list[str], device: torch.device, run_key: str) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.iterdir():
        if old.name not in (RESUME_DIR, CROSSFIT_DIR):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    encoder = copy.deepcopy(model.encoder).cpu()
    encoder.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    dialogue_of = dict(zip(table["utterance_id"], table["dialogue_id"]))
    provenance = {
        "enabled": True, "format_version": FORMAT_VERSION,
        "base_model": config.base_model,
        "base_identity": {"weights_sha256": weights_digest(source),
                          "revision": config.revision or getattr(encoder.config, "_commit_hash", None)},
        "corpus": sorted(set(table["corpus"]))[0] if len(table) else "", "labels": labels,
        "split_sha256": split_sha256(table),
        "train_dialogues": sorted({dialogue_of[u] for u in trained_on}),
        "train_utterances": len(train.ids), "dev_utterances": len(dev.ids),
        "params": asdict(config), "selected": state.best, "device": str(device),
        "libraries": library_versions("transformers"),
        "trained_on": trained_on, "run_key": run_key,
    }
    (out_dir / FINETUNE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    with open(out_dir / CURVE_FILE, "w", newline="") as fh:   # seconds: measurements, not results
        writer = csv.DictWriter(fh, fieldnames=[k for k in state.curve[0] if k != "elapsed_s"],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(state.curve)
    return provenance


def write_disabled(out_dir: Path) -> None:
    """The stage's output when fine-tuning is off: a ``finetune.json`` saying so, no model."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    (out_dir / FINETUNE_FILE).write_text(json.dumps({"enabled": False}, indent=2) + "\n")
