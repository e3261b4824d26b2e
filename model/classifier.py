"""Classifier heads and the training loss (AMB-DSGDN, Eq. 28-33).

- Eq. 28: per-modality head ``Linear(Dropout(ReLU(h_m)))`` -> logits ``z_m``;
- Eq. 29-30: fused logits ``O = sum_m z_m`` and ``P = log_softmax(O)``. An utterance without a
  modality's features (``present`` False: missing media, failed extraction) takes no part of that
  modality: its ``z_m`` leaves the sum. Optional fusion weights give ``O = sum_m w_m z_m`` (the
  extreme-imbalance experiment of Section 6.7; every ``w_m = 1`` is the paper's Eq. 29);
- Eq. 31-32: masked NLL (padding excluded), optional class weights, for the fusion and each modality
  (a modality's term only over the utterances that have it);
- Eq. 33: ``L = L_fusion + sum_m alpha_m L_m`` with ``alpha_m = L_m / 10``, not detached, as in the
  public code (``t_loss * (t_loss / 10)``): each auxiliary term is ``L_m^2 / 10``, its gradient
  ``2 alpha_m dL_m``, so harder modalities get more of the auxiliary signal.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from model.dropout import Dropout


class ModalityHead(nn.Module):
    r"""Eq. 28 (public code's form): :math:`z_m = W_m\,\mathrm{Dropout}(\mathrm{ReLU}(h_m)) + b_m`.

    Shapes:
        :math:`(B, L, d_h)` -> logits :math:`(B, L, C)`.
    """

    def __init__(self, d_hidden: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = Dropout(dropout)
        self.linear = nn.Linear(d_hidden, num_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(F.relu(h)))


def fuse(logits: Mapping[str, torch.Tensor],
         present: Mapping[str, torch.Tensor] | None = None,
         weights: Mapping[str, float] | None = None) -> torch.Tensor:
    """Eq. 29-30: log-probabilities of the summed per-modality logits; with ``present``
    (modality -> (B, L) bool) a modality's logits count only where the utterance has it; with
    ``weights`` (modality -> w_m, default 1) each term is scaled by its weight."""
    terms = [z if present is None else z * present[m][..., None].to(z.dtype) for m, z in logits.items()]
    if weights:
        terms = [t * float(weights.get(m, 1.0)) for m, t in zip(logits, terms)]
    return F.log_softmax(torch.stack(terms).sum(0), dim=-1)


def scored_nll(log_probs: torch.Tensor, labels: torch.Tensor, scored: torch.Tensor,
               class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 32: NLL over the ``scored`` utterances only; weighted mean like ``F.nll_loss``."""
    return F.nll_loss(log_probs[scored], labels[scored], weight=class_weights)


def total_loss(logits: Mapping[str, torch.Tensor], labels: torch.Tensor, scored: torch.Tensor,
               class_weights: torch.Tensor | None = None,
               present: Mapping[str, torch.Tensor] | None = None,
               fusion_weights: Mapping[str, float] | None = None
               ) -> tuple[torch.Tensor, dict[str, float]]:
    r"""Eq. 31-33:

    .. math::
        \mathcal{L} = \mathcal{L}_{fusion} + \sum_m \alpha_m \mathcal{L}_m, \qquad
        \alpha_m = \mathcal{L}_m / 10

    each term a (class-weighted) NLL over the ``scored`` utterances (real, labelled, trainable;
    for :math:`\mathcal{L}_m`, those with modality m ``present``). A term with no utterance to score
    (e.g. a modality absent from the whole batch) is left out.

    Shapes:
        ``logits`` modality -> :math:`(B, L, C)`, ``labels`` :math:`(B, L)`, ``scored`` :math:`(B, L)`
        bool, ``class_weights`` :math:`(C,)` -> the scalar loss and its parts (floats, for logging).
    """
    by_head = {m: scored if present is None else scored & present[m] for m in logits}
    fused = torch.stack(list(by_head.values())).any(0)
    loss = None
    parts: dict[str, torch.Tensor] = {}
    if fused.any():
        fused_log_probs = fuse(logits, present, fusion_weights)
        parts["fusion"] = loss = scored_nll(fused_log_probs, labels, fused, class_weights)
    for name, z in logits.items():
        if not by_head[name].any():
            continue
        unimodal = scored_nll(F.log_softmax(z, dim=-1), labels, by_head[name], class_weights)
        term = unimodal * (unimodal / 10.0)
        loss = term if loss is None else loss + term
        parts[name] = unimodal
    if loss is None:
        loss = sum(z.sum() for z in logits.values()) * 0.0    # nothing to learn from this batch
    return loss, {k: float(v.detach()) for k, v in parts.items()}
