"""Adaptive modality dropout (AMB-DSGDN, Eq. 19-27, Alg. 2). Training only.

Per batch, from each modality's weighted F1 ``p_m`` (its unimodal head on the valid utterances):

- Eq. 19-20: ratios ``r_mj = p_m / (p_j + eps) - 1`` for every other modality j;
- Eq. 21-22: weights ``w_mj = softmax_j(ReLU(r_mj))``; mean ratio ``rbar_m = sum_j w_mj r_mj``;
- Eq. 23: drop rate ``q_m = clip(q_base (1 + lambda rbar_m), 0, 1)``; the weakest modality gets 0;
- Eq. 24-27: with probability ``p_exe`` the batch is affected: each dialogue keeps modality m with
  probability ``1 - q_m`` (Bernoulli mask), kept features are scaled by ``1 / (1 - theta)``,
  ``theta = sum_m d_m q_m / sum_m d_m`` (d_m = feature dimension), through :class:`ScaledMask`,
  whose gradient reaches the features only. Dialogues that lost every modality are removed.

A dominant modality (higher F1 than the others) is dropped more often, so the others must learn.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def drop_rates(f1: torch.Tensor, q_base: float, lam: float, eps: float = 1e-8) -> torch.Tensor:
    """Eq. 19-23: drop probability per modality from per-modality weighted F1 scores ``(M,)``."""
    m = f1.numel()
    if m < 2:
        return torch.zeros_like(f1)
    ratios = f1[:, None] / (f1[None, :] + eps) - 1.0                     # r_mj, (M, M)
    others = ~torch.eye(m, dtype=torch.bool, device=f1.device)
    logits = torch.relu(ratios).masked_fill(~others, float("-inf"))
    weights = torch.softmax(logits, dim=1)                                  # over j != m
    mean_ratio = (weights * ratios.masked_fill(~others, 0.0)).sum(1)        # rbar_m
    q = torch.clamp(q_base * (1.0 + lam * mean_ratio), 0.0, 1.0)
    q[torch.argmin(f1)] = 0.0                                               # never drop the weakest
    return q


class ScaledMask(torch.autograd.Function):
    """``y = x * keep * scale``; the gradient flows to ``x`` only (Eq. 26-27)."""

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
    q: torch.Tensor                # (M,) drop rates used (zeros when not applied)
    applied: bool


def adaptive_modality_dropout(features: Sequence[torch.Tensor], f1: torch.Tensor, *, q_base: float,
                              lam: float, p_exe: float, generator: torch.Generator | None = None
                              ) -> DropResult:
    """Alg. 2 for one training batch: drop rates from the F1s (Eq. 19-23), then the masks."""
    q = drop_rates(f1.to(features[0].device), q_base, lam)
    return mask_modalities(features, q, p_exe=p_exe, generator=generator)


def mask_modalities(features: Sequence[torch.Tensor], q: torch.Tensor, *, p_exe: float,
                    generator: torch.Generator | None = None) -> DropResult:
    """Eq. 24-27 on per-modality features ``(B, L, d_m)`` with drop rates ``q`` ``(M,)``."""
    batch = features[0].shape[0]
    device = features[0].device
    everyone = torch.arange(batch, device=device)
    if torch.rand((), generator=generator).item() >= p_exe:
        return DropResult(list(features), everyone, torch.zeros_like(q), False)
    dims = torch.tensor([float(x.shape[-1]) for x in features], device=device)
    theta = float((dims * q).sum() / dims.sum())
    keep = torch.rand((batch, len(features)), generator=generator).to(device) >= q[None, :]
    alive = keep.any(dim=1)
    scale = 1.0 / (1.0 - theta) if theta < 1.0 else 1.0
    masked = [ScaledMask.apply(x, keep[:, m].view(-1, 1, 1), scale) for m, x in enumerate(features)]
    kept = everyone[alive]
    return DropResult([x[kept] for x in masked], kept, q, True)
