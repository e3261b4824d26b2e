"""Class weights of the losses, one definition for training, fine-tuning and the baseline.

``inverse_frequency``: class c weighs n / (k * n_c) on the train split (n utterances, k classes,
n_c those of class c, at least 1), scikit-learn's ``"balanced"``; ``none``: no weights.
"""
from __future__ import annotations

import numpy as np

from config.vocabulary import check_class_weights


def inverse_frequency(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """n / (k * n_c) per class (float64), from the train labels (-1, an unlabelled context
    utterance, counts for no class)."""
    labels = np.asarray(labels)
    counts = np.bincount(labels[labels >= 0], minlength=num_classes)
    return counts.sum() / (num_classes * np.maximum(counts, 1))


def loss_weights(labels: np.ndarray, num_classes: int, kind: str, device=None):
    """The ``weight`` of a cross-entropy loss: a float32 tensor on ``device``, or None for ``none``."""
    check_class_weights(kind, "class_weights")
    if kind == "none":
        return None
    import torch  # lazy: the baseline imports this module and never needs torch

    return torch.tensor(inverse_frequency(labels, num_classes), dtype=torch.float32, device=device)
