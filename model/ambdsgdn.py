"""The AMB-DSGDN network (arXiv 2603.10043, Section 4): encoders -> relational graphs -> heads.

Per modality m (any subset of text/audio/visual, dims taken from the feature caches):
utterance encoder (Eq. 1-6, :mod:`model.encoder`; the speaker embedding of Eq. 3 is one table
shared by the contextual modalities) -> inter-speaker DiffRGCN block on ``Adj_c`` then
intra-speaker block on ``Adj_s`` (Eq. 7-18, :mod:`model.graph`, :mod:`model.diffrgcn`) -> for the
contextual modalities (audio, visual) the public code's sigmoid gate ``x * sigmoid(W x + b)`` ->
hidden representation ``F_m`` -> head (Eq. 28, :mod:`model.classifier`). Fusion and loss: Eq. 29-33.

Adaptive modality dropout (Eq. 19-27, :mod:`model.modality_dropout`) acts on the ``F_m`` between
:meth:`AMBDSGDN.encode` and :meth:`AMBDSGDN.classify`; the training loop calls it.

``present`` (modality -> (B, L) bool) marks the utterances that have a modality's features. An
absent utterance's features are zeroed, it is no key of that modality's self-attention and no node
of that modality's graphs, and its head leaves the fused logits: nothing of it reaches any output.

Ablations: ``graph`` = ``diff`` | ``gat`` (single-map attention on the same subgraphs) | ``none``
(encoder straight to the gate/heads).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from config.model import ModelConfig
from config.registry import Registry
from model.classifier import ModalityHead, fuse
from model.diffrgcn import DiffRGCNBlock
from model.encoder import ModalityEncoder
from model.graph import relational_subgraphs

# Graph variants (``model.graph``): config -> one modality's graph block (applied on ``Adj_c``, then
# a second one on ``Adj_s``), or None for no graph. The ablations of Table 6 are entries here.
GRAPHS: Registry[Callable[[ModelConfig], nn.Module | None]] = Registry("model.graph", "graph variant")


@GRAPHS.register("diff")
def differential_graph(c: ModelConfig) -> nn.Module:
    """Eq. 9-18: DiffRGCN, two softmax attention maps per head, subtracted."""
    return DiffRGCNBlock(c.d_hidden, c.graph_heads, c.depth, c.graph_dropout, c.rel_dim, differential=True)


@GRAPHS.register("gat")
def single_map_graph(c: ModelConfig) -> nn.Module:
    """Ablation: the same relational block with one attention map (GAT-style), no subtraction."""
    return DiffRGCNBlock(c.d_hidden, c.graph_heads, c.depth, c.graph_dropout, c.rel_dim, differential=False)


@GRAPHS.register("none")
def no_graph(c: ModelConfig) -> None:
    """Ablation: encoders straight to the gates and heads."""
    return None


class SigmoidGate(nn.Module):
    """``x * sigmoid(W x + b)``: the public code's filter on the audio/visual representations."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.linear(x))


class AMBDSGDN(nn.Module):
    r"""AMB-DSGDN (Section 4): per modality m,

    .. math::
        F_m = \mathrm{gate}\big(\mathrm{DiffRGCN}_{s}(\mathrm{DiffRGCN}_{c}(
        \mathrm{Enc}_m(f_m, s), Adj_c), Adj_s)\big), \qquad
        P = \log\mathrm{softmax}\Big(\sum_m z_m(F_m)\Big)

    (Eq. 1-6, 7-18, 28-30; the gate on contextual modalities only; adaptive modality dropout,
    Eq. 19-27, acts on :math:`F_m` during training, see :mod:`model.training`).

    Args:
        config: :class:`ModelConfig` (modalities and their feature widths, classes, widths,
        window, graph variant from :data:`GRAPHS`, dropouts).

    Shapes:
        ``features`` modality -> :math:`(B, L, d_m)`, ``speakers`` :math:`(B, L)` int,
        ``lengths`` :math:`(B,)`, ``present`` modality -> :math:`(B, L)` bool or None ->
        modality -> logits :math:`(B, L, C)` and ``"fused"`` log-probabilities :math:`(B, L, C)`.
    """

    name = "ambdsgdn"              # its entry in model.MODELS, recorded in checkpoints
    config_class = ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.modalities = list(c.input_dims)
        self.contextual = [m for m in self.modalities if m in c.contextual]
        if self.contextual:   # Eq. 3: E_s, (n_s + 1) x d_h, the last row for padding
            self.speaker = nn.Embedding(c.max_speakers + 1, c.d_hidden, padding_idx=c.max_speakers)
        self.encoders = nn.ModuleDict({
            m: ModalityEncoder(d, c.d_hidden, m in self.contextual, c.encoder_heads, c.dropout)
            for m, d in c.input_dims.items()})
        graph_block = GRAPHS.get(c.graph)
        inter = {m: graph_block(c) for m in self.modalities}   # Eq. 8 subgraph, built first
        intra = {m: graph_block(c) for m in self.modalities}   # Eq. 7 subgraph
        self.inter = self.intra = None
        if None not in inter.values():
            self.inter, self.intra = nn.ModuleDict(inter), nn.ModuleDict(intra)
        self.gates = nn.ModuleDict({m: SigmoidGate(c.d_hidden) for m in self.contextual})
        self.heads = nn.ModuleDict({m: ModalityHead(c.d_hidden, c.num_classes, c.dropout)
                                    for m in self.modalities})

    def encode(self, features: Mapping[str, torch.Tensor], speakers: torch.Tensor,
               lengths: torch.Tensor, present: Mapping[str, torch.Tensor] | None = None
               ) -> dict[str, torch.Tensor]:
        """Hidden representations ``F_m`` ``(B, L, d_hidden)`` per modality (Eq. 1-18 + gate)."""
        real = torch.arange(speakers.shape[1], device=speakers.device)[None] < lengths[:, None]
        speaker_vectors = None
        if self.contextual:
            if (speakers[real] >= self.config.max_speakers).any():
                raise ValueError(f"a dialogue has more than model.max_speakers="
                                 f"{self.config.max_speakers} speakers")
            speaker_vectors = self.speaker(speakers.masked_fill(~real, self.config.max_speakers))
        if self.inter is not None:
            adj_s, adj_c = relational_subgraphs(speakers, lengths, self.config.window)
        hidden = {}
        for m in self.modalities:
            x, available = features[m], real          # real utterances that have modality m
            if present is not None:
                available = real & present[m]
                x = x * available[..., None].to(x.dtype)
            h = self.encoders[m](x, available, speaker_vectors)
            if self.inter is not None:
                a_c, a_s = adj_c, adj_s
                if present is not None and bool((available != real).any()):
                    nodes = available[:, :, None] & available[:, None, :]    # absent utterances: no node
                    a_c, a_s = a_c * nodes, a_s * nodes
                h = self.intra[m](self.inter[m](h, a_c), a_s)
            if m in self.gates:
                h = self.gates[m](h)
            hidden[m] = h
        return hidden

    def classify(self, hidden: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eq. 28: per-modality logits ``(B, L, C)``."""
        return {m: self.heads[m](h) for m, h in hidden.items()}

    def forward(self, features: Mapping[str, torch.Tensor], speakers: torch.Tensor,
                lengths: torch.Tensor, present: Mapping[str, torch.Tensor] | None = None
                ) -> dict[str, torch.Tensor]:
        """Per-modality logits and ``"fused"`` log-probabilities (Eq. 29-30)."""
        logits = self.classify(self.encode(features, speakers, lengths, present))
        return {**logits, "fused": fuse(logits, present, self.fusion_weights)}

    @property
    def fusion_weights(self) -> dict[str, float]:
        """Eq. 29's w_m per modality (1 each unless ``model.fusion_weights`` says otherwise)."""
        return {m: self.config.fusion_weight(m) for m in self.modalities}
