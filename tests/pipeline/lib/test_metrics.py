"""Scores when the test split lacks a class: what macro F1 averages over is said, and the per-class
table marks the classes whose zeros are not scores."""
import csv

import numpy as np
from sklearn.metrics import f1_score

from pipeline.lib.metrics import build_details, classification_report, write_per_class_csv

LABELS = ["neu", "hap", "sad", "ang"]


def test_macro_f1_averages_over_the_classes_with_test_support(tmp_path):
    gold = np.array([0, 0, 2, 2, 3, 3])          # no 'hap' in test
    pred = np.array([0, 1, 2, 0, 3, 3])          # ... yet the model predicts it once
    report = classification_report(gold, pred, LABELS)
    assert report["macro_f1_classes"] == ["neu", "sad", "ang"]
    assert report["no_test_support"] == ["hap"] and report["predicted_without_support"] == ["hap"]
    assert report["macro_f1"] == f1_score(gold, pred, labels=[0, 2, 3], average="macro")
    quiet = classification_report(gold, np.array([0, 0, 2, 0, 3, 3]), LABELS)
    assert quiet["no_test_support"] == ["hap"] and quiet["predicted_without_support"] == []
    # The same average whether or not the absent class is predicted (sklearn's defaults differ).
    assert quiet["macro_f1"] == f1_score(gold, [0, 0, 2, 0, 3, 3], labels=[0, 2, 3], average="macro")

    details = build_details("demo", LABELS, [report, quiet], {"test": 6}, run_info={}, selection={},
                            provenance={})
    assert details["macro_f1_classes"] == ["neu", "sad", "ang"]
    assert details["predicted_without_support"] == ["hap"]
    write_per_class_csv(tmp_path / "per_class.csv", details)
    rows = {r["label"]: r for r in csv.DictReader(open(tmp_path / "per_class.csv"))}
    assert rows["hap"]["note"] == "no test support, predicted: not in macro F1" and rows["neu"]["note"] == ""
