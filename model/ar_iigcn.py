"""AR-IIGCN (Shou et al., arXiv 2312.16778): adversarial representation with intra- and
inter-modal graph contrastive learning. Only the abstract and outline are public; each part below
says where it comes from (the abstract's words, the same authors' public AGF-IB code, or our
choice); docs/ar_iigcn.md has the provenance table.

Per modality ``m`` (any subset of text, audio, visual):

1. an MLP into the modality's **own space** (abstract: "separate feature spaces"):
   :math:`h_m = W_2\\,\\mathrm{Dropout}(\\mathrm{ReLU}(W_1 \\mathrm{LN}(x_m)))`; the LayerNorm is our
   choice: features arrive on very different scales (openSMILE functionals reach 1e4), and
   without it the first epochs' logits saturate;
2. the **tri-modal GAN** (abstract; form from AGF-IB, :mod:`model.tri_gan`): the graph sees
   :math:`h_m + G_m(h_m)` (our choice: the GAN acts *before* the modalities' graphs, and its
   modality-invariant part is added to the modality's own features rather than replacing them:
   with :math:`G_m(h_m)` alone the class signal had to pass an LSTM the adversarial term pulls
   towards indistinguishability, and on the demo the model stayed at chance for 8 epochs); with
   one modality there is no GAN and the graph sees :math:`h_m`;
3. a **speaker-relational graph** per modality (abstract): the utterances of a dialogue within
   ``window`` turns, edges typed by same/other speaker and past/future (the relations of
   :mod:`model.graph`), ``graph_layers`` relational graph convolutions (R-GCN, our choice of
   convolution), residual from the GAN's output on:
   :math:`z_m \\leftarrow z_m + \\mathrm{Dropout}(\\mathrm{ReLU}(\\mathrm{RGCN}_l(z_m)))`;
4. **ICCL / IMCL** on :math:`z_m` (:mod:`model.contrastive`), in the trainer;
5. an **MLP emotion classifier** on the concatenated :math:`z_m` (abstract): the fused prediction.

Per-modality outputs (what ``predict`` reports as each modality's vote) are linear probes on the
detached :math:`z_m`: trained beside the model, they read each modality's representation without
changing it (the abstract has a single classifier).

Shapes: features modality -> :math:`(B, L, d_m)`, speakers/labels :math:`(B, L)`, lengths
:math:`(B,)`; outputs modality -> logits :math:`(B, L, C)`, ``"fused"`` log-probabilities.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from config.ar_iigcn import ARIIGCNConfig
from model.graph import INTER_FUTURE, INTER_PAST, INTRA_FUTURE, INTRA_PAST, relational_subgraphs
from model.tri_gan import TriModalGAN

RELATIONS = (INTRA_PAST, INTRA_FUTURE, INTER_PAST, INTER_FUTURE)   # self: the convolution's own weight


class ModalityMLP(nn.Module):
    """Step 1: ``d_in -> d_hidden`` in the modality's own space (LayerNorm first)."""

    def __init__(self, d_in: int, d_hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(d_in), nn.Linear(d_in, d_hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(d_hidden, d_hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class RelationalGraphConv(nn.Module):
    r"""Step 3, one layer (R-GCN, Schlichtkrull et al. 2018):

    .. math::
        z'_i = W_0 z_i + \sum_{r} \frac{1}{|N_r(i)|} \sum_{j \in N_r(i)} W_r z_j

    over the relations :data:`RELATIONS` (same speaker past/future, other speaker past/future).

    Shapes: ``z`` :math:`(B, L, d)`, ``adj`` :math:`(B, L, L)` edge types -> :math:`(B, L, d)`.
    """

    def __init__(self, d: int) -> None:
        super().__init__()
        self.self_weight = nn.Linear(d, d)
        self.weights = nn.Parameter(torch.empty(len(RELATIONS), d, d))
        bound = math.sqrt(6.0 / (2 * d))
        nn.init.uniform_(self.weights, -bound, bound)

    def forward(self, z: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        out = self.self_weight(z)
        for k, relation in enumerate(RELATIONS):
            a = (adj == relation).to(z.dtype)
            a = a / a.sum(-1, keepdim=True).clamp(min=1)
            out = out + a @ (z @ self.weights[k])
        return out


class ARIIGCN(nn.Module):
    """The model; see the module docstring. ``encode`` gives the trainer what its losses need."""

    name = "ar_iigcn"               # its entry in model.MODELS, recorded in checkpoints
    config_class = ARIIGCNConfig
    trainee = "model.ar_iigcn_training:ARIIGCNTrainee"

    def __init__(self, config: ARIIGCNConfig) -> None:
        super().__init__()
        self.config = c = config
        self.modalities = list(c.input_dims)
        self.encoders = nn.ModuleDict({m: ModalityMLP(d, c.d_hidden, c.dropout)
                                       for m, d in c.input_dims.items()})
        self.gan = (TriModalGAN(self.modalities, c.d_hidden, c.d_hidden, c.disc_hidden)
                    if c.gan and len(self.modalities) > 1 else None)
        self.graphs = nn.ModuleDict({m: nn.ModuleList(RelationalGraphConv(c.d_hidden)
                                                      for _ in range(c.graph_layers))
                                     for m in self.modalities})
        self.dropout = nn.Dropout(c.dropout)
        self.classifier = nn.Sequential(
            nn.Linear(len(self.modalities) * c.d_hidden, c.d_hidden), nn.ReLU(), nn.Dropout(c.dropout),
            nn.Linear(c.d_hidden, c.num_classes))
        self.probes = nn.ModuleDict({m: nn.Linear(c.d_hidden, c.num_classes) for m in self.modalities})

    def encode(self, features: Mapping[str, torch.Tensor], speakers: torch.Tensor, lengths: torch.Tensor,
               present: Mapping[str, torch.Tensor] | None = None) -> dict[str, dict[str, torch.Tensor]]:
        """``{"spaces": h_m, "generated": G_m(h_m) (empty without a GAN), "nodes": z_m,
        "available": (B, L) bool per modality}``."""
        real = torch.arange(speakers.shape[1], device=speakers.device)[None] < lengths[:, None]
        available = {m: real & present[m] if present is not None else real for m in self.modalities}
        spaces = {m: self.encoders[m](features[m] * available[m][..., None].to(features[m].dtype))
                  * available[m][..., None].to(features[m].dtype) for m in self.modalities}
        generated = self.gan.generate(spaces, lengths) if self.gan is not None else {}
        adj_s, adj_c = relational_subgraphs(speakers, lengths, self.config.window)
        adj = torch.where(adj_s > 0, adj_s, adj_c)          # disjoint but for the self loop
        nodes = {}
        for m in self.modalities:
            a = adj * (available[m][:, :, None] & available[m][:, None, :])   # absent: no node
            z = spaces[m] + generated[m] if m in generated else spaces[m]
            for layer in self.graphs[m]:
                z = z + self.dropout(F.relu(layer(z, a)))
            nodes[m] = z * available[m][..., None].to(z.dtype)
        return {"spaces": spaces, "generated": generated, "nodes": nodes, "available": available}

    def classify(self, nodes: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Fused logits (step 5) under ``"fused_logits"`` and each modality's probe logits."""
        fused = self.classifier(torch.cat([nodes[m] for m in self.modalities], dim=-1))
        return {**{m: self.probes[m](nodes[m].detach()) for m in self.modalities}, "fused_logits": fused}

    def forward(self, features: Mapping[str, torch.Tensor], speakers: torch.Tensor, lengths: torch.Tensor,
                present: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Per-modality probe logits and ``"fused"`` log-probabilities."""
        out = self.classify(self.encode(features, speakers, lengths, present)["nodes"])
        fused = out.pop("fused_logits")
        return {**out, "fused": F.log_softmax(fused.float(), dim=-1)}
