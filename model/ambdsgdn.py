"""The AMB-DSGDN network (arXiv 2603.10043, Section 4): encoders -> relational graphs -> heads.

Per modality m (any subset of text/audio/visual, dims taken from the feature caches):
utterance encoder (Eq. 1-6, :mod:`model.encoder`) -> inter-speaker DiffRGCN block on ``Adj_c``
then intra-speaker block on ``Adj_s`` (Eq. 7-18, :mod:`model.graph`, :mod:`model.diffrgcn`)
-> head (Eq. 28-29, :mod:`model.classifier`). Fusion and loss: Eq. 30-33. Adaptive modality
dropout (Eq. 19-27, :mod:`model.modality_dropout`) acts on the inputs during training and lives in
the training loop. Ablations: ``graph`` = ``diff`` | ``gat`` (single-map attention on the same
subgraphs) | ``none`` (encoder straight to the heads).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from model.classifier import ModalityHead, fuse
from model.diffrgcn import DiffRGCNBlock
from model.encoder import ModalityEncoder
from model.graph import relational_subgraphs

MODALITIES = ("text", "audio", "visual")
GRAPHS = ("diff", "gat", "none")


@dataclass
class ModelConfig:
    input_dims: dict[str, int]                 # modality -> feature dim (from the caches)
    num_classes: int
    d_hidden: int = 512
    window: int = 20
    graph: str = "diff"
    graph_heads: int = 2                       # differential heads per DiffRGCN block
    encoder_heads: int = 8
    contextual: list[str] = field(default_factory=lambda: ["audio", "visual"])
    max_speakers: int = 9
    depth: int = 1                             # lambda_init depth of the first block
    dropout: float = 0.5

    def __post_init__(self) -> None:
        unknown = [m for m in self.input_dims if m not in MODALITIES]
        if unknown or not self.input_dims:
            raise ValueError(f"model.modalities: unknown or empty {unknown or list(self.input_dims)} "
                             f"(expected a subset of {', '.join(MODALITIES)})")
        if self.graph not in GRAPHS:
            raise ValueError(f"model.graph={self.graph!r}: use one of {', '.join(GRAPHS)}")
        if self.window < 1:
            raise ValueError(f"model.window={self.window}: must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


class AMBDSGDN(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.modalities = list(c.input_dims)
        self.encoders = nn.ModuleDict({
            m: ModalityEncoder(d, c.d_hidden, m in c.contextual, c.max_speakers, c.encoder_heads,
                               c.dropout) for m, d in c.input_dims.items()})
        if c.graph != "none":
            diff = c.graph == "diff"
            self.inter = nn.ModuleDict({m: DiffRGCNBlock(c.d_hidden, c.graph_heads, c.depth,
                                                         c.dropout, differential=diff)
                                        for m in self.modalities})
            self.intra = nn.ModuleDict({m: DiffRGCNBlock(c.d_hidden, c.graph_heads, c.depth + 1,
                                                         c.dropout, differential=diff)
                                        for m in self.modalities})
        self.heads = nn.ModuleDict({m: ModalityHead(c.d_hidden, c.num_classes, c.dropout)
                                    for m in self.modalities})

    def forward(self, features: Mapping[str, torch.Tensor], speakers: torch.Tensor,
                lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-modality logits ``(B, L, C)`` and ``"fused"`` log-probabilities (Eq. 30-31)."""
        mask = torch.arange(speakers.shape[1], device=speakers.device)[None] < lengths[:, None]
        if self.config.graph != "none":
            adj_s, adj_c = relational_subgraphs(speakers, lengths, self.config.window)
        logits = {}
        for m in self.modalities:
            h = self.encoders[m](features[m], speakers, mask)
            if self.config.graph != "none":
                h = self.intra[m](self.inter[m](h, adj_c), adj_s)
            logits[m] = self.heads[m](h)
        return {**logits, "fused": fuse(logits)}
