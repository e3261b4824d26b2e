"""The ``model`` params: AMB-DSGDN's sizes and choices (paper §5.4 defaults, Eq. numbers in
:mod:`model.ambdsgdn`). ``input_dims`` and ``num_classes`` come from the data, not from params.yaml;
``graph`` names an entry of :data:`model.ambdsgdn.GRAPHS` (checked where the model is built)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
    depth: int = 1                             # lambda_init depth of both blocks (public code)
    dropout: float = 0.5                       # encoders and heads
    graph_dropout: float = 0.2                 # DiffRGCN blocks: input, between layers, maps
    rel_dim: int = 10                          # relation embedding d_r (Eq. 12)
    # Eq. 29 weights w_m of O = sum_m w_m z_m; a modality not named weighs 1 (the paper's plain sum).
    # The extreme-imbalance experiment (Section 6.7, Fig. 8) sets text 0.8, visual 0.1, audio 0.1.
    fusion_weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The model is modality-agnostic: any names, in the order given (the run's `modalities`).
        if not self.input_dims:
            raise ValueError("modalities: empty (the model needs at least one modality's features)")
        if self.window < 1:
            raise ValueError(f"model.window={self.window}: must be >= 1")
        if self.d_hidden % 2 or self.d_hidden % self.encoder_heads:
            raise ValueError(f"model.d_hidden={self.d_hidden}: must be even and divisible by "
                             f"model.encoder_heads={self.encoder_heads}")
        for key in ("dropout", "graph_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ValueError(f"model.{key}={getattr(self, key)}: must be in [0, 1)")
        for name, weight in self.fusion_weights.items():
            if name not in self.input_dims:
                raise ValueError(f"model.fusion_weights.{name}: not a modality of this run "
                                 f"({', '.join(self.input_dims)})")
            number = isinstance(weight, (int, float)) and not isinstance(weight, bool)
            if not number or not 0 < weight < float("inf"):
                raise ValueError(f"model.fusion_weights.{name}={weight!r}: must be a positive number")

    def fusion_weight(self, modality: str) -> float:
        """w_m of Eq. 29 (1 unless ``fusion_weights`` names the modality)."""
        return float(self.fusion_weights.get(modality, 1.0))

    def to_dict(self) -> dict:
        return asdict(self)
