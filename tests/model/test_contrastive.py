"""ICCL and IMCL against values worked out by hand on tiny batches (β included)."""
import math

import pytest
import torch

from model.contrastive import iccl_loss, imcl_loss


def test_iccl_margin_by_hand():
    # Nodes (1,0), (0,1) of class 0 and (1,1) of class 1. Cosine distances: d(0,1) = 1,
    # d(0,2) = d(1,2) = 1 - 1/sqrt2. Anchors 0 and 1: relu(1 - (1 - 1/sqrt2) + 0.5) = 0.5 + 1/sqrt2;
    # anchor 2 has no positive and is left out.
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    assert iccl_loss(z, y, beta=0.5).item() == pytest.approx(0.5 + 1 / math.sqrt(2), abs=1e-6)
    # With β small enough every anchor already has its positives nearer: 0 ... here they are
    # farther (1 > 0.29), so only a negative β below -(1 - 0.29) silences it.
    assert iccl_loss(z, y, beta=-0.8).item() == pytest.approx(0.0)


def test_imcl_margin_by_hand():
    # Modality a: (1,0) class 0, (0,1) class 1; modality b: (1,0) and (1,0).
    # a -> b: anchor a0: d(a0, b0) = 0 (pos), d(a0, b1) = 0 (neg): relu(0 - 0 + 0.2) = 0.2;
    #         anchor a1: d(a1, b1) = 1 (pos), d(a1, b0) = 1 (neg): 0.2       -> mean 0.2
    # b -> a: anchor b0: d(b0, a0) = 0 (pos), d(b0, a1) = 1 (neg): relu(-0.8) = 0;
    #         anchor b1: d(b1, a1) = 1 (pos), d(b1, a0) = 0 (neg): 1.2       -> mean 0.6
    # IMCL = mean(0.2, 0.6) = 0.4
    za, zb = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert imcl_loss([za, zb], torch.tensor([0, 1]), beta=0.2).item() == pytest.approx(0.4, abs=1e-6)
    assert imcl_loss([za], torch.tensor([0, 1]), beta=0.2).item() == 0.0     # one modality: none


def test_iccl_infonce_by_hand():
    # tau = 1, anchor 0: positive node 1 (cos 0), negative node 2 (cos 1/sqrt2):
    # -log(e^0 / (e^0 + e^(1/sqrt2))) = log(1 + e^(1/sqrt2)); anchor 1 the same; anchor 2 has none.
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = math.log(1 + math.exp(1 / math.sqrt(2)))
    got = iccl_loss(z, torch.tensor([0, 0, 1]), beta=0.5, form="infonce", tau=1.0)
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_nothing_to_contrast_is_zero_with_a_gradient_path_and_a_bad_form_is_named():
    z = torch.randn(3, 4, requires_grad=True)
    loss = iccl_loss(z, torch.tensor([1, 1, 1]), beta=0.5)      # no negative anywhere
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(z.grad, torch.zeros_like(z))
    with pytest.raises(ValueError, match="model.contrastive='triplet': use one of margin, infonce"):
        iccl_loss(z, torch.tensor([0, 1, 1]), beta=0.5, form="triplet")


def test_gradients_pull_positives_and_push_negatives():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    before = iccl_loss(z, torch.tensor([0, 0, 1]), beta=0.5)
    before.backward()
    with torch.no_grad():
        moved = z - 0.1 * z.grad
    assert iccl_loss(moved, torch.tensor([0, 0, 1]), beta=0.5) < before
