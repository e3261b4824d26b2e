import numpy as np
import pandas as pd
import pytest
import torch

from config.model import ModelConfig
from model.ambdsgdn import AMBDSGDN
from model.data import dialogues
from model.training import infer, predict


@pytest.fixture
def conversations():
    rng = np.random.default_rng(0)
    lengths = [3, 5, 2, 4]
    table = pd.DataFrame({
        "dialogue_id": [f"d{i}" for i, n in enumerate(lengths) for _ in range(n)],
        "turn": [t for n in lengths for t in range(n)],
        "speaker_idx": [t % 2 for n in lengths for t in range(n)],
        "label": [["a", "b", ""][t % 3] for n in lengths for t in range(n)],
        "split": "test"})
    n = len(table)
    matrices = {"text": rng.normal(size=(n, 6)).astype(np.float32),
                "audio": rng.normal(size=(n, 4)).astype(np.float32)}
    present = {"text": np.ones(n, bool), "audio": rng.random(n) > 0.3}
    torch.manual_seed(0)
    model = AMBDSGDN(ModelConfig({"text": 6, "audio": 4}, 2, d_hidden=8, window=2, encoder_heads=2))
    return table, matrices, present, model


def test_infer_gives_every_utterance_whatever_the_batching(conversations):
    table, matrices, present, model = conversations
    items = dialogues(table, ["a", "b"], None)
    one = infer(model, items, matrices, present, 1, "cpu")
    many = infer(model, items, matrices, present, 3, "cpu")
    assert sorted(one.rows) == list(range(len(table)))
    order_one, order_many = np.argsort(one.rows), np.argsort(many.rows)
    np.testing.assert_allclose(one.log_probs[order_one], many.log_probs[order_many], atol=1e-5)
    for m in ("text", "audio"):
        np.testing.assert_allclose(one.logits[m][order_one], many.logits[m][order_many], atol=1e-5)
        assert (one.present[m][order_one] == present[m]).all()
    assert one.gold[order_one].tolist() == [{"a": 0, "b": 1, "": -1}[x] for x in table["label"]]
    assert (one.predicted == one.log_probs.argmax(1)).all()
    gold, pred = predict(model, items, matrices, present, 2, "cpu")    # labelled utterances only
    labelled = one.gold >= 0
    assert sorted(gold.tolist()) == sorted(one.gold[labelled].tolist()) and len(pred) == labelled.sum() < len(table)


def test_the_fused_output_is_the_sum_of_the_heads_that_have_input(conversations):
    table, matrices, present, model = conversations
    out = infer(model, dialogues(table, ["a", "b"], None), matrices, present, 4, "cpu")
    summed = out.logits["text"] + np.where(out.present["audio"][:, None], out.logits["audio"], 0)
    expected = torch.log_softmax(torch.from_numpy(summed), -1).numpy()
    np.testing.assert_allclose(out.log_probs, expected, atol=1e-5)     # Eq. 29-30


def test_a_killed_training_resumes_to_the_same_checkpoint_and_curves(conversations, tmp_path, monkeypatch):
    """AMB-DSGDN on the engine: killed during epoch 4 (after the modality-dropout warm-up, so its
    generator is in play), resumed from epoch 3: the same selected weights, curves (seconds aside)
    and trained dialogues as an uninterrupted run."""
    from config.train import TrainConfig
    from model.training import AMBDSGDNTrainee, train_one

    table, matrices, present, _ = conversations
    table = table.assign(label=[["a", "b"][t % 2] for t in table["turn"]])
    items = dialogues(table, ["a", "b"], None)
    splits = {"train": items[:2], "dev": items[2:3], "test": items[3:]}
    config = TrainConfig(epochs=6, batch_size=1, lr=1e-2, warm_up_epochs=2, p_exe=1.0, device="cpu",
                         class_weights="none")
    model_config = ModelConfig({"text": 6, "audio": 4}, 2, d_hidden=8, window=2, encoder_heads=2)

    def run(resume_dir=None):
        return train_one(0, model_config, config, splits, matrices, present, log=lambda _: None,
                         resume_dir=resume_dir, save_every_s=0)

    whole = run()
    evaluate, calls = AMBDSGDNTrainee.evaluate, []

    def killed(self):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return evaluate(self)

    monkeypatch.setattr(AMBDSGDNTrainee, "evaluate", killed)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resume")
    monkeypatch.setattr(AMBDSGDNTrainee, "evaluate", evaluate)
    resumed = run(tmp_path / "resume")
    untimed = [[{k: v for k, v in row.items() if k != "epoch_s"} for row in r.curves] for r in (whole, resumed)]
    assert untimed[0] == untimed[1] and len(untimed[0]) == 6
    assert any(row["q_text"] > 0 for row in untimed[0])       # the dropout ran after the warm-up
    for key in ("selected_epoch", "dev_wa_f1", "train_dialogues"):
        assert whole.checkpoint[key] == resumed.checkpoint[key]
    state = whole.checkpoint["state_dict"]
    assert all(torch.equal(state[k], resumed.checkpoint["state_dict"][k]) for k in state)
    assert not (tmp_path / "resume").exists()


def test_the_training_step_drops_hidden_representations_after_the_warm_up_only(conversations, monkeypatch):
    """Alg. 1-2 inside one training step: no modality dropout during the warm-up epochs; after it,
    the dropout receives the hidden representations F_m that ``encode`` returned (not the input
    features), and a dialogue left with no modality leaves the loss with its labels."""
    import model.training as training
    from config.train import TrainConfig

    table, matrices, present, _ = conversations
    table = table.assign(label=[["a", "b"][t % 2] for t in table["turn"]])
    items = dialogues(table, ["a", "b"], None)
    splits = {"train": items[:3], "dev": items[3:], "test": items[3:]}
    config = TrainConfig(epochs=30, batch_size=3, lr=1e-2, warm_up_epochs=2, p_exe=1.0, q_rule="fixed", q_base=0.6,
                         device="cpu", class_weights="none")
    model_config = ModelConfig({"text": 6, "audio": 4}, 2, d_hidden=8, window=2, encoder_heads=2)
    trainee = training.AMBDSGDNTrainee(0, model_config, config, splits, matrices, present)
    steps: list[dict] = []
    encode, dropout, loss = trainee.model.encode, training.adaptive_modality_dropout, training.total_loss

    def spy_encode(*args, **kwargs):
        hidden = encode(*args, **kwargs)
        steps.append({"encoded": hidden})
        return hidden

    def spy_dropout(hidden, logits, labels, valid, **kwargs):
        result = dropout(hidden, logits, labels, valid, **kwargs)
        steps[-1].update(dropped_from=hidden, labels=labels, result=result)
        return result

    def spy_loss(logits, labels, scored, *args, **kwargs):
        steps[-1].update(loss_labels=labels, loss_scored=scored)
        return loss(logits, labels, scored, *args, **kwargs)

    monkeypatch.setattr(trainee.model, "encode", spy_encode)
    monkeypatch.setattr(training, "adaptive_modality_dropout", spy_dropout)
    monkeypatch.setattr(training, "total_loss", spy_loss)
    removed = 0
    for epoch in range(1, 31):
        before = len(steps)
        list(trainee.train_epoch(epoch))
        for step in steps[before:]:
            if epoch <= config.warm_up_epochs:
                assert "result" not in step, f"modality dropout ran in warm-up epoch {epoch}"
                continue
            assert "result" in step, f"no modality dropout in epoch {epoch}, after the warm-up"
            hidden = [step["encoded"][m] for m in ("text", "audio")]
            assert all(a is b for a, b in zip(step["dropped_from"], hidden))   # F_m, the encoder's output
            assert all(h.shape[-1] == 8 for h in step["dropped_from"])         # d_hidden, not the features
            kept = step["result"].kept
            if "loss_labels" not in step:                                      # every dialogue lost everything
                assert len(kept) == 0
                continue
            assert torch.equal(step["loss_labels"], step["labels"][kept])      # labels follow the kept dialogues
            removed += len(kept) < 3
    assert removed > 0                     # q = 0.6 on both modalities: some dialogue lost both at some step
