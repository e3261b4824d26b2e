"""Bring-your-own corpus: one CSV, one row per utterance.

Required columns: ``dialogue_id, utterance_id, speaker, label, split`` (``train``/``dev``/``test``);
read to predict on (``options.labelled`` False), ``label`` and ``split`` are optional.
Optional columns (any subset):

- ``turn``: 0-based position in the dialogue (default: the row order within the dialogue);
  must be 0..n-1 per dialogue.
- ``speaker_idx``: the speaker's integer id in the dialogue (default: order of first appearance),
  e.g. to follow the convention a model was trained with (IEMOCAP: M=0, F=1).
- ``text``: transcript (needed when ``text`` is in ``modalities``).
- ``start_s, end_s``: span in the dialogue timeline, seconds.
- ``audio_path, audio_start_s, audio_end_s``: audio source and the span to cut (empty = whole file).
- ``video_path, video_start_s, video_end_s, video_side``: video source, span, and ``left``/``right``
  when the speaker fills one half of the frame.

Media paths are relative to ``media_root`` (default: the CSV's directory); one that resolves
outside it is refused unless ``prepare.allow_outside_root``. Labels must belong to ``labels`` when
given; otherwise the label set is the sorted set of labels found. Other columns are ignored. A bad
row (unknown label or split, empty id, a turn that is not a number, the wrong number of fields) is
excluded and logged with its line
(:func:`~pipeline.corpora.common.screen_rows`); duplicate utterance ids refuse the corpus.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from config.prepare import PrepareOptions
from config.vocabulary import SOURCE_COLUMN
from pipeline.corpora.common import (
    canonical_labels,
    finalize,
    read_csv_rows,
    refuse_duplicate_ids,
    screen_rows,
)
from pipeline.lib.errorlog import ErrorLog
from pipeline.lib.manifest import FLOAT_COLUMNS, Manifest, speaker_index_by_appearance

REQUIRED = ["dialogue_id", "utterance_id", "speaker", "label", "split"]
LABEL_COLUMNS = ["label", "split"]   # optional when the corpus is read to predict on
OPTIONAL = ["turn", "speaker_idx", "text", "start_s", "end_s", "audio_path", "audio_start_s", "audio_end_s",
            "video_path", "video_start_s", "video_end_s", "video_side"]


def load(path: Path, options: PrepareOptions, *, labels: Sequence[str] | None = None,
         media_root: str | None = None, name: str = "csv") -> tuple[Manifest, ErrorLog]:
    log = ErrorLog()
    required = REQUIRED if options.labelled else [c for c in REQUIRED if c not in LABEL_COLUMNS]
    raw = read_csv_rows(path, options, log, required, "manifest CSV", row_id=lambda f: (
        f.get("split", ""), f.get("dialogue_id", ""), f.get("utterance_id", "")))
    table = raw[[c for c in REQUIRED + OPTIONAL if c in raw.columns]].apply(lambda c: c.str.strip())
    table[["_line", "_source"]] = raw[["_line", "_source"]]
    refuse_duplicate_ids(table, str(path))
    table = _coerce_numbers(table, path, log)
    if "turn" not in table:
        table["turn"] = table.groupby("dialogue_id", sort=False).cumcount()
    declared = None
    if "label" in table:
        table["label"], declared = canonical_labels(table["label"], labels or None, "prepare.csv.labels")
    found = set(table["label"]) - {""} if "label" in table else set()
    label_set = declared or sorted(found)
    table["corpus"] = name
    given = "speaker_idx" in table
    table["speaker_idx"] = table["speaker_idx"] if given else 0
    table = screen_rows(table, label_set, log, str(path), labelled=options.labelled)
    if not given:
        table["speaker_idx"] = speaker_index_by_appearance(table)
    root = Path(media_root) if media_root else path.parent
    return finalize(table, corpus=name, root=root, labels=label_set, options=options, log=log,
                    extra_meta={"source_csv": str(path)}, source=str(path)), log


WHOLE_NUMBERS = ("turn", "speaker_idx")   # a bad value excludes the row
# Which media a span column belongs to: a bad span refuses that modality's media for the row.
SPAN_MEDIA = {"audio_start_s": "audio", "audio_end_s": "audio", "video_start_s": "visual",
              "video_end_s": "visual"}


def _coerce_numbers(table: pd.DataFrame, path: Path, log: ErrorLog) -> pd.DataFrame:
    """Numbers from strings. A bad ``turn`` or ``speaker_idx`` (not a whole number >= 0) excludes
    its row; a bad timeline value is blanked; a bad media span refuses that media for the row (its
    path blanked). Each is logged."""
    table = table.copy()
    excluded = set()
    for col in [c for c in [*WHOLE_NUMBERS, *FLOAT_COLUMNS] if c in table]:
        values = pd.to_numeric(table[col].replace("", None), errors="coerce")
        bad = values.isna() & (table[col] != "")
        if col in WHOLE_NUMBERS:
            bad |= values.notna() & ((values != values.round()) | (values < 0))
            bad |= table[col] == ""
        for i in bad[bad].index:
            r = table.loc[i]
            if col in WHOLE_NUMBERS:
                action = "utterance excluded"
                excluded.add(i)
            elif col in SPAN_MEDIA:
                action = f"{SPAN_MEDIA[col]} media refused (path blanked)"
                table.at[i, SOURCE_COLUMN[SPAN_MEDIA[col]]] = ""
            else:
                action = f"{col} blanked"
            what = "a whole number >= 0" if col in WHOLE_NUMBERS else "a number"
            log.add(split=r.get("split", ""), dialogue_id=r.get("dialogue_id", ""),
                    utterance_id=r.get("utterance_id", ""), modality=SPAN_MEDIA.get(col, ""),
                    problem=f"malformed {col}", detail=f"{col} must be {what}, got {r[col]!r}",
                    action=action, source=r["_source"])
        table[col] = values
    table = table.drop(index=sorted(excluded))
    for col in [c for c in WHOLE_NUMBERS if c in table]:
        table[col] = table[col].astype(int)
    return table
