"""The CUDA path: forward/backward with AMP and modality dropout on a GPU (skipped without one)."""
import pytest
import torch

from config.model import ModelConfig
from model.ambdsgdn import AMBDSGDN
from model.classifier import total_loss
from model.modality_dropout import adaptive_modality_dropout

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_amp_training_step_with_modality_dropout_on_cuda():
    device = torch.device("cuda")
    torch.manual_seed(0)
    dims = {"text": 32, "audio": 24, "visual": 16}
    model = AMBDSGDN(ModelConfig(input_dims=dims, num_classes=6, d_hidden=64, window=5,
                                 encoder_heads=4)).to(device)
    feats = {m: torch.randn(4, 12, d, device=device) for m, d in dims.items()}
    speakers = torch.randint(0, 2, (4, 12), device=device)
    lengths = torch.tensor([12, 9, 5, 1], device=device)
    labels = torch.randint(0, 6, (4, 12), device=device)
    mask = torch.arange(12, device=device)[None] < lengths[:, None]
    present = {m: mask.clone() for m in dims}
    present["audio"][0, 3] = False
    scaler = torch.amp.GradScaler("cuda")
    with torch.autocast("cuda"):
        hidden = model.encode(feats, speakers, lengths, present)
        logits = model.classify(hidden)
        dropped = adaptive_modality_dropout(
            [hidden[m] for m in dims], [logits[m] for m in dims], labels, [mask & present[m] for m in dims],
            q_base=0.3, lam=0.9, p_exe=1.0, generator=torch.Generator().manual_seed(0))
        kept = dropped.kept
        logits = model.classify(dict(zip(dims, dropped.features)))
    loss, _ = total_loss({m: z.float() for m, z in logits.items()}, labels[kept], mask[kept],
                         present={m: x[kept] for m, x in present.items()})
    scaler.scale(loss).backward()
    assert dropped.applied and torch.isfinite(loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
