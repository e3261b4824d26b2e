"""Adaptive modality dropout (AMB-DSGDN, Eq. 19-27, Alg. 2). Training only.

It acts on ``F = [T, V, A]``, the per-modality *hidden* representations ``(B, N, d_h)`` that reach
the heads (after the graph blocks and the audio/visual gate, where the public code applies it), so
a dropped modality contributes exactly its head's bias to the fused logits. Per batch:

- Eq. 19: performance ``p_m`` of each modality's own head on the valid utterances:
  ``sum_c w_c P_c R_c / sum_c w_c`` with inverse-frequency weights ``w_c = N / N_c``
  (:func:`performance`; ``p_metric="weighted_f1"`` gives the public code's support-weighted F1);
- Eq. 20-24: ``r_mj = p_m / (p_j + eps) - 1`` (eps = 1e-5) for every j != m;
  ``rhat_m = softmax(ReLU(r_m))``; ``rbar_m = sum(rhat_m * r_m) / |r_m|``;
  ``q_m = clip(q_base (1 + lambda rbar_m), 0, 1)`` (:func:`drop_rates`; ``rule="public_code"`` gives
  the public code's variant: ratios against modalities with ``p_j < eps`` skipped, ``q_m = 0``
  whenever ``rbar_m <= 0``; ``rule="fixed"``, beyond the paper, drops every modality with
  ``q_m = q_base`` whatever the performances: the non-adaptive control of Table 6);
- Eq. 25-27: with probability ``p_exe`` the batch is affected: each dialogue keeps modality m with
  probability ``1 - q_m``; kept representations are scaled by ``1 / (1 - theta)``,
  ``theta = sum_m d_m q_m / sum_m d_m`` (d_m = d_h for every modality here), through
  :class:`ScaledMask`, whose gradient reaches the representations only. Dialogues that lost every
  modality leave the batch (``u_b = sum_m M_mb > 0``).

A dominant modality (higher p than the others) is dropped more often, so the others must learn.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from config.vocabulary import P_METRICS, Q_RULES, check_choice

EPS = 1e-5                                   # Eq. 20


def performance(pred: torch.Tensor, gold: torch.Tensor, num_classes: int, metric: str = "eq19"
                ) -> torch.Tensor:
    """Eq. 19 for one modality from flat predictions and labels of the valid utterances.

    ``eq19``: ``sum_c w_c P_c R_c / sum_c w_c``, ``w_c = N / N_c`` over the classes present in
    ``gold`` (an absent class has no defined weight). ``weighted_f1``: sklearn's
    ``f1_score(average="weighted", zero_division=0)``, the public code's measure. Empty input -> 0.
    """
    check_choice(metric, P_METRICS, "train.p_metric")
    if gold.numel() == 0:
        return torch.zeros((), device=gold.device)
    support = torch.bincount(gold, minlength=num_classes).double()
    predicted = torch.bincount(pred, minlength=num_classes).double()
    hits = torch.bincount(gold[pred == gold], minlength=num_classes).double()
    precision = torch.where(predicted > 0, hits / predicted.clamp(min=1), 0.0)
    recall = torch.where(support > 0, hits / support.clamp(min=1), 0.0)
    present = support > 0
    if metric == "eq19":
        weights = torch.where(present, gold.numel() / support.clamp(min=1), 0.0)
        return ((weights * precision * recall).sum() / weights.sum()).float()
    denominator = precision + recall
    f1 = torch.where(denominator > 0, 2 * precision * recall / denominator.clamp(min=1e-300), 0.0)
    return ((support * f1).sum() / support.sum()).float()


def drop_rates(p: torch.Tensor, q_base: float, lam: float, rule: str = "paper", eps: float = EPS
               ) -> torch.Tensor:
    """Eq. 20-24: drop probability per modality from the performances ``p`` ``(M,)``.

    With fewer than two modalities nothing can be balanced: zeros. ``rule="fixed"``: ``q_base`` for
    every modality (not adaptive; a control beyond the paper).
    """
    check_choice(rule, Q_RULES, "train.q_rule")
    p = p.double()
    m = p.numel()
    if m < 2:
        return torch.zeros(m, dtype=torch.float32, device=p.device)
    if rule == "fixed":
        return torch.full((m,), min(max(q_base, 0.0), 1.0), dtype=torch.float32, device=p.device)
    ratios = p[:, None] / (p[None, :] + eps) - 1.0                         # Eq. 20: r_mj, (M, M)
    use = ~torch.eye(m, dtype=torch.bool, device=p.device)                  # Eq. 21: j != m
    if rule == "public_code":
        use &= (p >= eps)[None, :]                                          # skips weak p_j
    weights = torch.softmax(torch.relu(ratios).masked_fill(~use, float("-inf")), dim=1)   # Eq. 22
    count = use.sum(1)
    rbar = (weights.nan_to_num(0.0) * ratios.masked_fill(~use, 0.0)).sum(1) / count.clamp(min=1)  # Eq. 23
    q = q_base * (1.0 + lam * rbar)                                         # Eq. 24
    if rule == "public_code":
        q = torch.where((rbar > 0) & (count > 0), q, 0.0)
    return q.clamp(0.0, 1.0).float()


class ScaledMask(torch.autograd.Function):
    """Eq. 26-27: ``y = x * keep * scale``; the gradient flows to ``x`` only."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        factor = keep.to(x.dtype) * scale
        ctx.save_for_backward(factor)
        return x * factor

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (factor,) = ctx.saved_tensors
        return grad * factor, None, None


@dataclass
class DropResult:
    features: list[torch.Tensor]   # per modality, (B', L, d_m): masked and rescaled
    kept: torch.Tensor             # (B',) indices of the dialogues left in the batch
    q: torch.Tensor                # (M,) drop rates computed for the batch
    applied: bool                  # False: the p_exe draw left the batch alone


def mask_modalities(features: Sequence[torch.Tensor], q: torch.Tensor, *, p_exe: float,
                    generator: torch.Generator | None = None) -> DropResult:
    """Eq. 25-27 and the instance filter of Alg. 2 on per-modality ``(B, L, d_m)`` tensors."""
    batch = features[0].shape[0]
    device = features[0].device
    everyone = torch.arange(batch, device=device)
    if torch.rand((), generator=generator).item() >= p_exe:
        return DropResult(list(features), everyone, q, False)
    dims = torch.tensor([float(x.shape[-1]) for x in features], device=q.device)
    theta = float((dims * q).sum() / dims.sum())                               # Eq. 26
    keep = (torch.rand((batch, len(features)), generator=generator) >= q.cpu()[None, :]).to(device)
    scale = 1.0 / (1.0 - theta) if theta < 1.0 else 1.0   # theta = 1: everything is dropped anyway
    masked = [ScaledMask.apply(x, keep[:, m].view(-1, 1, 1), scale) for m, x in enumerate(features)]
    kept = everyone[keep.any(dim=1)]                                           # u_b
    return DropResult([x[kept] for x in masked], kept, q, True)


def adaptive_modality_dropout(hidden: Sequence[torch.Tensor], logits: Sequence[torch.Tensor],
                              labels: torch.Tensor, valid: Sequence[torch.Tensor], *, q_base: float,
                              lam: float, p_exe: float, rule: str = "paper", metric: str = "eq19",
                              generator: torch.Generator | None = None) -> DropResult:
    r"""Alg. 2 for one training batch:

    .. math::
        p_m \ (19) \;\rightarrow\; q_m = \mathrm{clip}\big(q_{base}(1 + \lambda \bar r_m), 0, 1\big)
        \ (20\text{-}24) \;\rightarrow\; \tilde F_m = F_m \cdot M_m / (1 - \theta) \ (25\text{-}27)

    Args:
        hidden: per modality the representations :math:`F_m`. logits: each modality's head on
        them. labels: gold classes. valid: per modality, the utterances that count for
        :math:`p_m` (real, labelled, with that modality present). q_base, lam, p_exe: Eq. 24-25.
        rule, metric: the paper's or the public code's variant. generator: the masks' RNG.

    Shapes:
        ``hidden`` M x :math:`(B, L, d_h)`, ``logits`` M x :math:`(B, L, C)`, ``labels``
        :math:`(B, L)`, ``valid`` M x :math:`(B, L)` bool -> :class:`DropResult` (M x
        :math:`(B', L, d_h)`, the :math:`B'` dialogues kept, ``q`` :math:`(M,)`).
    """
    num_classes = logits[0].shape[-1]
    p = torch.stack([performance(z.detach()[v].argmax(-1), labels[v], num_classes, metric)
                     for z, v in zip(logits, valid)])                          # Eq. 19
    q = drop_rates(p, q_base, lam, rule)                                       # Eq. 20-24
    return mask_modalities(hidden, q, p_exe=p_exe, generator=generator)        # Eq. 25-27
