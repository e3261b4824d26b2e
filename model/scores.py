"""The scores every selection and report uses (the field's convention for IEMOCAP and MELD):
weighted-average F1 (wa-F1, support-weighted over classes) and accuracy (wa-ACC)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score


def scores(gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """``{"wa_f1", "wa_acc"}`` of predictions ``pred`` against labels ``gold``."""
    return {"wa_f1": float(f1_score(gold, pred, average="weighted", zero_division=0)),
            "wa_acc": float(accuracy_score(gold, pred))}
