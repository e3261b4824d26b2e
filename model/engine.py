"""One training engine for every trainer of the project: the AMB-DSGDN trainer
(:mod:`model.training`) and the text-encoder fine-tuning (:mod:`extractors.text.finetune`), and
the next model with its own losses and optimiser steps.

:func:`fit` owns what every training shares: epochs, dev evaluations at points a trainer chooses
(one per epoch, or several), selection on dev only (the first strictly best point wins), the
curve (one row per evaluation), the selected state, optional patience, a fixed stopping point (a
cross-fitting fold stops where the whole-train run was selected), and resume after a kill: with a
``resume_dir`` the progress, the trainer's state and the selected state are saved together at the
end of an epoch (one file, written aside then renamed; at most every ``save_every_s`` seconds, so
that short epochs do not spend their time writing), and a run of the same ``run_key`` continues
from the last saved epoch to the same bytes an uninterrupted run gives.

A trainer plugs in as a :class:`Trainee`: its optimiser steps for one epoch (a generator that
yields at each evaluation point the training statistics so far, so that an adversarial model can
alternate generator and discriminator updates inside it), its dev evaluation, the state to keep
when a point is the best, and everything needed to continue after a kill (weights, optimisers,
schedulers, loss scalers, random generators).
"""
from __future__ import annotations

import json
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from config.paths import atomic_file

STATE, PROGRESS = "state.pt", "state.json"   # the state; the progress again, for people


class Trainee(ABC):
    """What a trainer brings to :func:`fit`."""

    @abstractmethod
    def train_epoch(self, epoch: int) -> Iterator[dict]:
        """Run epoch ``epoch``'s optimiser steps (from 1); at each evaluation point yield the
        training statistics (e.g. ``train_loss``) that open that point's curve row. Closed early
        (patience, a stopping point) when the engine stops."""

    @abstractmethod
    def evaluate(self) -> dict:
        """Dev scores (the selection key among them) and the rest of the curve row."""

    @abstractmethod
    def selectable(self) -> dict[str, torch.Tensor]:
        """The state kept when the current point is the best (the model's weights)."""

    @abstractmethod
    def state_dict(self) -> dict:
        """Everything to continue after a kill (read back weights-only: tensors, numbers, strings,
        lists and dicts of them)."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class Progress:
    """What a resumed run carries over (``state.json``)."""

    epoch: int = 0                                   # last finished epoch
    curve: list[dict] = field(default_factory=list)  # one row per dev evaluation
    best: dict | None = None                         # the selected point so far
    waited: int = 0                                  # evaluations since the best
    stopped: bool = False                            # patience ran out, or the stopping point
    elapsed_s: float = 0.0


@dataclass
class Fitted:
    """The outcome of :func:`fit`: its progress and the selected point's state."""

    progress: Progress
    best_state: dict[str, torch.Tensor]


def fit(trainee: Trainee, epochs: int, *, select: str = "dev_wa_f1", patience: int = 0,
        stop_at: tuple[int, int] | None = None, best_keys: Sequence[str] | None = None,
        resume_dir: Path | None = None, run_key: str = "", save_every_s: float = 60.0,
        log: Callable[[str], None] = print,
        on_point: Callable[[dict, Progress], None] | None = None) -> Fitted:
    """Train ``trainee`` for ``epochs``, select on ``select`` (dev).

    Args:
        patience: stop after this many evaluations without a better ``select`` (0: never).
        stop_at: ``(epoch, evaluation)``: evaluate there only, keep that state, stop (no selection).
        best_keys: the keys of the selected point to keep in :attr:`Progress.best` (default all).
        resume_dir: where progress is saved after each epoch and read back by a run of the same
            ``run_key`` (another key: the stale state is removed and the run starts afresh).
        save_every_s: the least seconds between two saves (0: after every epoch).
        on_point: called with each new curve row (logging, progress bars).
    """
    started = saved = time.perf_counter()
    progress, best_state = _resume(trainee, resume_dir, run_key, log)
    resumed_s = progress.elapsed_s
    for epoch in range(progress.epoch + 1, epochs + 1):
        if progress.stopped:
            break
        points = trainee.train_epoch(epoch)
        for evaluation, stats in enumerate(points, 1):
            if stop_at is not None and (epoch, evaluation) != tuple(stop_at):
                continue
            point = {"epoch": epoch, **stats, **trainee.evaluate()}
            progress.curve.append(point)
            if on_point is not None:
                on_point(point, progress)
            if stop_at is not None or progress.best is None or point[select] > progress.best[select]:
                progress.best = {k: point[k] for k in best_keys} if best_keys else dict(point)
                progress.waited = 0
                best_state = {k: v.detach().cpu().clone() for k, v in trainee.selectable().items()}
            else:
                progress.waited += 1
                if patience and progress.waited >= patience:
                    log(f"no dev improvement in {progress.waited} evaluations: stopping")
                    progress.stopped = True
            if progress.stopped or stop_at is not None:
                progress.stopped = True
                points.close()
                break
        progress.epoch = epoch
        progress.elapsed_s = time.perf_counter() - started + resumed_s
        if resume_dir is not None and epoch < epochs and time.perf_counter() - saved >= save_every_s:
            meta = json.dumps({"run_key": run_key, **asdict(progress)}, default=float)
            _save(resume_dir, STATE, {"trainee": trainee.state_dict(), "best": best_state, "progress": meta})
            _write_text(resume_dir / PROGRESS, meta)
            saved = time.perf_counter()
    if progress.best is None:
        raise ValueError("fit: no dev evaluation happened (no epoch ran, or the stopping point "
                         "was never reached)")
    progress.elapsed_s = time.perf_counter() - started + resumed_s
    return Fitted(progress, best_state)


def saved_epoch(resume_dir: Path | None) -> int | None:
    """The last finished epoch a resume state in ``resume_dir`` holds (None: none there)."""
    if resume_dir is None or not (resume_dir / STATE).is_file() or not (resume_dir / PROGRESS).is_file():
        return None
    try:
        return int(json.loads((resume_dir / PROGRESS).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def finish(resume_dir: Path | None) -> None:
    """Remove a finished run's resume state (its outputs are written)."""
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)


def _resume(trainee: Trainee, resume_dir: Path | None, run_key: str,
            log: Callable[[str], None]) -> tuple[Progress, dict]:
    if resume_dir is None or not (resume_dir / STATE).is_file():
        return Progress(), {}
    saved = torch.load(resume_dir / STATE, map_location="cpu", weights_only=True)
    meta = json.loads(saved["progress"])
    if meta.pop("run_key", None) != run_key:
        log(f"{resume_dir}: an interrupted run of other params or data is in the way: starting afresh")
        shutil.rmtree(resume_dir)
        return Progress(), {}
    trainee.load_state_dict(saved["trainee"])
    progress = Progress(**meta)
    log(f"resuming after epoch {progress.epoch} (best so far: {progress.best})")
    return progress, saved["best"]


def _save(folder: Path, name: str, state: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_file(folder / name) as fh:
        torch.save(state, fh)


def _write_text(path: Path, text: str) -> None:
    with atomic_file(path, "w") as fh:
        fh.write(text)
