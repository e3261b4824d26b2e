"""The ``baseline`` params: the context-free logistic regression on the same features
(:mod:`model.context_free`), its C picked on dev."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BaselineConfig:
    """The ``baseline`` section."""

    Cs: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])   # grid, picked on dev
    class_weights: str = "inverse_frequency"      # inverse_frequency | none
    max_iter: int = 2000
