"""The CUDA path, proved in one command where a GPU exists (skipped without one):

    python -m pytest -m cuda

a training step with fp16 autocast and modality dropout, whole training runs (twice, for
determinism), inference, a model folder loaded onto ``cuda`` and one trained on CUDA loaded and
used on a machine without a GPU (a subprocess that sees none)."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from config.model import ModelConfig
from config.train import TrainConfig
from model.ambdsgdn import AMBDSGDN
from model.classifier import total_loss
from model.data import dialogues
from model.device import optimizer_step
from model.diffrgcn import RelationLookup
from model.folder import ModelFolder
from model.modality_dropout import adaptive_modality_dropout
from model.training import infer, train_one
from tests.conftest import REPO

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]
DIMS = {"text": 32, "audio": 24, "visual": 16}


def test_amp_training_step_with_modality_dropout_on_cuda():
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = AMBDSGDN(ModelConfig(input_dims=DIMS, num_classes=6, d_hidden=64, window=5,
                                 encoder_heads=4)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    feats = {m: torch.randn(4, 12, d, device=device) for m, d in DIMS.items()}
    speakers = torch.randint(0, 2, (4, 12), device=device)
    lengths = torch.tensor([12, 9, 5, 1], device=device)
    labels = torch.randint(0, 6, (4, 12), device=device)
    mask = torch.arange(12, device=device)[None] < lengths[:, None]
    present = {m: mask.clone() for m in DIMS}
    present["audio"][0, 3] = False
    scaler = torch.amp.GradScaler("cuda")
    with torch.autocast("cuda"):
        hidden = model.encode(feats, speakers, lengths, present)
        logits = model.classify(hidden)
        dropped = adaptive_modality_dropout(
            [hidden[m] for m in DIMS], [logits[m] for m in DIMS], labels, [mask & present[m] for m in DIMS],
            q_base=0.3, lam=0.9, p_exe=1.0, generator=torch.Generator().manual_seed(0))
        kept = dropped.kept
        logits = model.classify(dict(zip(DIMS, dropped.features)))
    loss, _ = total_loss({m: z.float() for m, z in logits.items()}, labels[kept], mask[kept],
                         present={m: x[kept] for m, x in present.items()})
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    finite = all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    # At the initial scale (65536) fp16 gradients may overflow: GradScaler then skips the step
    # and halves the scale. Either way the weights stay finite.
    stepped = optimizer_step(scaler, optimizer)
    assert dropped.applied and torch.isfinite(loss)
    assert stepped == finite and (stepped or scaler.get_scale() == 32768.0)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_relation_lookup_backward_is_deterministic_on_cuda_and_matches_the_cpu():
    types = torch.randint(0, 6, (8, 60, 60), generator=torch.Generator().manual_seed(1))
    grad = torch.randn(8, 60, 60, 4, generator=torch.Generator().manual_seed(2))

    def table_grad(device):
        table = torch.randn(6, 4, device=device, requires_grad=True)
        RelationLookup.apply(table, types.to(device)).backward(grad.to(device))
        return table.grad

    first, second = table_grad("cuda"), table_grad("cuda")
    assert torch.equal(first, second)
    torch.testing.assert_close(first.cpu(), table_grad("cpu"), rtol=1e-5, atol=1e-3)


@pytest.fixture(scope="module")
def conversations():
    rng = np.random.default_rng(0)
    lengths = [12, 7, 20, 3, 9, 15, 5, 11]
    n = sum(lengths)
    table = pd.DataFrame({
        "dialogue_id": [f"d{i}" for i, k in enumerate(lengths) for _ in range(k)],
        "turn": [t for k in lengths for t in range(k)],
        "speaker_idx": [t % 2 for k in lengths for t in range(k)],
        "label": [["a", "b", "c"][t % 3] for k in lengths for t in range(k)]})
    labels = table["label"].map({"a": 0, "b": 1, "c": 2}).to_numpy()
    matrices = {m: (rng.normal(size=(n, d)) + labels[:, None] * 0.5).astype(np.float32) for m, d in DIMS.items()}
    present = {m: rng.random(n) > 0.1 for m in DIMS}
    items = dialogues(table, ["a", "b", "c"], None)
    return {"train": items[:5], "dev": items[5:6], "test": items[6:]}, matrices, present


def _train(conversations, precision: str, resume_dir=None):
    splits, matrices, present = conversations
    config = TrainConfig(epochs=4, batch_size=2, lr=1e-3, warm_up_epochs=1, p_exe=1.0, device="cuda",
                         precision=precision)
    model_config = ModelConfig(DIMS, 3, d_hidden=16, window=3, encoder_heads=2)
    return model_config, train_one(0, model_config, config, splits, matrices, present, log=lambda _: None,
                                   resume_dir=resume_dir, save_every_s=0)


@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32"])
def test_training_on_cuda_is_finite_and_bitwise_repeatable(conversations, precision):
    _, first = _train(conversations, precision)
    _, second = _train(conversations, precision)
    assert all(np.isfinite(row["train_loss"]) and 0 <= row["dev_wa_f1"] <= 1 for row in first.curves)
    assert any(row["q_text"] > 0 for row in first.curves)        # modality dropout ran after warm-up
    strip = [{k: v for k, v in row.items() if k != "epoch_s"} for row in first.curves]
    assert strip == [{k: v for k, v in row.items() if k != "epoch_s"} for row in second.curves]
    state, again = first.checkpoint["state_dict"], second.checkpoint["state_dict"]
    assert all(t.device.type == "cpu" and torch.equal(t, again[k]) for k, t in state.items())


def test_a_cuda_trained_folder_predicts_on_cuda_and_on_a_machine_without_a_gpu(conversations, tmp_path):
    splits, matrices, present = conversations
    model_config, run = _train(conversations, "fp16")
    folder = ModelFolder.from_state(model="ambdsgdn", model_config=model_config.to_dict(),
                                    state_dict=run.checkpoint["state_dict"], labels=["a", "b", "c"],
                                    corpus="synthetic", features={m: {} for m in DIMS}, provenance={},
                                    device="cuda")
    folder.save_pretrained(tmp_path / "model")
    on_cuda = ModelFolder.from_pretrained(tmp_path / "model", "cuda")
    assert {p.device.type for p in on_cuda.model.parameters()} == {"cuda"}
    cuda_out = infer(on_cuda.model, splits["test"], matrices, present, 2, "cuda")
    np.savez(tmp_path / "inputs.npz", **{f"x_{m}": x for m, x in matrices.items()},
             **{f"p_{m}": p for m, p in present.items()})
    script = f"""
import json, sys, numpy as np, torch
sys.path.insert(0, {str(REPO)!r})
assert not torch.cuda.is_available()
from model.folder import ModelFolder
from model.training import infer
from model.data import Dialogue
data = np.load({str(tmp_path / "inputs.npz")!r})
items = [Dialogue(d["id"], np.array(d["rows"]), np.array(d["speakers"]), np.array(d["labels"]))
         for d in json.loads(sys.argv[1])]
folder = ModelFolder.from_pretrained({str(tmp_path / "model")!r}, "cpu")
out = infer(folder.model, items, {{m: data["x_" + m] for m in {list(DIMS)!r}}},
            {{m: data["p_" + m] for m in {list(DIMS)!r}}}, 2, "cpu")
np.save({str(tmp_path / "cpu.npy")!r}, out.log_probs[np.argsort(out.rows)])
"""
    items = [{"id": d.dialogue_id, "rows": d.rows.tolist(), "speakers": d.speakers.tolist(),
              "labels": d.labels.tolist()} for d in splits["test"]]
    done = subprocess.run([sys.executable, "-c", script, json.dumps(items)], capture_output=True, text=True,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    cpu = np.load(tmp_path / "cpu.npy")
    np.testing.assert_allclose(cuda_out.log_probs[np.argsort(cuda_out.rows)], cpu, atol=1e-4)
