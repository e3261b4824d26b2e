"""DiffRGCN: differential relational graph attention (AMB-DSGDN, Eq. 9-18, Alg. 1).

One *layer* with H heads (all heads computed together, not in a Python loop), per head:

- Eq. 9-10: ``[P | N] = H W``: the projection split into a positive and a negative half (d each);
- Eq. 11-12: GAT-style additive scores per half, ``e_ij = a_l . x_i + a_r . x_j``, plus the
  relation embedding of the edge type ``r(A_ij)`` added to both score maps, then LeakyReLU(0.2);
- Eq. 13: masked softmax over each node's neighbours (edge type > 0) -> ``alpha+``, ``alpha-``;
- Eq. 14-15: ``lambda = exp(lq1 . lk1) - exp(lq2 . lk2) + lambda_init`` with
  ``lambda_init = 0.8 - 0.6 exp(-0.3 depth)``, vectors initialised N(0, 0.1);
  ``alpha = alpha+ - lambda alpha-``;
- Eq. 16-18: aggregation of the concatenated values ``alpha [P | N]``, LayerNorm, scale by
  ``1 - lambda_init``, GELU; dropout on the attention map.

The relation term is projected once per relation type (6 of them) and gathered per edge: the same
math as projecting a B x L x L x d relation tensor, without allocating it. The gather's backward
is a per-type ``bincount`` (:class:`RelationLookup`): indexing's own backward (a parallel
scatter-add) gave different gradients from run to run on the CPU, so seeded runs drifted apart.

A *block* (Alg. 1): H-head layer -> dropout -> an output differential layer (1 head) -> linear ->
residual -> LayerNorm.

``differential=False`` gives the ``graph: gat`` ablation: the same layer with one attention map
(``alpha = alpha+``, scores from the first half, no lambda, no ``1 - lambda_init`` scale), on the
same subgraphs and with the same widths.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from model.dropout import Dropout
from model.graph import NUM_RELATIONS


def lambda_init_for(depth: int) -> float:
    """Eq. 15: initial lambda of a layer at ``depth`` (1-based)."""
    return 0.8 - 0.6 * math.exp(-0.3 * depth)


class RelationLookup(torch.autograd.Function):
    """``table[types]`` (``table`` (R, H), ``types`` (B, L, L) int64 -> (B, L, L, H)) whose gradient
    is summed per type with ``bincount``: deterministic, and 6x faster than indexing's backward."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(types)
        ctx.num_types = table.shape[0]
        return table[types]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (types,) = ctx.saved_tensors
        flat, per_edge = types.reshape(-1), grad.reshape(types.numel(), -1)
        sums = [torch.bincount(flat, weights=per_edge[:, h], minlength=ctx.num_types)
                for h in range(per_edge.shape[1])]
        return torch.stack(sums, dim=1).to(grad.dtype), None


class DiffGraphAttention(nn.Module):
    """Differential graph attention layer, H heads (Eq. 9-18). Output dim = heads * 2 * d_head."""

    def __init__(self, d_in: int, d_head: int, heads: int = 1, depth: int = 1, rel_dim: int = 32,
                 attn_dropout: float = 0.0, differential: bool = True) -> None:
        super().__init__()
        self.heads, self.d_head, self.differential = heads, d_head, differential
        self.proj = nn.Linear(d_in, heads * 2 * d_head, bias=False)                  # Eq. 9-10
        self.att_left = nn.Parameter(torch.empty(heads, 2, d_head))                  # Eq. 11-12
        self.att_right = nn.Parameter(torch.empty(heads, 2, d_head))
        self.relation = nn.Embedding(NUM_RELATIONS, rel_dim)
        self.relation_score = nn.Linear(rel_dim, heads, bias=False)
        self.lambda_init = lambda_init_for(depth)                                    # Eq. 15
        self.lambdas = nn.Parameter(torch.empty(4, heads, d_head))  # lq1, lk1, lq2, lk2
        self.norm = nn.LayerNorm(2 * d_head)
        self.dropout = Dropout(attn_dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.xavier_uniform_(self.att_left)
        nn.init.xavier_uniform_(self.att_right)
        nn.init.normal_(self.lambdas, mean=0.0, std=0.1)

    def lam(self) -> torch.Tensor:
        """Eq. 14: one lambda per head."""
        q1, k1, q2, k2 = self.lambdas
        return torch.exp((q1 * k1).sum(-1)) - torch.exp((q2 * k2).sum(-1)) + self.lambda_init

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """``x`` (B, L, d_in), ``adj`` (B, L, L) edge types (0 = none) -> (B, L, heads * 2 * d_head)."""
        batch, length, _ = x.shape
        values = self.proj(x).view(batch, length, self.heads, 2, self.d_head)
        left = torch.einsum("blhsd,hsd->bhsl", values, self.att_left)
        right = torch.einsum("blhsd,hsd->bhsl", values, self.att_right)
        per_type = self.relation_score(self.relation.weight)                        # (R, heads)
        rel = RelationLookup.apply(per_type, adj.long()).permute(0, 3, 1, 2).unsqueeze(2)  # (B,H,1,L,L)
        scores = F.leaky_relu(left.unsqueeze(-1) + right.unsqueeze(-2) + rel, 0.2)   # (B,H,2,L,L)
        edges = (adj > 0)[:, None, None]
        scores = scores.masked_fill(~edges, float("-inf"))
        alpha = torch.softmax(scores, dim=-1).nan_to_num(0.0)   # rows without edges (padding) -> 0
        if self.differential:
            lam = self.lam().view(1, self.heads, 1, 1)
            alpha = alpha[:, :, 0] - lam * alpha[:, :, 1]                            # (B,H,L,L)
        else:
            alpha = alpha[:, :, 0]
        alpha = self.dropout(alpha)
        out = torch.einsum("bhij,bjhd->bihd", alpha, values.reshape(batch, length, self.heads, -1))
        scale = (1.0 - self.lambda_init) if self.differential else 1.0
        out = F.gelu(self.norm(out) * scale)                                         # Eq. 16-18
        return out.reshape(batch, length, self.heads * 2 * self.d_head)


class DiffRGCNBlock(nn.Module):
    """Alg. 1: H-head differential layer -> dropout -> output differential layer -> linear ->
    residual -> LayerNorm. Keeps the width ``d_model`` (must be divisible by 2 * heads)."""

    def __init__(self, d_model: int, heads: int = 2, depth: int = 1, dropout: float = 0.1,
                 attn_dropout: float = 0.0, differential: bool = True) -> None:
        super().__init__()
        if d_model % (2 * heads):
            raise ValueError(f"d_model={d_model} must be divisible by 2 * heads = {2 * heads}")
        self.heads = DiffGraphAttention(d_model, d_model // (2 * heads), heads, depth,
                                        attn_dropout=attn_dropout, differential=differential)
        self.output = DiffGraphAttention(d_model, d_model // 2, 1, depth, attn_dropout=attn_dropout,
                                         differential=differential)
        self.dropout = Dropout(dropout)
        self.linear = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        h = self.output(self.dropout(self.heads(x, adj)), adj)
        return self.norm(x + self.linear(h))
