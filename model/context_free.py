"""Context-free utterance classifier: multinomial logistic regression on one utterance's features.

The baseline that tells how much the dialogue graph adds: it sees each utterance alone (no
speakers, no neighbours). Features are standardised with train statistics; the inverse regularisation
strength ``C`` is picked on dev wa-F1 (never on test). lbfgs is deterministic: no seed is involved.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from config.vocabulary import check_class_weights
from model.scores import scores


@dataclass
class Selected:
    classifier: Pipeline
    C: float
    dev_wa_f1: float
    dev_by_C: dict[float, float]


def fit_logistic_regression(x_train: np.ndarray, y_train: np.ndarray, x_dev: np.ndarray,
                            y_dev: np.ndarray, Cs: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
                            class_weights: str = "inverse_frequency", max_iter: int = 2000) -> Selected:
    """Fit one classifier per ``C``; keep the best on dev weighted F1 (first wins ties)."""
    if not len(Cs):
        raise ValueError("baseline.Cs: give at least one value")
    check_class_weights(class_weights, "baseline.class_weights")
    weight = "balanced" if class_weights == "inverse_frequency" else None   # n / (k * count_c)
    best: Selected | None = None
    dev_by_c = {}
    for c in Cs:
        classifier = make_pipeline(StandardScaler(), LogisticRegression(
            C=float(c), class_weight=weight, max_iter=max_iter))
        classifier.fit(x_train, y_train)
        dev_by_c[float(c)] = scores(y_dev, classifier.predict(x_dev))["wa_f1"]
        if best is None or dev_by_c[float(c)] > best.dev_wa_f1:
            best = Selected(classifier, float(c), dev_by_c[float(c)], dev_by_c)
    return best
