"""Per-utterance predictions, one module for their format: the evaluate stage's test predictions
(``metrics/<name>_test_predictions.csv``) and the predict CLI's ``predictions.csv`` /
``predictions.json`` are built here.

Columns, in order: ``[seed,] dialogue_id, turn, utterance_id, speaker, start_s, end_s, text, gold,
predicted, confidence, p_<label>`` for every class (the fused probabilities, Eq. 30), then per
modality ``<modality>_predicted`` (that modality's head alone, Eq. 28; empty where the utterance
had no such input), ``modalities`` (those that reached the fused prediction, ``;``-separated) and
``missing`` (``modality: reason`` for each one that did not). An utterance with no modality at all
gets the uniform distribution: its ``predicted`` is then no evidence, and ``missing`` says why.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from model.training import Inference
from pipeline.lib import spreadsheet
from pipeline.lib.manifest import Manifest

ID_COLUMNS = ["dialogue_id", "turn", "utterance_id", "speaker", "start_s", "end_s", "text"]
NO_INPUT = "no input (see errors.csv)"


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def prediction_table(m: Manifest, out: Inference, labels: Sequence[str],
                     reasons: Mapping[str, Mapping[str, str]] | None = None,
                     seed: int | None = None) -> pd.DataFrame:
    """One row per utterance of ``out``, in manifest order. ``reasons``: modality -> utterance id
    -> why that modality is absent (e.g. the extractor's failure), else :data:`NO_INPUT`."""
    order = np.argsort(out.rows, kind="stable")
    rows = out.rows[order]
    base = m.table.loc[rows, ID_COLUMNS].reset_index(drop=True)
    probs = np.exp(out.log_probs[order].astype(np.float64))
    table = pd.DataFrame({"seed": seed} if seed is not None else {}, index=base.index)
    table = pd.concat([table, base], axis=1)
    table["gold"] = m.table.loc[rows, "label"].to_numpy()
    table["predicted"] = [labels[i] for i in probs.argmax(1)]
    table["confidence"] = probs.max(1).round(6)
    for i, label in enumerate(labels):
        table[f"p_{label}"] = probs[:, i].round(6)
    absent = _absent(out, order, table["utterance_id"].tolist(), reasons)
    for modality, logits in out.logits.items():
        present = out.present[modality][order]
        table[f"{modality}_predicted"] = np.where(present, [labels[i] for i in logits[order].argmax(1)], "")
    used = [[m for m in out.logits if absent[m][k] is None] for k in range(len(rows))]
    missing = [[f"{m}: {absent[m][k]}" for m in out.logits if absent[m][k] is not None]
               for k in range(len(rows))]
    table["modalities"] = [";".join(u) for u in used]
    table["missing"] = ["; ".join(x) for x in missing]
    return table


def _absent(out: Inference, order: np.ndarray, uids: list[str],
            reasons: Mapping[str, Mapping[str, str]] | None) -> dict[str, list[str | None]]:
    """Per modality, per utterance (in ``order``): why it is absent, or None where it was used."""
    return {m: [None if has else (reasons or {}).get(m, {}).get(uid, NO_INPUT)
                for uid, has in zip(uids, out.present[m][order])] for m in out.logits}


def write_csv(path: Path, table: pd.DataFrame) -> Path:
    """A predictions table as a spreadsheet-safe CSV (:mod:`pipeline.lib.spreadsheet`)."""
    return spreadsheet.write_csv(path, table, float_format="%.6g")


def utterance_records(table: pd.DataFrame, out: Inference, labels: Sequence[str],
                      reasons: Mapping[str, Mapping[str, str]] | None = None) -> list[dict]:
    """The JSON form of :func:`prediction_table`'s rows, with each modality's own probabilities."""
    order = np.argsort(out.rows, kind="stable")
    absent = _absent(out, order, table["utterance_id"].tolist(), reasons)
    own = {m: softmax(logits[order].astype(np.float64)) for m, logits in out.logits.items()}
    records = []
    for k, row in enumerate(table.to_dict("records")):
        modalities = {m: {"used": absent[m][k] is None,
                          "predicted": row[f"{m}_predicted"] or None,
                          "probabilities": None if absent[m][k] is not None else
                          {lab: round(float(p), 6) for lab, p in zip(labels, own[m][k])},
                          "missing": absent[m][k]} for m in out.logits}
        records.append({
            **{key: _plain(row[key]) for key in ID_COLUMNS + ["gold"]},
            "predicted": row["predicted"], "confidence": row["confidence"],
            "probabilities": {lab: row[f"p_{lab}"] for lab in labels},
            "modalities": modalities})
    return records


def write_json(path: Path, header: dict, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**header, "utterances": records}, indent=2, ensure_ascii=False,
                               default=_plain) + "\n", encoding="utf-8")
    return path


def _plain(value):
    """JSON-ready: numpy scalars as Python numbers, NaN as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
