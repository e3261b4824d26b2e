"""Bring-your-own corpus: one CSV, one row per utterance.

Required columns: ``dialogue_id, utterance_id, speaker, label, split`` (``train``/``dev``/``test``).
Optional columns (any subset):

- ``turn``: 0-based position in the dialogue (default: the row order within the dialogue);
  must be 0..n-1 per dialogue.
- ``text``: transcript (needed when ``text`` is in ``modalities``).
- ``start_s, end_s``: span in the dialogue timeline, seconds.
- ``audio_path, audio_start_s, audio_end_s``: audio source and the span to cut (empty = whole file).
- ``video_path, video_start_s, video_end_s, video_side``: video source, span, and ``left``/``right``
  when the speaker fills one half of the frame.

Media paths are relative to ``media_root`` (default: the CSV's directory) or absolute. Labels must
belong to ``labels`` when given; otherwise the label set is the sorted set of labels found.
``speaker_idx`` = order of first appearance within the dialogue. Other columns are ignored.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipeline.corpora.common import PrepareOptions, finalize, read_csv_strings
from pipeline.lib.errorlog import ErrorLog
from pipeline.lib.manifest import (
    FLOAT_COLUMNS,
    Manifest,
    ManifestError,
    list_problems,
    normalize_columns,
    speaker_index_by_appearance,
    validate,
)

REQUIRED = ["dialogue_id", "utterance_id", "speaker", "label", "split"]
OPTIONAL = ["turn", "text", "start_s", "end_s", "audio_path", "audio_start_s", "audio_end_s",
            "video_path", "video_start_s", "video_end_s", "video_side"]


def load(path: Path, options: PrepareOptions, *, labels: Sequence[str] | None = None,
         media_root: str | None = None, name: str = "csv") -> tuple[Manifest, ErrorLog]:
    raw = read_csv_strings(path, options.encoding, REQUIRED, "manifest CSV")
    table = raw[[c for c in REQUIRED + OPTIONAL if c in raw.columns]].copy()
    for col in table.columns:
        table[col] = table[col].str.strip()
    _coerce_numbers(table, path)
    if "turn" not in table:
        table["turn"] = table.groupby("dialogue_id", sort=False).cumcount()
    label_set = list(labels) if labels else sorted(set(table["label"]) - {""})
    table["corpus"] = name
    table["speaker_idx"] = 0
    # Validate the user's rows before anything is reordered, so errors cite CSV line numbers.
    validate(normalize_columns(table), label_set, source=str(path), first_row=2, row_word="line")
    table["speaker_idx"] = speaker_index_by_appearance(table)
    root = Path(media_root) if media_root else path.parent
    return finalize(table, corpus=name, root=root, labels=label_set, options=options,
                    log=(log := ErrorLog()), extra_meta={"source_csv": str(path)},
                    source=str(path)), log


def _coerce_numbers(table: pd.DataFrame, path: Path) -> None:
    problems = []
    for col in [c for c in ["turn", *FLOAT_COLUMNS] if c in table]:
        values = pd.to_numeric(table[col].replace("", None), errors="coerce")
        bad = values.isna() & (table[col] != "")
        if col == "turn":
            bad |= values.notna() & (values != values.round())
            bad |= table[col] == ""
        for i in bad[bad].index:
            problems.append(f"line {i + 2} (utterance {table.at[i, 'utterance_id']}): "
                            f"{col} must be a number, got {table.at[i, col]!r}")
        table[col] = values
    if problems:
        raise ManifestError(list_problems(f"{path}: {len(problems)} bad value(s)", problems))
    if "turn" in table:
        table["turn"] = table["turn"].astype(int)
