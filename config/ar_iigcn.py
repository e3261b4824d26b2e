"""The ``model.ar_iigcn`` params: AR-IIGCN's sizes, parts and loss weights (:mod:`model.ar_iigcn`;
arXiv 2312.16778 publishes no equations or sizes: every default is our choice, documented in
docs/ar_iigcn.md). ``input_dims`` and ``num_classes`` come from the data."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from config.vocabulary import check_choice

CONTRASTIVE_FORMS = ("margin", "infonce")


@dataclass
class ARIIGCNConfig:
    input_dims: dict[str, int]
    num_classes: int
    d_hidden: int = 256            # each modality's own space (the MLP encoders)
    window: int = 10               # speaker-relational graph: neighbours within the window
    graph_layers: int = 2          # relational graph convolutions per modality
    dropout: float = 0.5           # AGF-IB's
    gan: bool = True               # the tri-modal GAN (needs >= 2 modalities)
    disc_hidden: int = 128         # each discriminator's BiLSTM width
    iccl: bool = True              # intra-modal inter-class contrast
    imcl: bool = True              # inter-modal intra-class contrast (needs >= 2 modalities)
    contrastive: str = "margin"    # margin (beta as the margin) | infonce (temperature tau)
    beta: float = 0.2              # the modal margin
    tau: float = 0.1
    weight_gan: float = 0.1        # loss weights beside the classification term
    weight_iccl: float = 0.1
    weight_imcl: float = 0.1

    def __post_init__(self) -> None:
        if not self.input_dims:
            raise ValueError("modalities: empty (the model needs at least one modality's features)")
        check_choice(self.contrastive, CONTRASTIVE_FORMS, "model.ar_iigcn.contrastive")
        for key in ("window", "graph_layers", "d_hidden", "disc_hidden"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"model.ar_iigcn.{key}={getattr(self, key)}: must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.ar_iigcn.dropout={self.dropout}: must be in [0, 1)")
        for key in ("weight_gan", "weight_iccl", "weight_imcl", "tau"):
            if getattr(self, key) < 0 or (key == "tau" and self.tau == 0):
                raise ValueError(f"model.ar_iigcn.{key}={getattr(self, key)}: must be positive")

    def to_dict(self) -> dict:
        return asdict(self)
