"""Classifier heads and the training loss (AMB-DSGDN, Eq. 28-33).

- Eq. 28-29: per-modality head ``Linear(Dropout(ReLU(h_m)))`` -> logits ``z_m``;
- Eq. 30: fused logits ``z = sum_m z_m``; Eq. 31: ``log_softmax(z)``;
- Eq. 32: masked NLL (padding excluded), optional class weights, for the fusion and each modality;
- Eq. 33: ``L = L_fusion + sum_m alpha_m L_m`` with ``alpha_m = L_m / 10``, not detached, as in the
  public code of DEDNet (the predecessor with the same subgraphs and encoders: ``loss_m * (loss_m /
  10)``): each auxiliary term is ``L_m^2 / 10``, its gradient ``2 alpha_m dL_m``, so harder
  modalities get more of the auxiliary signal.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from model.dropout import Dropout


class ModalityHead(nn.Module):
    """Eq. 28-29."""

    def __init__(self, d_hidden: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = Dropout(dropout)
        self.linear = nn.Linear(d_hidden, num_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(F.relu(h)))


def fuse(logits: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 30-31: log-probabilities of the summed per-modality logits."""
    return F.log_softmax(torch.stack(list(logits.values())).sum(0), dim=-1)


def masked_nll(log_probs: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
               class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 32: NLL over real utterances only; weighted mean like ``F.nll_loss``."""
    return F.nll_loss(log_probs[mask], labels[mask], weight=class_weights)


def total_loss(logits: Mapping[str, torch.Tensor], labels: torch.Tensor, mask: torch.Tensor,
               class_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 33. Returns the loss and its parts (floats, for logging)."""
    fusion = masked_nll(fuse(logits), labels, mask, class_weights)
    parts = {"fusion": fusion}
    loss = fusion
    for name, z in logits.items():
        unimodal = masked_nll(F.log_softmax(z, dim=-1), labels, mask, class_weights)
        loss = loss + unimodal * (unimodal / 10.0)
        parts[name] = unimodal
    return loss, {k: float(v.detach()) for k, v in parts.items()}
