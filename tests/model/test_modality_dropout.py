import math

import pytest
import torch

from model.modality_dropout import ScaledMask, adaptive_modality_dropout, drop_rates, mask_modalities


def test_drop_rates_by_hand():
    # p = (text 0.6, audio 0.3, visual 0.2); eps ~ 0.
    q = drop_rates(torch.tensor([0.6, 0.3, 0.2]), q_base=0.3, lam=0.9)
    # text: r = (1.0, 2.0); w = softmax(1, 2) = (0.2689, 0.7311); rbar = 1.7311
    rbar_t = (math.exp(1) * 1 + math.exp(2) * 2) / (math.exp(1) + math.exp(2))
    # audio: r = (-0.5, 0.5); w = softmax(0, 0.5); rbar = (-0.5 + 0.5 e^0.5) / (1 + e^0.5)
    rbar_a = (-0.5 + 0.5 * math.exp(0.5)) / (1 + math.exp(0.5))
    expected = [min(1.0, 0.3 * (1 + 0.9 * rbar_t)), 0.3 * (1 + 0.9 * rbar_a), 0.0]  # visual weakest
    torch.testing.assert_close(q, torch.tensor(expected), atol=1e-6, rtol=1e-6)
    assert q[0] == pytest.approx(0.3 * (1 + 0.9 * rbar_t))  # 0.767, below the clip
    # Equal modalities: every r = 0 -> q = q_base, except the (first) weakest.
    torch.testing.assert_close(drop_rates(torch.tensor([0.5, 0.5]), 0.2, 0.9), torch.tensor([0.0, 0.2]))
    assert drop_rates(torch.tensor([0.7]), 0.3, 0.9).tolist() == [0.0]


def test_scaled_mask_forward_and_backward():
    x = torch.randn(3, 2, 4, requires_grad=True)
    keep = torch.tensor([True, False, True]).view(-1, 1, 1)
    y = ScaledMask.apply(x, keep, 2.5)
    torch.testing.assert_close(y, x.detach() * keep * 2.5)
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, torch.ones_like(x) * keep * 2.5)
    assert torch.autograd.gradcheck(lambda t: ScaledMask.apply(t, keep, 1.7),
                                    (torch.randn(3, 2, 4, dtype=torch.double, requires_grad=True),))


def test_dropout_masks_scales_and_removes_empty_dialogues():
    feats = [torch.ones(64, 5, 8), torch.ones(64, 5, 24)]
    f1 = torch.tensor([0.9, 0.3])   # modality 0 dominant, modality 1 weakest (never dropped)
    g = torch.Generator().manual_seed(0)
    out = adaptive_modality_dropout(feats, f1, q_base=0.3, lam=0.9, p_exe=1.0, generator=g)
    q = drop_rates(f1, 0.3, 0.9)
    theta = (8 * q[0] + 24 * q[1]) / 32
    assert out.applied and q[1] == 0 and 0 < q[0] < 1
    assert torch.equal(out.kept, torch.arange(64))     # modality 1 always kept: nobody removed
    values = out.features[0][:, 0, 0]
    scale = float(1 / (1 - theta))
    assert all(v == 0.0 or v == pytest.approx(scale) for v in values.unique().tolist())
    dropped = (values == 0).float().mean().item()
    assert abs(dropped - q[0].item()) < 0.2
    torch.testing.assert_close(out.features[1], torch.full((64, 5, 24), float(1 / (1 - theta))))
    # Dialogues that lose every modality leave the batch (with q > 0 everywhere; through
    # adaptive_modality_dropout the weakest modality has q = 0 and always survives).
    feats = [torch.arange(200.0).view(200, 1, 1).expand(200, 2, 4)] * 2
    out = mask_modalities(feats, torch.tensor([0.5, 0.5]), p_exe=1.0, generator=g)
    assert 20 < 200 - len(out.kept) < 80   # about a quarter removed
    assert len(out.features[0]) == len(out.kept)
    kept_ids = torch.maximum(out.features[0][:, 0, 0], out.features[1][:, 0, 0]) / 2.0  # scale 2
    torch.testing.assert_close(kept_ids[kept_ids > 0], out.kept[kept_ids > 0].float())


def test_p_exe_zero_leaves_the_batch_alone():
    feats = [torch.randn(4, 3, 2)]
    out = adaptive_modality_dropout(feats, torch.tensor([0.5]), q_base=0.3, lam=0.9, p_exe=0.0)
    assert not out.applied and out.features[0] is feats[0] and out.q.tolist() == [0.0]
