"""AR-IIGCN: shapes with any subset of modalities, absent modalities, and training on the engine
(the discriminators and the rest stepped apart; a text-only run has no GAN and no IMCL)."""
import numpy as np
import pandas as pd
import pytest
import torch

from config.ar_iigcn import ARIIGCNConfig
from config.train import TrainConfig
from model.ar_iigcn import ARIIGCN
from model.data import dialogues
from model.training import train_one, trainee_class

DIMS = {"text": 6, "audio": 4, "visual": 5}


def test_outputs_for_three_modalities_and_for_one():
    torch.manual_seed(0)
    lengths = torch.tensor([5, 2])
    speakers = torch.tensor([[0, 1, 0, 1, 1], [1, 0, 0, 0, 0]])
    feats = {m: torch.randn(2, 5, d) for m, d in DIMS.items()}
    present = {m: torch.ones(2, 5, dtype=torch.bool) for m in DIMS}
    present["audio"][0, 1] = False
    model = ARIIGCN(ARIIGCNConfig(dict(DIMS), 3, d_hidden=8, disc_hidden=4)).eval()
    out = model(feats, speakers, lengths, present)
    assert out["fused"].shape == (2, 5, 3) and all(out[m].shape == (2, 5, 3) for m in DIMS)
    assert torch.allclose(out["fused"].exp().sum(-1), torch.ones(2, 5))
    encoded = model.encode(feats, speakers, lengths, present)
    assert not encoded["nodes"]["audio"][0, 1].any()              # an absent utterance is no node
    assert model.gan is not None and set(encoded["generated"]) == set(DIMS)
    text_only = ARIIGCN(ARIIGCNConfig({"text": 6}, 3, d_hidden=8)).eval()
    assert text_only.gan is None
    assert text_only({"text": feats["text"]}, speakers, lengths)["fused"].shape == (2, 5, 3)


@pytest.fixture
def conversations():
    rng = np.random.default_rng(0)
    lengths = [6, 5, 7, 4, 6, 5, 8, 3]
    n = sum(lengths)
    table = pd.DataFrame({
        "dialogue_id": [f"d{i}" for i, k in enumerate(lengths) for _ in range(k)],
        "turn": [t for k in lengths for t in range(k)],
        "speaker_idx": [t % 2 for k in lengths for t in range(k)],
        "label": [["a", "b"][(t // 2) % 2] for k in lengths for t in range(k)]})
    labels = table["label"].map({"a": 0, "b": 1}).to_numpy()
    matrices = {m: (rng.normal(size=(n, d)) + labels[:, None] * 1.5).astype(np.float32) for m, d in DIMS.items()}
    present = {m: np.ones(n, bool) for m in DIMS}
    items = dialogues(table, ["a", "b"], None)
    return {"train": items[:5], "dev": items[5:6], "test": items[6:]}, matrices, present


def run(conversations, modalities, epochs=8):
    splits, matrices, present = conversations
    config = TrainConfig(epochs=epochs, batch_size=2, lr=5e-3, device="cpu", class_weights="none")
    model_config = ARIIGCNConfig({m: DIMS[m] for m in modalities}, 2, d_hidden=16, disc_hidden=8, window=3)
    return train_one(0, model_config, config, splits, {m: matrices[m] for m in modalities},
                     {m: present[m] for m in modalities}, log=lambda _: None, save_every_s=0)


def test_training_on_the_engine_steps_every_part_and_learns(conversations):
    assert trainee_class(ARIIGCNConfig({"text": 6}, 2)).__name__ == "ARIIGCNTrainee"
    result = run(conversations, list(DIMS))
    first, last = result.curves[0], result.curves[-1]
    assert {"disc_loss", "gen_loss", "iccl", "imcl", "class_loss", "train_loss"} <= set(first)
    assert last["class_loss"] < first["class_loss"]       # the total holds the adversarial term too
    assert max(r["dev_wa_f1"] for r in result.curves) > 0.7            # the labels show in the features
    assert result.checkpoint["model"] == "ar_iigcn"
    again = run(conversations, list(DIMS))
    assert [r["train_loss"] for r in again.curves] == [r["train_loss"] for r in result.curves]   # seeded


def test_a_text_only_run_has_no_gan_and_no_imcl(conversations):
    result = run(conversations, ["text"], epochs=2)
    assert "disc_loss" not in result.curves[0] and "imcl" not in result.curves[0]
    assert "iccl" in result.curves[0]


def test_a_killed_run_resumes_to_the_same_curves_and_weights(conversations, tmp_path, monkeypatch):
    """The discriminators' optimiser is part of the saved state: killed in epoch 3, resumed, the
    run ends where an uninterrupted one does."""
    from model.ar_iigcn_training import ARIIGCNTrainee

    splits, matrices, present = conversations
    config = TrainConfig(epochs=4, batch_size=2, lr=5e-3, device="cpu", class_weights="none")
    model_config = ARIIGCNConfig(dict(DIMS), 2, d_hidden=16, disc_hidden=8, window=3)

    def train(resume_dir=None):
        return train_one(0, model_config, config, splits, matrices, present, log=lambda _: None,
                         resume_dir=resume_dir, save_every_s=0)

    whole = train()
    evaluate, calls = ARIIGCNTrainee.evaluate, []

    def killed(self):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return evaluate(self)

    monkeypatch.setattr(ARIIGCNTrainee, "evaluate", killed)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "resume")
    monkeypatch.undo()
    resumed = train(tmp_path / "resume")
    strip = [{k: v for k, v in r.items() if k != "epoch_s"} for r in whole.curves]
    assert [{k: v for k, v in r.items() if k != "epoch_s"} for r in resumed.curves] == strip
    assert all(torch.equal(t, resumed.checkpoint["state_dict"][k]) for k, t in whole.checkpoint["state_dict"].items())
