"""DiffRGCN: differential relational graph attention (AMB-DSGDN, Eq. 9-18, Alg. 1).

One *layer* with H heads (all heads computed together, not in a Python loop); each head maps
``d_in -> d_out`` and, per head:

- Eq. 9: ``Wh = H W`` (``W``: d_in x d_out), split into a positive and a negative half (d_out/2 each);
- Eq. 10-11: ``q = a_left . Wh_half``, ``k = a_right . Wh_half``, values = the halves themselves;
- Eq. 12: ``e_ij = q_i + k_j + rel_ij`` per half, where ``rel^pos`` and ``rel^neg`` are two separate
  projections of the edge type's relation embedding (d_r = 10); then LeakyReLU(0.2), edges with
  type 0 masked out, softmax over each node's neighbours -> ``alpha+``, ``alpha-``;
- Eq. 13-14: ``lambda = exp(l_left1 . l_right1) - exp(l_left2 . l_right2) + lambda_init`` with
  ``lambda_init = 0.8 - 0.6 exp(-0.3 depth)``, lambda vectors drawn from N(0, 0.1);
- Eq. 15: ``alpha = alpha+ - lambda alpha-`` (dropout on the map, as in the public code);
- Eq. 16-17: ``h' = alpha [Wh_pos | Wh_neg]`` (d_out wide), then, as in the public code, the head's
  own LayerNorm, ``x (1 - lambda_init)`` and GELU;
- Eq. 18: the H heads concatenated -> ``H * d_out``.

The relation term is projected once per relation type (6 of them) and gathered per edge: the same
math as projecting a B x L x L x d_r relation tensor, without allocating it. The gather's backward
sums the edges' gradients per type (:class:`RelationLookup`, :func:`sum_per_type`) in a fixed
order on either device: indexing's own backward (a parallel scatter-add) gave different gradients
from run to run on the CPU, so seeded runs drifted apart, and CUDA's scatter-adds use float atomics.

A *block* (Alg. 1 and the text after Eq. 18; widths and dropouts from the public code):
dropout -> H-head layer (d -> H*d) -> dropout -> output layer (1 head, H*d -> d) -> GELU -> linear
-> residual (the block input) -> LayerNorm. Its dropout (default 0.2) is its own, independent of the
model dropout.

``differential=False`` gives the ``graph: gat`` ablation: the same layer with one attention map
(``alpha = alpha+``, scores from the positive half, no lambda, no ``1 - lambda_init`` scale), on
the same subgraphs and with the same widths.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from model.dropout import Dropout
from model.graph import NUM_RELATIONS

XAVIER_GAIN = 1.414   # the public code's init gain for W, a_left/a_right and the relation projections


def lambda_init_for(depth: int) -> float:
    """Eq. 14: initial lambda of a layer at ``depth`` (1-based)."""
    return 0.8 - 0.6 * math.exp(-0.3 * depth)


def _xavier_(tensor: torch.Tensor, fan_in: int, fan_out: int, gain: float = XAVIER_GAIN) -> None:
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    nn.init.uniform_(tensor, -bound, bound)


def sum_per_type(types: torch.Tensor, values: torch.Tensor, num_types: int) -> torch.Tensor:
    r"""Rows of ``values`` summed per type, :math:`S_{r,k} = \sum_{e: t_e = r} V_{e,k}`, in an order
    that does not change from run to run.

    On the CPU, one ``bincount`` per column: it adds in edge order (the bits of a sequential loop),
    and beats ``index_add_`` (a loop over rows: a DiffRGCN block's forward + backward took 332 ms
    against 224, B=16, L=110, 2 heads, on 2 CPU cores). On CUDA, where both use float atomics (a
    different sum every run) and ``bincount`` synchronises with the host twice per call, a one-hot
    product in float32 (a GEMM: a fixed order, no host sync).

    Shapes:
        ``types`` :math:`(E,)` int64 in ``[0, num_types)``, ``values`` :math:`(E, K)` ->
        :math:`(R, K)`, in ``values``' dtype on the CPU (float64 for other than float32/64 input)
        and float32 on CUDA.
    """
    if values.device.type == "cpu":
        return torch.stack([torch.bincount(types, weights=values[:, k], minlength=num_types)
                            for k in range(values.shape[1])], dim=1)
    return one_hot_sum(types, values, num_types)


def one_hot_sum(types: torch.Tensor, values: torch.Tensor, num_types: int) -> torch.Tensor:
    """:func:`sum_per_type` as ``one_hot(types).T @ values`` in float32 (its CUDA path), never
    under autocast (a backward may be called inside an fp16 region)."""
    with torch.autocast(values.device.type, enabled=False):
        return F.one_hot(types, num_types).to(torch.float32).T @ values.float()


class RelationLookup(torch.autograd.Function):
    """``table[types]`` (``table`` (R, K), ``types`` (B, L, L) int64 -> (B, L, L, K)) whose gradient
    is summed per type by :func:`sum_per_type`: the same on every run, and on the CPU 6x faster than
    indexing's backward."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(types)
        ctx.num_types = table.shape[0]
        return table[types]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (types,) = ctx.saved_tensors
        per_type = sum_per_type(types.reshape(-1), grad.reshape(types.numel(), -1), ctx.num_types)
        return per_type.to(grad.dtype), None


class DiffGraphAttention(nn.Module):
    r"""Differential graph attention layer with H heads, each ``d_in -> d_out`` (Eq. 9-18).

    Per head, on the neighbours :math:`j` of node :math:`i` (edge type :math:`r_{ij} \neq 0`):

    .. math::
        Wh = H W, \quad
        e^{\pm}_{ij} = a^{\pm}_{left} Wh^{\pm}_i + a^{\pm}_{right} Wh^{\pm}_j + rel^{\pm}(r_{ij})
        \quad (9\text{-}12)

        \alpha^{\pm} = \mathrm{softmax}_j(\mathrm{LeakyReLU}_{0.2}(e^{\pm})), \quad
        \lambda = e^{\lambda_{l1} \cdot \lambda_{r1}} - e^{\lambda_{l2} \cdot \lambda_{r2}}
        + \lambda_{init} \quad (13\text{-}14)

        h'_i = \mathrm{GELU}\big((1 - \lambda_{init})\,\mathrm{LN}\big(\textstyle\sum_j
        (\alpha^{+}_{ij} - \lambda \alpha^{-}_{ij})\,[Wh^{+}_j \,\|\, Wh^{-}_j]\big)\big)
        \quad (15\text{-}17)

    and the heads concatenated (Eq. 18). ``differential=False``: :math:`\alpha = \alpha^{+}`, no
    :math:`\lambda`, no :math:`1 - \lambda_{init}` scale (the ``gat`` ablation).

    Args:
        d_in, d_out: input width and per-head output width (even: two halves).
        heads: H. depth: the layer's depth for :math:`\lambda_{init}` (Eq. 14).
        rel_dim: width :math:`d_r` of the relation embedding. attn_dropout: on the attention map.
        differential: two maps subtracted (Eq. 15), or one.

    Shapes:
        input ``x`` :math:`(B, L, d_{in})`, edge types ``adj`` :math:`(B, L, L)` (0 = no edge,
        :mod:`model.graph`) -> :math:`(B, L, H \cdot d_{out})`.
    """

    def __init__(self, d_in: int, d_out: int, heads: int = 1, depth: int = 1, rel_dim: int = 10,
                 attn_dropout: float = 0.0, differential: bool = True) -> None:
        super().__init__()
        if d_out % 2:
            raise ValueError(f"d_out={d_out} must be even (positive and negative halves)")
        self.d_in, self.d_out, self.heads, self.differential = d_in, d_out, heads, differential
        half = d_out // 2
        self.proj = nn.Linear(d_in, heads * d_out, bias=False)                      # Eq. 9
        self.att_left = nn.Parameter(torch.empty(heads, 2, half))                    # Eq. 10
        self.att_right = nn.Parameter(torch.empty(heads, 2, half))
        self.relation = nn.Parameter(torch.empty(heads, NUM_RELATIONS, rel_dim))     # Eq. 12
        self.relation_score = nn.Parameter(torch.empty(heads, 2, rel_dim))          # rel^pos, rel^neg
        self.lambda_init = lambda_init_for(depth)                                    # Eq. 14
        self.lambdas = nn.Parameter(torch.empty(4, heads, half))   # l_left1, l_right1, l_left2, l_right2
        self.norm_weight = nn.Parameter(torch.ones(heads, d_out))  # each head's own LayerNorm
        self.norm_bias = nn.Parameter(torch.zeros(heads, d_out))
        self.dropout = Dropout(attn_dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for h in range(self.heads):   # per head, as one d_in x d_out matrix each
            _xavier_(self.proj.weight.data[h * self.d_out:(h + 1) * self.d_out], self.d_in, self.d_out)
        half = self.d_out // 2
        _xavier_(self.att_left, half, 1)
        _xavier_(self.att_right, half, 1)
        nn.init.normal_(self.relation)                                 # nn.Embedding's init
        _xavier_(self.relation_score, self.relation.shape[-1], 1)
        nn.init.normal_(self.lambdas, mean=0.0, std=0.1)
        nn.init.ones_(self.norm_weight)
        nn.init.zeros_(self.norm_bias)

    def lam(self) -> torch.Tensor:
        """Eq. 13-14: one lambda per head."""
        left1, right1, left2, right2 = self.lambdas
        return torch.exp((left1 * right1).sum(-1)) - torch.exp((left2 * right2).sum(-1)) + self.lambda_init

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        heads, maps = self.heads, 2 if self.differential else 1
        values = self.proj(x).view(batch, length, heads, 2, self.d_out // 2)        # Eq. 9, 11
        used = values[:, :, :, :maps]
        left = torch.einsum("blhsd,hsd->bhsl", used, self.att_left[:, :maps])        # Eq. 10
        right = torch.einsum("blhsd,hsd->bhsl", used, self.att_right[:, :maps])
        per_type = torch.einsum("hrk,hsk->rhs", self.relation, self.relation_score[:, :maps])
        rel = RelationLookup.apply(per_type.reshape(NUM_RELATIONS, heads * maps), adj.long())
        rel = rel.view(batch, length, length, heads, maps).permute(0, 3, 4, 1, 2)   # (B,H,S,L,L)
        scores = F.leaky_relu(left.unsqueeze(-1) + right.unsqueeze(-2) + rel, 0.2)  # Eq. 12
        scores = scores.masked_fill(~(adj > 0)[:, None, None], float("-inf"))
        alpha = torch.softmax(scores, dim=-1).nan_to_num(0.0)   # rows without edges (padding) -> 0
        if self.differential:
            alpha = alpha[:, :, 0] - self.lam().view(1, heads, 1, 1) * alpha[:, :, 1]  # Eq. 15
        else:
            alpha = alpha[:, :, 0]
        alpha = self.dropout(alpha)
        out = torch.einsum("bhij,bjhd->bihd", alpha, values.reshape(batch, length, heads, self.d_out))
        out = F.layer_norm(out, (self.d_out,)) * self.norm_weight + self.norm_bias  # Eq. 16-17
        if self.differential:
            out = out * (1.0 - self.lambda_init)
        return F.gelu(out).reshape(batch, length, heads * self.d_out)               # Eq. 18


class DiffRGCNBlock(nn.Module):
    r"""Alg. 1 block, keeping the width ``d_model`` (even):

    .. math::
        y = \mathrm{LN}\Big(x + W\,\mathrm{GELU}\big(\mathrm{att}^{(1)}(\mathrm{drop}(
        \mathrm{att}^{(H)}(\mathrm{drop}(x), Adj)), Adj)\big)\Big)

    with :math:`\mathrm{att}^{(H)}` an H-head :class:`DiffGraphAttention` (``d -> H d``) and
    :math:`\mathrm{att}^{(1)}` a one-head output layer (``H d -> d``).

    Args:
        d_model: width. heads: H. depth: :math:`\lambda_{init}` depth. dropout: the block's own.
        rel_dim: :math:`d_r`. differential: Eq. 15 (True) or the single-map ablation.

    Shapes:
        ``x`` :math:`(B, L, d)`, ``adj`` :math:`(B, L, L)` edge types -> :math:`(B, L, d)`.
    """

    def __init__(self, d_model: int, heads: int = 2, depth: int = 1, dropout: float = 0.2,
                 rel_dim: int = 10, differential: bool = True) -> None:
        super().__init__()
        self.heads = DiffGraphAttention(d_model, d_model, heads, depth, rel_dim, dropout, differential)
        self.output = DiffGraphAttention(heads * d_model, d_model, 1, depth, rel_dim, dropout,
                                         differential)
        self.dropout = Dropout(dropout)
        self.linear = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        h = self.heads(self.dropout(x), adj)
        h = F.gelu(self.output(self.dropout(h), adj))
        return self.norm(x + self.linear(h))
