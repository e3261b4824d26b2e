"""AR-IIGCN's two graph contrastive losses (arXiv 2312.16778; only its abstract and outline are
public, so the forms are our choice from its words, as below).

The abstract: **ICCL** contrasts nodes *with different emotions within one modality*
(intra-modal, inter-class) and **IMCL** contrasts nodes *with the same emotion across modalities*
(inter-modal, intra-class), "learning class boundaries", with a *modal margin* ``β`` as a studied
hyper-parameter and *several contrastive variants* compared. Our reading, each a param:

- ``form: margin`` (default; ``β`` is a margin, as "modal margin" says): per anchor node ``i``,
  with cosine distance :math:`d = 1 - \\cos`,

  .. math::
      \\ell_i = \\max\\big(0,\\ \\bar d(i, P_i) - \\bar d(i, N_i) + \\beta\\big)

  where :math:`\\bar d(i, S)` is the mean distance from ``i`` to the set ``S``; ICCL takes ``P_i``
  and ``N_i`` in ``i``'s own modality (same class, other nodes; other classes), IMCL in each other
  modality (same class, the utterance itself included; other classes). The loss is the mean of
  :math:`\\ell_i` over anchors that have both a positive and a negative (means, not all triplets:
  O(N²) per batch instead of O(N³)).
- ``form: infonce``: a supervised InfoNCE over the same positive/negative sets, temperature
  ``tau``; ``β`` is then unused (the variant the margin is compared against).

Shapes: ``z`` :math:`(N, d)` node representations, ``y`` :math:`(N,)` labels (only labelled,
real nodes are passed); IMCL takes one ``(N, d)`` per modality, row ``i`` the same utterance.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

FORMS = ("margin", "infonce")


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine distance 1 - cos between every row of ``a`` and every row of ``b``: (N, M)."""
    return 1.0 - F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def _contrast(anchor: torch.Tensor, other: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
              beta: float, form: str, tau: float) -> torch.Tensor:
    """Mean over anchors with a positive and a negative (masks (N, M) bool) of the chosen form."""
    if form not in FORMS:
        raise ValueError(f"model.contrastive={form!r}: use one of {', '.join(FORMS)}")
    valid = positive.any(1) & negative.any(1)
    if not valid.any():
        return anchor.sum() * 0.0                      # nothing to contrast: no gradient, no NaN
    if form == "margin":
        d = _distances(anchor, other)
        mean_pos = (d * positive).sum(1) / positive.sum(1).clamp(min=1)
        mean_neg = (d * negative).sum(1) / negative.sum(1).clamp(min=1)
        return F.relu(mean_pos - mean_neg + beta)[valid].mean()
    logits = (1.0 - _distances(anchor, other)) / tau            # cosine similarity / tau
    logits = logits.masked_fill(~(positive | negative), float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    per_anchor = -(log_prob.masked_fill(~positive, 0.0)).sum(1) / positive.sum(1).clamp(min=1)
    return per_anchor[valid].mean()


def iccl_loss(z: torch.Tensor, y: torch.Tensor, beta: float, form: str = "margin",
              tau: float = 0.1) -> torch.Tensor:
    """ICCL, intra-modal inter-class: one modality's nodes, same class pulled, other classes pushed."""
    same = y[:, None] == y[None, :]
    itself = torch.eye(len(y), dtype=torch.bool, device=y.device)
    return _contrast(z, z, same & ~itself, ~same, beta, form, tau)


def imcl_loss(zs: list[torch.Tensor], y: torch.Tensor, beta: float, form: str = "margin",
              tau: float = 0.1) -> torch.Tensor:
    """IMCL, inter-modal intra-class: each modality's nodes against every other modality's, the
    same class pulled (the same utterance included), other classes pushed; the mean over ordered
    modality pairs. Fewer than two modalities: zero (a text-only run has no IMCL)."""
    if len(zs) < 2:
        return y.new_zeros((), dtype=torch.float32)
    same = y[:, None] == y[None, :]
    terms = [_contrast(a, b, same, ~same, beta, form, tau)
             for i, a in enumerate(zs) for j, b in enumerate(zs) if i != j]
    return torch.stack(terms).mean()
