"""One recorded conversation to predict on: media (video and/or audio) + a transcript, one turn per row.

Transcript formats, told apart by the file's suffix:

- ``.csv`` (or ``.tsv``): columns ``speaker``, ``text``, ``start``, ``end`` (or ``start_s``,
  ``end_s``): seconds (``12.5``) or timestamps (``00:00:12,500``); optional ``utterance_id`` and
  ``video_side`` (``left``/``right``: the speaker's half of the frame);
- ``.srt`` (SubRip): numbered cues ``00:00:01,000 --> 00:00:04,000`` whose text starts with the
  speaker: ``Anna: text``, ``[Anna] text`` or ``- Anna: text``;
- ``.vtt`` (WebVTT): cues ``00:01.000 --> 00:04.000`` with a voice span ``<v Anna>text`` or the
  same speaker prefixes; ``NOTE``, ``STYLE`` and ``REGION`` blocks are skipped.

Each media file serves the modality its streams provide: the first file with a video stream is the
video, the first with an audio stream the audio (``--media talk.mp4``, or ``--media talk.avi
--media talk.wav``); every turn cuts its span from them. Turns are ordered by start time.

Nothing is lost silently: a cue without a speaker, a malformed timing line or a CSV row with a bad
time is excluded or kept without media, and logged with ``file:line`` like every corpus fault
(:class:`~pipeline.lib.errorlog.ErrorLog`); media that are missing or unreadable follow
``prepare.on_missing_media`` (:func:`~pipeline.corpora.common.finalize`). Labels and splits do not
exist here: the manifest is unlabelled.
"""
from __future__ import annotations

import dataclasses
import html
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from config.paths import file_problem
from config.prepare import PrepareOptions
from pipeline.corpora.common import (
    finalize,
    read_csv_rows,
    read_lines,
    refuse_duplicate_ids,
    screen_rows,
)
from pipeline.lib import media
from pipeline.lib.errorlog import ErrorLog
from pipeline.lib.manifest import VIDEO_SIDES, Manifest, ManifestError, speaker_index_by_appearance

CORPUS = "conversation"
FORMATS = {".csv": "csv", ".tsv": "csv", ".srt": "srt", ".vtt": "vtt"}
CSV_TIME = {"start_s": ("start", "start_s"), "end_s": ("end", "end_s")}   # accepted column names
TIMESTAMP = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?$")
CUE_TIMING = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)")
VOICE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]+)>")
TAG = re.compile(r"</?[^>]*>")
SPEAKER_PREFIX = re.compile(r"^\s*(?:-\s*)?(?:\[([^\]]{1,60})\]|([^:\[\]]{1,60}?)\s*:)\s*(.*)$")
NO_SPEAKER = "no speaker"
BAD_TIMING = "malformed timing"


def seconds(value: str) -> float:
    """``12.5``, ``00:00:12,500``, ``00:12.500`` or ``1:02:03.4`` -> seconds; ValueError otherwise."""
    value = value.strip()
    try:
        out = float(value)
    except ValueError:
        m = TIMESTAMP.match(value)
        if not m:
            raise ValueError(f"not seconds or a hh:mm:ss,mmm timestamp: {value!r}") from None
        h, mi, s, frac = m.groups()
        out = int(h or 0) * 3600 + int(mi) * 60 + int(s) + int((frac or "0").ljust(3, "0")) / 1000
    if not np.isfinite(out) or out < 0:
        raise ValueError(f"not a time in seconds: {value!r}")
    return out


def load(transcript: Path, media_files: Sequence[Path], options: PrepareOptions, *,
         labels: Sequence[str] = (), speaker_side: Mapping[str, str] | None = None,
         speaker_index: Mapping[str, int] | None = None, dialogue_id: str | None = None
         ) -> tuple[Manifest, ErrorLog]:
    """The unlabelled manifest of one conversation (``labels``: the model's, recorded in the
    manifest; ``speaker_side``: speaker -> ``left``/``right`` half of the video frame;
    ``speaker_index``: speaker -> integer id, where the model's training corpus had a convention
    (IEMOCAP: M=0, F=1); default: order of first appearance)."""
    transcript = Path(transcript)
    kind = FORMATS.get(transcript.suffix.lower())
    if kind is None:
        raise ManifestError(f"{transcript}: unknown transcript format {transcript.suffix!r} "
                            f"(accepted: {', '.join(FORMATS)})")
    problem = file_problem(transcript)
    if problem:
        what = "is not found" if problem == "does not exist" else problem
        raise ManifestError(f"{transcript}: the transcript {what}")
    options = dataclasses.replace(options, labelled=False)
    log = ErrorLog()
    turns = (_read_csv(transcript, options, log) if kind == "csv"
             else _read_cues(transcript, options, log, vtt=kind == "vtt"))
    dialogue = dialogue_id or transcript.stem
    root, sources = _media_sources([Path(p) for p in media_files])
    _refuse_if_empty(turns, transcript, log)
    table = _turn_table(turns, dialogue, sources, speaker_side or {}, log)
    table = screen_rows(table, labels, log, str(transcript), labelled=False)
    _refuse_if_empty(table, transcript, log)
    table["speaker_idx"] = _speaker_ids(table, speaker_index)
    manifest = finalize(table, corpus=CORPUS, root=root, labels=labels, options=options, log=log,
                        extra_meta={"transcript": str(transcript),
                                    "media": {k: str(root / v) for k, v in sources.items()}},
                        source=str(transcript))
    return manifest, _named(log, dialogue)


def _speaker_ids(table: pd.DataFrame, speaker_index: Mapping[str, int] | None) -> pd.Series:
    if not speaker_index:
        return speaker_index_by_appearance(table)
    unknown = sorted(set(table["speaker"]) - set(speaker_index))
    if unknown:
        raise ManifestError(f"speaker index: no id for speaker(s) {', '.join(map(repr, unknown))} "
                            f"(given for {', '.join(map(repr, speaker_index))})")
    bad = [f"{k}={v!r}" for k, v in speaker_index.items() if not (isinstance(v, int) and v >= 0)]
    if bad:
        raise ManifestError(f"speaker index {bad[0]}: ids are whole numbers >= 0")
    return table["speaker"].map(dict(speaker_index)).astype(int)


def _refuse_if_empty(table: pd.DataFrame, transcript: Path, log: ErrorLog) -> None:
    if table.empty:
        faults = "; ".join(f"{r['source']}: {r['problem']}" for r in log.rows[:5])
        raise ManifestError(f"{transcript}: no usable turn" + (f" ({faults})" if faults else ""))


def _named(log: ErrorLog, dialogue: str) -> ErrorLog:
    for row in log.rows:           # faults found before the turns had ids still name the dialogue
        row["dialogue_id"] = row["dialogue_id"] or dialogue
    return log


def _media_sources(files: list[Path]) -> tuple[Path, dict[str, str]]:
    """The folder the media share and, per stream kind (``audio``, ``video``), the file (relative
    to it) that provides it: the first listed with such a stream."""
    problems = [f"{p} {file_problem(p)}" for p in files if file_problem(p)]
    if problems:
        raise ManifestError(f"media: {'; '.join(problems)}")
    if not files:
        return Path.cwd(), {}
    root = Path(os.path.commonpath([p.resolve().parent for p in files]))
    sources: dict[str, str] = {}
    for path in files:
        kinds = media.stream_kinds(path)
        if not kinds:
            raise ManifestError(f"{path}: no audio or video stream could be read")
        for kind in kinds:
            sources.setdefault(kind, path.resolve().relative_to(root).as_posix())
    return root, sources


def _turn_table(turns: pd.DataFrame, dialogue: str, sources: dict[str, str],
                speaker_side: Mapping[str, str], log: ErrorLog) -> pd.DataFrame:
    """Manifest rows: turns by start time where every turn has one (else in file order), ids, and
    per media the turn's span; a turn without a span keeps no media (logged)."""
    if turns["start_s"].notna().all():
        turns = turns.sort_values("start_s", kind="stable")
    turns = turns.reset_index(drop=True)
    table = turns.assign(corpus=CORPUS, split="", dialogue_id=dialogue, turn=np.arange(len(turns)),
                         label=turns.get("label", pd.Series("", index=turns.index)).fillna(""))
    given = table.get("utterance_id", pd.Series("", index=table.index)).fillna("")
    table["utterance_id"] = [uid or f"{dialogue}_{i:03d}" for i, uid in enumerate(given)]
    unspanned = table["start_s"].isna() | table["end_s"].isna()
    for column, kind in (("audio", "audio"), ("video", "video")):
        table[f"{column}_path"] = np.where(unspanned, "", sources.get(kind, ""))
        table[f"{column}_start_s"], table[f"{column}_end_s"] = table["start_s"], table["end_s"]
    if sources:
        for i in np.flatnonzero(unspanned.to_numpy()):
            log.add(dialogue_id=dialogue, utterance_id=table.at[i, "utterance_id"], problem="no time span",
                    detail="the turn has no start or end time, so no media can be cut for it",
                    action="kept, text only", source=table.at[i, "_source"])
    side = table.get("video_side", pd.Series("", index=table.index)).fillna("")
    table["video_side"] = [s or speaker_side.get(speaker, "") for s, speaker in zip(side, table["speaker"])]
    bad = sorted(set(speaker_side.values()) - set(VIDEO_SIDES))
    if bad:
        raise ManifestError(f"speaker side {bad[0]!r}: use left or right")
    return table


def _read_csv(path: Path, options: PrepareOptions, log: ErrorLog) -> pd.DataFrame:
    raw = read_csv_rows(path, options, log, ["speaker", "text"], "transcript CSV")
    if "utterance_id" in raw:
        refuse_duplicate_ids(raw.assign(utterance_id=raw["utterance_id"].str.strip()), str(path))
    rows = pd.DataFrame({"speaker": raw["speaker"].str.strip(), "text": raw["text"].str.strip(),
                         "_source": raw["_source"]})
    for column in ("utterance_id", "video_side", "label"):   # label: a gold label, shown beside
        if column in raw:
            rows[column] = raw[column].str.strip()
    for key, names in CSV_TIME.items():
        found = next((n for n in names if n in raw), None)
        rows[key] = np.nan
        for i, value in (raw[found].items() if found else ()):
            if not value.strip():
                continue
            try:
                rows.at[i, key] = seconds(value)
            except ValueError as exc:
                log.add(utterance_id=rows.at[i, "utterance_id"] if "utterance_id" in rows else "",
                        problem=BAD_TIMING, detail=f"{found}: {exc}", action=f"kept, {key} blank",
                        source=raw.at[i, "_source"])
    return rows


def _read_cues(path: Path, options: PrepareOptions, log: ErrorLog, vtt: bool) -> pd.DataFrame:
    """The cues of a SubRip or WebVTT file: timing line, then text lines up to a blank line."""
    lines = read_lines(path, options, log)
    if vtt and not (lines and (lines[0][1] or "").startswith("WEBVTT")):
        raise ManifestError(f"{path}: not a WebVTT file (the first line must be WEBVTT)")
    blocks: list[list[tuple[int, str]]] = [[]]
    for number, text in lines:
        if text is None or text.strip():
            blocks[-1].append((number, text or ""))
        elif blocks[-1]:
            blocks.append([])
    rows = []
    for block in blocks[1 if vtt else 0:]:
        if not block or block[0][1].split(" ")[0] in ("NOTE", "STYLE", "REGION"):
            continue
        timing = next((k for k, (_, t) in enumerate(block) if "-->" in t), None)
        source = f"{path}:{block[0][0]}"
        if timing is None or timing > 1:
            log.add(problem=BAD_TIMING, detail=f"no 'start --> end' line in the cue: {block[0][1][:80]!r}",
                    action="cue skipped", source=source)
            continue
        number, line = block[timing]
        source = f"{path}:{number}"
        try:
            m = CUE_TIMING.match(line)
            if not m:
                raise ValueError(f"not 'start --> end': {line.strip()!r}")
            start, end = seconds(m.group(1)), seconds(m.group(2))
        except ValueError as exc:
            log.add(problem=BAD_TIMING, detail=str(exc), action="cue skipped", source=source)
            continue
        speaker, text = _speaker_and_text(" ".join(t.strip() for _, t in block[timing + 1:]))
        if not speaker:
            log.add(problem=NO_SPEAKER, detail=f"no 'Name: text' or <v Name> in {text[:80]!r}",
                    action="cue skipped", source=source)
            continue
        rows.append({"speaker": speaker, "text": text, "start_s": start, "end_s": end, "_source": source})
    return pd.DataFrame(rows, columns=["speaker", "text", "start_s", "end_s", "_source"])


def _speaker_and_text(cue: str) -> tuple[str, str]:
    """``("Anna", "text")`` from ``<v Anna>text</v>``, ``Anna: text``, ``[Anna] text``; ``("", text)``
    when the cue names nobody."""
    voice = VOICE.search(cue)
    if voice:
        return voice.group(1).strip(), html.unescape(TAG.sub("", cue)).strip()
    cue = html.unescape(TAG.sub("", cue)).strip()
    m = SPEAKER_PREFIX.match(cue)
    if m and (m.group(1) or m.group(2)).strip():
        return (m.group(1) or m.group(2)).strip(), m.group(3).strip()
    return "", cue
