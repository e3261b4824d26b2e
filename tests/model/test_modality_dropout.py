import math

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from model.modality_dropout import (
    EPS,
    ScaledMask,
    adaptive_modality_dropout,
    drop_rates,
    mask_modalities,
    performance,
)


@pytest.mark.parametrize("p, expected", [
    ((0.68, 0.35, 0.60), (0.394, 0.239, 0.360)),
    ((0.6, 0.3, 0.2), (0.534, 0.317, 0.232)),
    ((0.5, 0.5, 0.5), (0.3, 0.3, 0.3)),          # ties: every r = 0 -> q = q_base, nobody spared
])
def test_drop_rates_are_eq_20_24_as_printed(p, expected):
    q = drop_rates(torch.tensor(p), q_base=0.3, lam=0.9)
    torch.testing.assert_close(q, torch.tensor(expected), atol=6e-4, rtol=0)


def test_drop_rates_by_hand_with_the_division_by_the_ratio_count():
    # text 0.6 vs (0.3, 0.2): r = (1, 2), rhat = softmax(1, 2), rbar = sum(rhat * r) / |r| = / 2
    r = (0.6 / (0.3 + EPS) - 1, 0.6 / (0.2 + EPS) - 1)
    rbar = (math.exp(r[0]) * r[0] + math.exp(r[1]) * r[1]) / (math.exp(r[0]) + math.exp(r[1])) / 2
    q = drop_rates(torch.tensor([0.6, 0.3, 0.2]), 0.3, 0.9)
    assert q[0].item() == pytest.approx(0.3 * (1 + 0.9 * rbar), abs=1e-6)
    # eps = 1e-5 (Eq. 20): a modality with p = 0 makes the others' ratios ~ p / 1e-5.
    q = drop_rates(torch.tensor([0.5, 0.0]), 0.3, 0.9)
    assert EPS == 1e-5 and q[0].item() == 1.0
    assert q[1].item() == pytest.approx(0.3 * (1 + 0.9 * (0.0 / (0.5 + 1e-5) - 1)), abs=1e-6)
    assert drop_rates(torch.tensor([0.7]), 0.3, 0.9).tolist() == [0.0]   # nothing to balance


def test_public_code_rule_is_an_option():
    q = drop_rates(torch.tensor([0.68, 0.35, 0.60]), 0.3, 0.9, rule="public_code")
    torch.testing.assert_close(q, torch.tensor([0.394, 0.0, 0.360]), atol=6e-4, rtol=0)  # rbar <= 0 -> 0
    assert drop_rates(torch.tensor([0.5, 0.5, 0.5]), 0.3, 0.9, rule="public_code").tolist() == [0, 0, 0]
    # ratios against a modality with p < eps are skipped: text only compares with visual
    q = drop_rates(torch.tensor([0.5, 0.0, 0.4]), 0.3, 0.9, rule="public_code")
    assert q[0].item() == pytest.approx(0.3 * (1 + 0.9 * (0.5 / (0.4 + EPS) - 1)), abs=1e-6)
    with pytest.raises(ValueError, match="train.q_rule='fancy'"):
        drop_rates(torch.tensor([0.5, 0.5]), 0.3, 0.9, rule="fancy")


def test_performance_is_eq_19_by_hand_and_weighted_f1_matches_sklearn():
    gold = torch.tensor([0, 0, 0, 1, 1, 2])
    pred = torch.tensor([0, 0, 1, 1, 2, 2])
    # w = N / N_c = (2, 3, 6); P = (1, 1/2, 1/2); R = (2/3, 1/2, 1)
    expected = (2 * 1 * 2 / 3 + 3 * 0.5 * 0.5 + 6 * 0.5 * 1) / (2 + 3 + 6)
    assert performance(pred, gold, 4).item() == pytest.approx(expected, abs=1e-6)
    assert performance(pred[:0], gold[:0], 4).item() == 0.0
    rng = np.random.default_rng(0)
    for _ in range(5):
        g, p = rng.integers(0, 5, 40), rng.integers(0, 5, 40)
        sk = f1_score(g, p, average="weighted", zero_division=0)
        ours = performance(torch.from_numpy(p), torch.from_numpy(g), 6, "weighted_f1").item()
        assert ours == pytest.approx(sk, abs=1e-6)
        assert performance(torch.from_numpy(p), torch.from_numpy(g), 6).item() != pytest.approx(sk)


def test_scaled_mask_forward_and_backward():
    x = torch.randn(3, 2, 4, requires_grad=True)
    keep = torch.tensor([True, False, True]).view(-1, 1, 1)
    y = ScaledMask.apply(x, keep, 2.5)
    torch.testing.assert_close(y, x.detach() * keep * 2.5)
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, torch.ones_like(x) * keep * 2.5)
    assert torch.autograd.gradcheck(lambda t: ScaledMask.apply(t, keep, 1.7),
                                    (torch.randn(3, 2, 4, dtype=torch.double, requires_grad=True),))


def test_masks_scale_by_theta_and_remove_empty_dialogues():
    feats = [torch.ones(400, 5, 8), torch.ones(400, 5, 8)]      # d_m = d_h for every modality
    q = torch.tensor([0.6, 0.2])
    g = torch.Generator().manual_seed(0)
    out = mask_modalities(feats, q, p_exe=1.0, generator=g)
    theta = (0.6 + 0.2) / 2                                       # Eq. 26 with equal d_m
    assert out.applied and torch.equal(out.q, q)
    for m, rate in enumerate(q.tolist()):
        values = out.features[m][:, 0, 0]
        assert all(v == 0.0 or v == pytest.approx(1 / (1 - theta)) for v in values.unique().tolist())
        among_survivors = rate * (1 - q[1 - m].item()) / (1 - q.prod().item())
        assert abs((values == 0).float().mean().item() - among_survivors) < 0.06
    dropped_both = 400 - len(out.kept)
    assert abs(dropped_both / 400 - 0.6 * 0.2) < 0.05             # u_b = 0 -> dialogue removed
    assert len(out.features[0]) == len(out.kept)
    kept_rows = (out.features[0][:, 0, 0] > 0) | (out.features[1][:, 0, 0] > 0)
    assert kept_rows.all()                                        # every survivor has a modality
    left_alone = mask_modalities(feats, q, p_exe=0.0, generator=g)
    assert not left_alone.applied and left_alone.features[0] is feats[0]


def test_adaptive_dropout_computes_p_from_the_heads_on_valid_utterances():
    labels = torch.tensor([[0, 1, 2, 0]])
    valid = torch.tensor([[True, True, True, False]])
    good = torch.nn.functional.one_hot(torch.tensor([[0, 1, 2, 1]]), 3).float()   # right on valid
    bad = torch.nn.functional.one_hot(torch.tensor([[1, 2, 0, 0]]), 3).float()
    hidden = [torch.ones(1, 4, 2), torch.ones(1, 4, 2)]
    out = adaptive_modality_dropout(hidden, [good, bad], labels, [valid, valid], q_base=0.3, lam=0.9,
                                    p_exe=0.0)
    torch.testing.assert_close(out.q, drop_rates(torch.tensor([1.0, 0.0]), 0.3, 0.9))
    assert out.q[0] == 1.0 and not out.applied


def test_fixed_rule_drops_every_modality_at_q_base_whatever_the_performances():
    for p in ([0.9, 0.1, 0.5], [0.0, 0.0, 0.7], [0.3, 0.3, 0.3]):
        q = drop_rates(torch.tensor(p), q_base=0.3, lam=0.9, rule="fixed")
        assert torch.equal(q, torch.full((3,), 0.3))
    assert drop_rates(torch.tensor([0.8]), q_base=0.3, lam=0.9, rule="fixed").tolist() == [0.0]  # one modality
    assert drop_rates(torch.tensor([0.1, 0.2]), q_base=1.7, lam=0.9, rule="fixed").tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="train.q_rule"):
        drop_rates(torch.tensor([0.1, 0.2]), q_base=0.3, lam=0.9, rule="fixd")
