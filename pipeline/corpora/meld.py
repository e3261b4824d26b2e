"""MELD.Raw adapter.

Reads the official ``{train,dev,test}_sent_emo.csv`` (columns ``Sr No., Utterance, Speaker,
Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season, Episode, StartTime, EndTime``) and resolves
``dia{D}_utt{U}.mp4`` (video + audio track) in ``train_splits/``, ``dev_splits_complete/`` and
``output_repeated_splits_test/``.

- Ids: ``dialogue_id = <split>_dia<D>``, ``utterance_id = <split>_dia<D>_utt<U>`` (the numeric ids
  restart in every split).
- Turns: rank of ``Utterance_ID`` within the dialogue. The release skips some ids (e.g. train
  dialogue 1 has no utterance 4); each gap is logged and the turns are renumbered contiguously.
- Speakers: ``speaker_idx`` = order of first appearance within the dialogue.
- ``start_s``/``end_s``: the episode timestamps (``00:16:16,059``); each clip is a whole file.
- Missing or undecodable clips (real release: dev dia110_utt7 missing, train dia125_utt3
  corrupt) follow ``prepare.on_missing_media`` and are listed in ``errors.csv``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from config.prepare import PrepareOptions
from pipeline.corpora.common import canonical_label, finalize, read_csv_rows, require_dir, screen_rows
from pipeline.lib.errorlog import ErrorLog
from pipeline.lib.manifest import Manifest, speaker_index_by_appearance
from pipeline.lib.releases import MELD_CLIP_DIRS as CLIP_DIRS
from pipeline.lib.releases import MELD_CSV_COLUMNS as CSV_COLUMNS
from pipeline.lib.releases import MELD_CSV_FILES as CSV_FILES

LABELS = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
LABEL_COLUMNS = ["Emotion", "Sentiment"]   # optional when the corpus is read to predict on
TIMESTAMP = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})$")


def timestamp_seconds(value: str) -> float:
    """``00:16:16,059`` -> 976.059; raises ValueError on anything else."""
    m = TIMESTAMP.match(value.strip())
    if not m:
        raise ValueError(f"not an hh:mm:ss,mmm timestamp: {value!r}")
    h, mi, s, ms = m.groups()
    return int(h) * 3600 + int(mi) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def load(root: Path, options: PrepareOptions) -> tuple[Manifest, ErrorLog]:
    require_dir(root, "MELD.Raw root")
    log = ErrorLog()
    splits = list(CSV_FILES)
    if not options.labelled:   # predicting: whichever split CSVs are there (at least one)
        splits = [s for s in CSV_FILES if (root / CSV_FILES[s]).is_file()] or splits
    tables = [_read_split(root, split, options, log) for split in splits]
    table = screen_rows(pd.concat(tables, ignore_index=True), LABELS, log, "MELD CSV",
                        labelled=options.labelled)
    table["speaker_idx"] = speaker_index_by_appearance(table)
    return finalize(table, corpus="meld", root=root, labels=LABELS, options=options, log=log,
                    extra_meta={"turn_gaps": log.count("utterance id gap")}), log


def _ids(split: str, fields: dict) -> tuple[str, str, str]:
    """split, dialogue id, utterance id of a CSV record (blank where they are not integers)."""
    try:
        dia, utt = int(fields.get("Dialogue_ID", "")), int(fields.get("Utterance_ID", ""))
    except ValueError:
        return split, "", ""
    return split, f"{split}_dia{dia}", f"{split}_dia{dia}_utt{utt}"


def _read_split(root: Path, split: str, options: PrepareOptions, log: ErrorLog) -> pd.DataFrame:
    path = root / CSV_FILES[split]
    required = CSV_COLUMNS if options.labelled else [c for c in CSV_COLUMNS if c not in LABEL_COLUMNS]
    raw = read_csv_rows(path, options, log, required, f"MELD {split} CSV",
                        row_id=lambda fields: _ids(split, fields))
    rows = []
    for _, r in raw.iterrows():
        _, dialogue_id, utterance_id = _ids(split, r)
        if not utterance_id:
            log.add(split=split, problem="malformed ids", action="row excluded", source=r["_source"],
                    detail=f"Dialogue_ID/Utterance_ID must be integers, got "
                           f"{r['Dialogue_ID']!r}/{r['Utterance_ID']!r} (Sr No. {r['Sr No.']})")
            continue
        try:
            start, end = timestamp_seconds(r["StartTime"]), timestamp_seconds(r["EndTime"])
        except ValueError as exc:
            # The timeline is informational (each clip is a whole file): keep the utterance.
            log.add(split=split, dialogue_id=dialogue_id, utterance_id=utterance_id,
                    problem="malformed timestamp", detail=str(exc), action="kept, start_s/end_s blank",
                    source=r["_source"])
            start = end = float("nan")
        clip = f"{CLIP_DIRS[split]}/{utterance_id.removeprefix(split + '_')}.mp4"
        rows.append({
            "corpus": "meld", "split": split, "dialogue_id": dialogue_id, "utterance_id": utterance_id,
            "source_utt": int(r["Utterance_ID"]), "speaker": r["Speaker"].strip(),
            "text": r["Utterance"].strip(), "label": canonical_label(r.get("Emotion", "")), "start_s": start,
            "end_s": end, "audio_path": clip, "video_path": clip, "_source": r["_source"],
        })
    if not rows:
        return pd.DataFrame(columns=["corpus", "split", "dialogue_id", "utterance_id", "turn", "_source"])
    table = pd.DataFrame(rows)
    table = table.sort_values(["dialogue_id", "source_utt"], kind="stable")
    table["turn"] = table.groupby("dialogue_id").cumcount()
    for dia, ids in table.groupby("dialogue_id")["source_utt"]:
        absent = sorted(set(range(ids.max() + 1)) - set(ids))
        if absent:
            log.add(split=split, dialogue_id=dia, problem="utterance id gap",
                    detail=f"Utterance_ID {', '.join(map(str, absent))} absent from {path.name}",
                    action="turns renumbered contiguously", source=str(path))
    return table.drop(columns="source_utt")
