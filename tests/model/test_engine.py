"""The one training engine (model.engine.fit) with a small trainee: selection on dev only, patience,
a fixed stopping point, and resume after a kill to the same bytes as an uninterrupted run."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from model.engine import PROGRESS, STATE, Trainee, finish, fit


class Killed(Exception):
    pass


class Regression(Trainee):
    """A linear model on noisy data: shuffled batches from a numpy generator, dropout from torch's
    global generator (both must carry over a resume), ``evals`` dev evaluations per epoch."""

    def __init__(self, seed: int = 0, evals: int = 1, kill_at: tuple[int, int] | None = None,
                 dev_scores: list[float] | None = None):
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.x = torch.from_numpy(self.rng.normal(size=(64, 5)).astype(np.float32))
        self.y = self.x @ torch.arange(5.0) + 0.1
        self.model = nn.Sequential(nn.Dropout(0.2), nn.Linear(5, 1))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.05)
        self.evals, self.kill_at, self.dev_scores = evals, kill_at, dev_scores
        self.calls, self.epoch, self.evaluation = 0, 0, 0

    def train_epoch(self, epoch):
        self.model.train()
        order = self.rng.permutation(64)
        for k, chunk in enumerate(np.array_split(order, self.evals), 1):
            losses = []
            for idx in np.array_split(chunk, 4):
                self.optimizer.zero_grad()
                loss = ((self.model(self.x[idx]).squeeze(1) - self.y[idx]) ** 2).mean()
                loss.backward()
                self.optimizer.step()
                losses.append(loss.item())
            self.epoch, self.evaluation = epoch, k
            yield {"evaluation": k, "train_loss": float(np.mean(losses))}

    def evaluate(self):
        if self.kill_at == (self.epoch, self.evaluation):
            raise Killed
        self.calls += 1
        if self.dev_scores is not None:
            return {"dev_wa_f1": self.dev_scores[self.calls - 1]}
        self.model.eval()
        with torch.no_grad():
            error = ((self.model(self.x).squeeze(1) - self.y) ** 2).mean().item()
        return {"dev_wa_f1": -error}

    def selectable(self):
        return self.model.state_dict()

    def state_dict(self):
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(), "numpy_rng": json.dumps(self.rng.bit_generator.state)}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.rng.bit_generator.state = json.loads(state["numpy_rng"])


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("evals", [1, 3])
def test_a_killed_run_resumes_to_the_same_state_and_curve(tmp_path, evals):
    whole = fit(Regression(evals=evals), 6, log=lambda _: None)
    with pytest.raises(Killed):
        fit(Regression(evals=evals, kill_at=(4, evals)), 6, resume_dir=tmp_path, run_key="k",
            save_every_s=0, log=lambda _: None)
    assert json.loads((tmp_path / PROGRESS).read_text())["epoch"] == 3   # the last finished epoch
    logged = []
    resumed = fit(Regression(evals=evals), 6, resume_dir=tmp_path, run_key="k", save_every_s=0, log=logged.append)
    assert logged[0].startswith("resuming after epoch 3")
    assert resumed.progress.curve == whole.progress.curve and resumed.progress.best == whole.progress.best
    assert same(resumed.best_state, whole.best_state) and len(whole.progress.curve) == 6 * evals
    finish(tmp_path)
    assert not tmp_path.exists()


def test_the_state_of_another_run_is_not_resumed(tmp_path):
    with pytest.raises(Killed):
        fit(Regression(kill_at=(3, 1)), 5, resume_dir=tmp_path, run_key="a", save_every_s=0, log=lambda _: None)
    logged = []
    other = fit(Regression(), 5, resume_dir=tmp_path, run_key="b", save_every_s=0, log=logged.append)
    assert "other params or data" in logged[0] and len(other.progress.curve) == 5
    assert same(other.best_state, fit(Regression(), 5, log=lambda _: None).best_state)


def test_saving_is_throttled_and_skipped_after_the_last_epoch(tmp_path):
    fit(Regression(), 4, resume_dir=tmp_path, run_key="k", save_every_s=3600, log=lambda _: None)
    assert not (tmp_path / STATE).exists()      # never 3600 s between two epochs here
    fit(Regression(), 4, resume_dir=tmp_path / "each", run_key="k", save_every_s=0, log=lambda _: None)
    assert json.loads((tmp_path / "each" / PROGRESS).read_text())["epoch"] == 3


def test_selection_is_the_first_strictly_best_dev_point_and_patience_stops():
    scores = [0.1, 0.3, 0.3, 0.2, 0.25, 0.5, 0.9]
    fitted = fit(Regression(dev_scores=scores), 7, log=lambda _: None)
    assert fitted.progress.best["epoch"] == 7
    stopped = fit(Regression(dev_scores=scores), 7, patience=3, best_keys=("epoch", "dev_wa_f1"),
                  log=lambda _: None)
    assert stopped.progress.best == {"epoch": 2, "dev_wa_f1": 0.3}   # epoch 3 ties: not better
    assert stopped.progress.stopped and len(stopped.progress.curve) == 5


def test_a_stopping_point_evaluates_once_and_keeps_that_state():
    trainee = Regression(evals=2)
    fitted = fit(trainee, 5, stop_at=(3, 1), log=lambda _: None)
    assert [(p["epoch"], p["evaluation"]) for p in fitted.progress.curve] == [(3, 1)]
    assert trainee.calls == 1 and fitted.progress.stopped
    assert same(fitted.best_state, trainee.model.state_dict())
    with pytest.raises(ValueError, match="no dev evaluation happened"):
        fit(Regression(), 2, stop_at=(3, 1), log=lambda _: None)
