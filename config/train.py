"""The ``train`` params of the AMB-DSGDN trainer (:mod:`model.training`; paper §5.4 defaults,
adaptive modality dropout Eq. 19-24). The device and the precision are the top-level
``device`` and ``precision`` params."""
from __future__ import annotations

from dataclasses import dataclass

from config.vocabulary import (
    DEFAULT_DEVICE,
    DEFAULT_PRECISION,
    P_METRICS,
    PRECISIONS,
    Q_RULES,
    check_choice,
    check_class_weights,
)


@dataclass
class TrainConfig:
    epochs: int = 100                              # paper §5.4
    batch_size: int = 16
    lr: float = 6.8e-5
    weight_decay: float = 5e-5
    class_weights: str = "inverse_frequency"     # inverse_frequency | none
    device: str = DEFAULT_DEVICE
    precision: str = DEFAULT_PRECISION           # the top-level ``precision`` (CUDA only)
    modality_dropout: bool = True
    warm_up_epochs: int = 60
    q_base: float = 0.3
    lam: float = 0.9
    p_exe: float = 0.5
    q_rule: str = "paper"                         # paper (Eq. 20-24) | public_code | fixed (q_base)
    p_metric: str = "eq19"                        # eq19 | weighted_f1 (public code)

    def __post_init__(self) -> None:
        check_choice(self.q_rule, Q_RULES, "train.q_rule")
        check_choice(self.precision, PRECISIONS, "precision")
        check_choice(self.p_metric, P_METRICS, "train.p_metric")
        check_class_weights(self.class_weights, "train.class_weights")
        for key in ("epochs", "batch_size"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"train.{key}={getattr(self, key)}: must be >= 1")
