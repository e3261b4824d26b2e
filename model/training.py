"""Training AMB-DSGDN on cached features: one run per seed, model selection on dev only.

Per epoch: shuffled dialogue batches; after ``warm_up_epochs`` the adaptive modality dropout
(Alg. 2) masks the hidden representations between the graph blocks and the heads, with each
modality's performance (Eq. 19) taken from its head on the same forward pass (as the public code
does); the loss is Eq. 33. Curves record the mean drop rate ``q_<modality>`` of each epoch. Then
dev is scored (selection) and test is scored too, only to report the reference implementation's
protocol (best test epoch), never to select.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from config.model import ModelConfig
from config.train import TrainConfig
from model.ambdsgdn import AMBDSGDN
from model.class_weights import loss_weights
from model.classifier import total_loss
from model.data import BUCKET, Batch, Dialogue, batches, collate, length_batches
from model.device import autocast, grad_scaler, optimizer_step, pick_device
from model.distributed import World, all_gather, average_gradients
from model.engine import Progress, Trainee, finish, fit, saved_epoch
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
            parts["gold"].append(b.labels[b.real].cpu().numpy())
            for key in ("fused", *model.modalities):
                parts.setdefault(key, []).append(out[key][b.real].float().cpu().numpy())
            for m in model.modalities:
                parts.setdefault(f"present_{m}", []).append(b.present[m][b.real].cpu().numpy())
    joined = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    return Inference(joined["rows"], joined["gold"], joined["fused"],
                     {m: joined[m] for m in model.modalities},
                     {m: joined[f"present_{m}"] for m in model.modalities})


def predict(model: AMBDSGDN, items: list[Dialogue], matrices, present, batch_size: int,
            device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predictions) over every labelled utterance of ``items`` (an unlabelled context
    utterance, label -1, is no test item)."""
    out = infer(model, items, matrices, present, batch_size, device)
    labelled = out.gold >= 0
    return out.gold[labelled], out.predicted[labelled]


def rank_batches(items: list[Dialogue], batch_size: int, matrices, present, rng: np.random.Generator,
                 world: World) -> Iterator[Batch | None]:
    """The training batches of :func:`model.data.batches`; with data parallelism (``world``) every
    rank draws the same batches (the same seed) and keeps its share of each one's dialogues
    (:meth:`World.shard`), None where that share is empty (the rank still joins the step)."""
    if world.size == 1:
        yield from batches(items, batch_size, matrices, present, rng)
        return
    for group in length_batches([len(d.rows) for d in items], batch_size, rng, window=BUCKET):
        mine = world.shard(list(group))
        yield collate([items[i] for i in mine], matrices, present) if mine else None


class AMBDSGDNTrainee(Trainee):
    """One seed of AMB-DSGDN on the engine (:func:`model.engine.fit`): an epoch of shuffled
    dialogue batches (Alg. 2 after the warm-up), then one dev evaluation per epoch; the curve row
    adds the reference protocol's test score (never selected on), the mean drop rate ``q_<m>`` of
    each modality and the epoch's seconds."""

    architecture: type[torch.nn.Module] = AMBDSGDN
    data_parallel = True     # train_epoch shares each batch's dialogues among the ranks of ``world``

    def __init__(self, seed: int, model_config, config: TrainConfig,
                 splits: dict[str, list[Dialogue]], matrices, present,
                 trainable_rows: np.ndarray | None = None, reference_protocol: bool = True, *,
                 world: World = World()) -> None:
        if world.size > 1 and not self.data_parallel:
            raise ValueError(f"train.parallel=dialogues: {self.architecture.__name__}'s trainer has no "
                             f"data-parallel mode; use train.parallel=seeds (docs/parallel.md)")
        self.world = world                  # data parallelism over dialogues (size 1: none)
        self.rng = set_seed(seed)
        self.device = pick_device(config.device)
        self.model = self.architecture(model_config).to(self.device)
        self.optimizer = torch.optim.Adam(self.optimized_parameters(), lr=config.lr,
                                          weight_decay=config.weight_decay)
        weights = loss_weights(np.concatenate([d.labels for d in splits["train"]]), model_config.num_classes,
                               config.class_weights)
        self.weights = weights.to(self.device) if weights is not None else None
        self.scaler = grad_scaler(self.device, config.precision)
        self.generator = torch.Generator().manual_seed(seed)
        self.config, self.splits, self.matrices, self.present = config, splits, matrices, present
        self.trainable_rows, self.reference_protocol = trainable_rows, reference_protocol
        self.trained_on: set[str] = set()
        self.started, self.q = 0.0, {}

    def optimized_parameters(self) -> list[torch.nn.Parameter]:
        """What the main optimiser steps (all of the model's parameters here)."""
        return list(self.model.parameters())

    def dropout_active(self, epoch: int) -> bool:
        return (self.config.modality_dropout and epoch > self.config.warm_up_epochs
                and len(self.model.modalities) > 1)

    def train_epoch(self, epoch: int) -> Iterator[dict]:
        model, config, device = self.model, self.config, self.device
        self.started = time.perf_counter()
        model.train()
        losses, q_sum, q_batches = [], np.zeros(len(model.modalities)), 0
        for b, scored in self.train_batches():
            labels, present = b.labels, b.present
            self.optimizer.zero_grad(set_to_none=True)
            with autocast(device, config.precision):
                hidden = model.encode(b.features, b.speakers, b.lengths, present)
                logits = model.classify(hidden)
                if self.dropout_active(epoch):    # Alg. 2 on the hidden representations
                    dropped = adaptive_modality_dropout(
                        [hidden[m] for m in model.modalities], [logits[m] for m in model.modalities],
                        labels, [scored & present[m] for m in model.modalities], q_base=config.q_base,
                        lam=config.lam, p_exe=config.p_exe, rule=config.q_rule, metric=config.p_metric,
                        generator=self.generator)
                    q_batches += 1
                    q_sum += dropped.q.cpu().numpy()
                    if dropped.applied:
                        kept = dropped.kept
                        if len(kept) == 0:
                            self.idle_step()
                            continue
                        hidden = dict(zip(model.modalities, dropped.features))
                        logits = model.classify(hidden)
                        labels, scored = labels[kept], scored[kept]
                        present = {m: x[kept] for m, x in present.items()}
            loss, _ = total_loss({m: z.float() for m, z in logits.items()}, labels, scored, self.weights,
                                 present, model.fusion_weights)
            self.scaler.scale(loss).backward()
            average_gradients(self.optimized_parameters(), self.world)
            optimizer_step(self.scaler, self.optimizer)
            losses.append(loss.item())
        self.q = {f"q_{m}": float(q_sum[i] / max(q_batches, 1)) for i, m in enumerate(model.modalities)}
        yield {"train_loss": float(np.mean(losses)) if losses else float("nan")}

    def train_batches(self) -> Iterator[tuple[Batch, torch.Tensor]]:
        """One epoch of this rank's training batches (:func:`rank_batches`), on the device, each with
        its (B, L) mask of the utterances the loss scores; an empty share takes an idle step."""
        for b in rank_batches(self.splits["train"], self.config.batch_size, self.matrices, self.present,
                              self.rng, self.world):
            if b is None:                 # this rank's share of the batch is empty
                self.idle_step()
                continue
            self.trained_on.update(b.dialogue_ids)
            b = b.to(self.device)
            scored = b.real & (b.labels >= 0)       # -1: an unlabelled context utterance
            if self.trainable_rows is not None:
                scored = scored & _trainable(b, self.trainable_rows, self.device)
            yield b, scored

    def idle_step(self) -> None:
        """A step without utterances to learn from: none alone; with data parallelism, zero
        gradients into the ranks' exchange (every rank steps as often as the others)."""
        if self.world.size > 1:
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(torch.zeros((), device=self.device, requires_grad=True)).backward()
            average_gradients(self.optimized_parameters(), self.world)
            optimizer_step(self.scaler, self.optimizer)

    def evaluate(self) -> dict:
        size, device = self.config.batch_size, self.device
        dev = scores(*predict(self.model, self.splits["dev"], self.matrices, self.present, size, device))
        test = (scores(*predict(self.model, self.splits["test"], self.matrices, self.present, size, device))
                if self.reference_protocol else {"wa_f1": float("nan")})
        return {"dev_wa_f1": dev["wa_f1"], "dev_wa_acc": dev["wa_acc"],
                "test_wa_f1_reference_protocol_only": test["wa_f1"], **self.q,
                "epoch_s": time.perf_counter() - self.started}

    def selectable(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def state_dict(self) -> dict:
        cuda = self.device.type == "cuda"
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if cuda else None,
                "generator": self.generator.get_state(),
                "numpy_rng": json.dumps(self.rng.bit_generator.state),
                "trained_on": sorted(self.trained_on)}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = json.loads(state["numpy_rng"])
        self.trained_on = set(state["trained_on"])


def train_one(seed: int, model_config: ModelConfig, config: TrainConfig, splits: dict[str, list[Dialogue]],
              matrices, present, trainable_rows: np.ndarray | None = None, log=print,
              reference_protocol: bool = True, resume_dir: Path | None = None,
              save_every_s: float = 60.0, world: World = World()) -> RunResult:
    """Train one seed on the engine; return the dev-selected checkpoint and per-epoch curves.
    Without ``reference_protocol`` the test split is never scored (its curve column is NaN).
    With ``resume_dir``, a killed run continues from its last finished epoch to the same result.
    ``world``: data parallelism over dialogues (each rank a share of every batch, gradients
    averaged; every rank evaluates dev alike and ends with the same weights)."""
    trainee = trainee_class(model_config)(seed, model_config, config, splits, matrices, present,
                                          trainable_rows, reference_protocol, world=world)
    if world.size > 1 and resume_dir is not None:
        resume_dir = resume_dir / f"rank_{world.rank}_of_{world.size}"   # each rank's generators
        save_every_s = 0.0           # every rank saves after every epoch: the ranks' states agree
        if len(set(all_gather(saved_epoch(resume_dir), world))) > 1:     # a kill between two saves
            log(f"{resume_dir}: the ranks' resume states are of different epochs: starting afresh")
            shutil.rmtree(resume_dir, ignore_errors=True)

    def report(row: dict, progress: Progress) -> None:
        eta = np.mean([r["epoch_s"] for r in progress.curve]) * (config.epochs - row["epoch"])
        log(f"seed {seed} epoch {row['epoch']:3d}/{config.epochs}: loss {row['train_loss']:.4f} "
            f"dev wa-F1 {row['dev_wa_f1']:.4f} acc {row['dev_wa_acc']:.4f} ({row['epoch_s']:.2f} s, "
            f"seed ETA {eta:.0f} s)")

    key = run_key(seed, model_config, config, splits, matrices, present, trainable_rows, reference_protocol)
    fitted = fit(trainee, config.epochs, select="dev_wa_f1", resume_dir=resume_dir, run_key=key,
                 save_every_s=save_every_s, log=world.main_log(log),
                 on_point=report if world.main else None)
    best = fitted.progress.best
    checkpoint = {"model": trainee.model.name, "state_dict": fitted.best_state,
                  "model_config": model_config.to_dict(), "selected_epoch": best["epoch"],
                  "dev_wa_f1": best["dev_wa_f1"], "seed": seed,
                  "train_dialogues": sorted(trainee.trained_on)}   # what reached the optimiser (provenance)
    if world.size > 1:      # what reached the optimiser on any rank
        checkpoint["train_dialogues"] = sorted({d for part in all_gather(checkpoint["train_dialogues"], world)
                                                for d in part})
    finish(resume_dir)
    if world.size > 1 and resume_dir is not None:
        with contextlib.suppress(OSError):    # the seed's folder, once the last rank's is gone
            resume_dir.parent.rmdir()
    return RunResult(seed, checkpoint, [{"seed": seed, **row} for row in fitted.progress.curve])


def trainee_class(model_config) -> type[Trainee]:
    """The trainer of the model ``model_config`` configures: the model class's ``trainee``
    (``"module:Class"``, imported now), AMB-DSGDN's by default."""
    import importlib

    from model import MODELS

    architecture = next(MODELS.get(name) for name in MODELS.names()
                        if MODELS.get(name).config_class is type(model_config))
    module, _, attribute = getattr(architecture, "trainee", "model.training:AMBDSGDNTrainee").partition(":")
    return getattr(importlib.import_module(module), attribute)


def run_key(seed: int, model_config: ModelConfig, config: TrainConfig, splits: dict[str, list[Dialogue]],
            matrices, present, trainable_rows, reference_protocol: bool) -> str:
    """What a resumed run must share with the killed one: seed, configs, splits and the inputs."""
    digest = hashlib.sha256(json.dumps(
        [seed, model_config.to_dict(), asdict(config), reference_protocol,
         {s: [d.dialogue_id for d in items] for s, items in splits.items()}], default=str).encode())
    for name in sorted(matrices):       # the arrays' buffers, without copying them
        digest.update(np.ascontiguousarray(matrices[name]))
        digest.update(np.ascontiguousarray(present[name]))
    if trainable_rows is not None:
        digest.update(np.ascontiguousarray(trainable_rows))
    return digest.hexdigest()[:16]


def _trainable(b: Batch, trainable_rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, L) bool: utterances allowed in the training loss (``on_failure: drop`` removes some)."""
    out = torch.zeros_like(b.real)
    for i, rows in enumerate(b.rows):
        out[i, : len(rows)] = torch.from_numpy(trainable_rows[rows]).to(device)
    return out
