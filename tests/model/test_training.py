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
    gold, pred = predict(model, items, matrices, present, 2, "cpu")
    assert sorted(gold.tolist()) == sorted(one.gold.tolist()) and len(pred) == len(table)


def test_the_fused_output_is_the_sum_of_the_heads_that_have_input(conversations):
    table, matrices, present, model = conversations
    out = infer(model, dialogues(table, ["a", "b"], None), matrices, present, 4, "cpu")
    summed = out.logits["text"] + np.where(out.present["audio"][:, None], out.logits["audio"], 0)
    expected = torch.log_softmax(torch.from_numpy(summed), -1).numpy()
    np.testing.assert_allclose(out.log_probs, expected, atol=1e-5)     # Eq. 29-30
