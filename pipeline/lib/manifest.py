"""The normalized manifest: one row per utterance, read by every later stage.

Schema (column -> meaning); paths are relative to the corpus root recorded in the
sidecar ``manifest.meta.json`` (there relative to the manifest's folder, or absolute; absolute
media paths stay absolute), an empty path means
"no media for this modality" (see ``errors.csv`` for why):

========================  ==============================================================
corpus                    adapter name (``iemocap``, ``meld``, ``csv``)
split                     ``train`` / ``dev`` / ``test`` (an unlabelled manifest: any, or empty)
dialogue_id               unique over the whole manifest (MELD: ``train_dia0``)
turn                      0-based position of the utterance in its dialogue
utterance_id              unique over the whole manifest
speaker                   speaker name as in the corpus (``F``, ``M``, ``Chandler``)
speaker_idx               integer speaker id within the dialogue (see adapters)
text                      transcript
label                     emotion label, one of the manifest's label set (an unlabelled
                          manifest, read for prediction: the corpus' own label if any, or empty)
start_s, end_s            time span in the corpus timeline (dialogue or episode); NaN if unknown
audio_path                audio source of the utterance
audio_start_s/end_s       span to cut from ``audio_path``; NaN = the whole file
video_path                video source of the utterance
video_start_s/end_s       span to cut from ``video_path``; NaN = the whole file
video_side                ``left`` / ``right``: half of the frame showing the speaker; empty = full frame
========================  ==============================================================
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.lib.spreadsheet import write_csv

SPLITS = ("train", "dev", "test")
VIDEO_SIDES = ("", "left", "right")

COLUMNS = [
    "corpus", "split", "dialogue_id", "turn", "utterance_id", "speaker", "speaker_idx",
    "text", "label", "start_s", "end_s",
    "audio_path", "audio_start_s", "audio_end_s",
    "video_path", "video_start_s", "video_end_s", "video_side",
]
STRING_COLUMNS = ["corpus", "split", "dialogue_id", "utterance_id", "speaker", "text", "label",
                  "audio_path", "video_path", "video_side"]
FLOAT_COLUMNS = ["start_s", "end_s", "audio_start_s", "audio_end_s", "video_start_s", "video_end_s"]
INT_COLUMNS = ["turn", "speaker_idx"]

MANIFEST_FILE = "manifest.csv"
META_FILE = "manifest.meta.json"
ERRORS_FILE = "errors.csv"
SUMMARY_FILE = "summary.json"

# How many offending rows an error message lists before "... and N more".
MAX_LISTED = 10


def outside_root(path: Path | str, root: Path | str) -> bool:
    """Whether ``path`` resolves (``..`` and symlinks followed; nothing opened) outside ``root``."""
    return not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


class ManifestError(ValueError):
    """Invalid corpus or manifest; the message names the file/row/utterance at fault."""


def list_problems(header: str, items: Sequence[str]) -> str:
    shown = "\n  ".join(items[:MAX_LISTED])
    more = f"\n  ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return f"{header}:\n  {shown}{more}"


@dataclass
class Manifest:
    """A validated manifest plus what later stages need to interpret it."""

    table: pd.DataFrame
    corpus: str
    root: str
    labels: list[str]
    extra_meta: dict = field(default_factory=dict)
    # False: read for prediction; labels and splits are optional (kept as the corpus has them)
    labelled: bool = True

    def media_path(self, relative: str) -> Path | None:
        """Absolute path of a manifest media entry; None when the entry is empty, or when it
        resolves outside the corpus root and the manifest was not prepared with
        ``prepare.allow_outside_root`` (a second guard: ``prepare`` refuses such paths already)."""
        if not relative:
            return None
        path = Path(self.root) / relative
        if not self.extra_meta.get("allow_outside_root", False) and outside_root(path, self.root):
            return None
        return path

    def meta(self) -> dict:
        return {"corpus": self.corpus, "root": self.root, "labels": self.labels,
                "columns": COLUMNS, "labelled": self.labelled, **self.extra_meta}


def empty_table() -> pd.DataFrame:
    return normalize_columns(pd.DataFrame({c: [] for c in COLUMNS}))


def normalize_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Fill absent optional columns and coerce dtypes to the schema; keeps column order."""
    table = table.copy()
    for col in COLUMNS:
        if col not in table:
            table[col] = np.nan if col in FLOAT_COLUMNS else ("" if col in STRING_COLUMNS else -1)
    for col in STRING_COLUMNS:
        table[col] = table[col].fillna("").astype(str)
    for col in FLOAT_COLUMNS:
        table[col] = pd.to_numeric(table[col], errors="raise").astype(float)
    for col in INT_COLUMNS:
        table[col] = table[col].astype(int)
    return table[COLUMNS].reset_index(drop=True)


def validate(table: pd.DataFrame, labels: Sequence[str], source: str = "manifest",
             first_row: int = 1, row_word: str = "row", labelled: bool = True) -> None:
    """Raise ManifestError naming every offending row of ``source``.

    Rows are numbered from ``first_row`` (2 with ``row_word="line"`` gives CSV line numbers).

    Checks: required ids present, unique utterance ids, known splits and labels, each dialogue
    in one split, turns 0..n-1 without gaps or repeats, non-empty speakers, sane spans. Without
    ``labelled`` (a manifest to predict on) labels and splits are not checked.
    """
    problems: list[str] = []

    def rows(mask: pd.Series) -> list[int]:
        return [int(i) for i in np.flatnonzero(mask.to_numpy())]

    def at(i: int) -> str:
        uid = table["utterance_id"].iat[i]
        return f"{row_word} {i + first_row}" + (f" (utterance {uid})" if uid else "")

    def where(index: pd.Index) -> str:
        return f"{row_word}s " + _short([table.index.get_loc(i) + first_row for i in index])

    for col in ["dialogue_id", "utterance_id", "speaker"] + (["label"] if labelled else []):
        for r in rows(table[col].str.strip() == ""):
            problems.append(f"{at(r)}: empty {col}"
                            + (" (utterance without a dialogue)" if col == "dialogue_id" else ""))
    dup = table["utterance_id"].duplicated(keep=False) & (table["utterance_id"] != "")
    for uid, group in table[dup].groupby("utterance_id", sort=True):
        problems.append(f"duplicate utterance id {uid!r} at {where(group.index)}")
    if labelled:
        for r in rows(~table["split"].isin(SPLITS)):
            problems.append(f"{at(r)}: unknown split {table['split'].iat[r]!r} "
                            f"(expected one of {', '.join(SPLITS)})")
        for r in rows(~table["label"].isin(set(labels)) & (table["label"] != "")):
            problems.append(f"{at(r)}: unknown label {table['label'].iat[r]!r} "
                            f"(label set: {', '.join(labels)})")
    bad_span = (table["end_s"] < table["start_s"])
    for r in rows(bad_span):
        problems.append(f"{at(r)}: end_s < start_s")
    for r in rows(~table["video_side"].isin(VIDEO_SIDES)):
        problems.append(f"{at(r)}: video_side must be left, right or empty")

    for dia, group in table[table["dialogue_id"] != ""].groupby("dialogue_id", sort=True):
        splits = sorted(set(group["split"]))
        if len(splits) > 1 and labelled:
            problems.append(f"dialogue {dia!r} spans several splits ({', '.join(splits)}) "
                            f"at {where(group.index)}")
        turns = sorted(group["turn"].tolist())
        if turns != list(range(len(group))):
            problems.append(f"dialogue {dia!r}: turns must be 0..{len(group) - 1} without gaps or "
                            f"repeats, found {_short(turns)} at {where(group.index)}")
    if problems:
        raise ManifestError(list_problems(f"{source}: {len(problems)} problem(s)", problems))


def _short(values: list) -> str:
    return ", ".join(map(str, values[:12])) + (", ..." if len(values) > 12 else "")


def sort_dialogues(table: pd.DataFrame) -> pd.DataFrame:
    """Canonical row order: split (train, dev, test), dialogue id, turn."""
    order = {s: i for i, s in enumerate(SPLITS)}
    return (table.assign(_s=table["split"].map(order))
            .sort_values(["_s", "dialogue_id", "turn"], kind="stable")
            .drop(columns="_s").reset_index(drop=True))


def renumber_turns(table: pd.DataFrame) -> pd.DataFrame:
    """Make turns 0..n-1 per dialogue, keeping their order (after rows were dropped)."""
    table = table.sort_values(["dialogue_id", "turn"], kind="stable").copy()
    table["turn"] = table.groupby("dialogue_id").cumcount()
    return table


def speaker_index_by_appearance(table: pd.DataFrame) -> pd.Series:
    """Speaker id per dialogue in order of first appearance (0 = first to speak)."""
    def index_group(speakers: pd.Series) -> pd.Series:
        seen: dict[str, int] = {}
        return speakers.map(lambda s: seen.setdefault(s, len(seen)))
    ordered = table.sort_values(["dialogue_id", "turn"], kind="stable")
    return ordered.groupby("dialogue_id", sort=False)["speaker"].transform(index_group).reindex(table.index)


def refuse_crowded_dialogues(table: pd.DataFrame, max_speakers: int) -> None:
    """A dialogue with more speakers than the model has speaker rows for (``model.max_speakers``)
    is refused, naming each such dialogue, its split and its count (prepare checks it before any
    extraction; train checks again for a library caller)."""
    counts = table.groupby("dialogue_id")["speaker_idx"].max() + 1
    crowded = counts[counts > max_speakers].sort_values(ascending=False)
    if len(crowded):
        split = table.drop_duplicates("dialogue_id").set_index("dialogue_id")["split"]
        listed = [f"{dia} ({split[dia]}, {n} speakers)" for dia, n in crowded.items()]
        raise ManifestError(list_problems(
            f"{len(crowded)} dialogue(s) have more speakers than model.max_speakers={max_speakers} "
            "(raise it, or leave those dialogues out)", listed))


def summarize(table: pd.DataFrame, errors: pd.DataFrame, labels: Sequence[str]) -> dict:
    """Per-split counts: dialogues, utterances, label counts, speakers, media coverage, errors."""
    out: dict = {}
    for split in SPLITS:
        part = table[table["split"] == split]
        err = errors[errors["split"] == split] if len(errors) else errors
        out[split] = {
            "dialogues": int(part["dialogue_id"].nunique()),
            "utterances": int(len(part)),
            "labels": {lab: int((part["label"] == lab).sum()) for lab in labels},
            "speakers": int(part[["dialogue_id", "speaker"]].drop_duplicates().shape[0]),
            "distinct_speaker_names": int(part["speaker"].nunique()),
            "with_text": int((part["text"].str.strip() != "").sum()),
            "with_audio": int((part["audio_path"] != "").sum()),
            "with_video": int((part["video_path"] != "").sum()),
            "errors": int(len(err)),
        }
    return out


SUMMARY_KEY = {"text": "with_text", "audio": "with_audio", "visual": "with_video"}


def coverage_warnings(summary: dict, modalities: Sequence[str], threshold: float = 0.5) -> list[str]:
    """One warning per modality of the run that more than ``threshold`` of the corpus lacks, with
    the ``modalities`` setting that leaves them out."""
    total = sum(s["utterances"] for s in summary.values())
    lacking = {}
    for modality in modalities:
        have = sum(s[SUMMARY_KEY[modality]] for s in summary.values())
        if total and (total - have) / total > threshold:
            lacking[modality] = total - have
    keep = [m for m in modalities if m not in lacking]
    hint = (f"for a run without it: dvc exp run -S 'modalities=[{', '.join(keep)}]'" if keep
            else "no modality of the run is present for most of the corpus: check prepare.root")
    return [f"warning: modalities lists {modality}, but {n} of {total} utterances "
            f"({100 * n / total:.0f}%) have no {modality}; {hint}" for modality, n in lacking.items()]


def format_summary(summary: dict) -> str:
    lines = []
    for split, s in summary.items():
        labels = " ".join(f"{k}={v}" for k, v in s["labels"].items())
        lines.append(f"{split:>5}: {s['dialogues']} dialogues, {s['utterances']} utterances, "
                     f"{s['speakers']} speakers, {s['errors']} errors | text {s['with_text']} "
                     f"audio {s['with_audio']} video {s['with_video']} | {labels}")
    return "\n".join(lines)


def relative_root(root: str | Path, out_dir: Path) -> str:
    """``root`` as :func:`read` finds it again from ``out_dir``: relative, computed on the paths as
    written.

    Symlinks on the way (a ``../shared`` linked to wherever the data lie) stay in the path, so the
    string depends only on where the corpus sits beside the repository, not on the link's target:
    clones in different places write the same bytes. :func:`read` joins it to ``out_dir`` lexically;
    where that would miss (``root`` holds a ``..`` after a symlink), the resolved absolute path.
    """
    lexical = os.path.abspath(root)
    if os.path.realpath(lexical) != os.path.realpath(root):
        return os.path.realpath(root)
    return os.path.relpath(lexical, os.path.abspath(out_dir))


def write(manifest: Manifest, errors: pd.DataFrame, out_dir: Path) -> dict:
    """Write manifest.csv, manifest.meta.json, errors.csv and summary.json; return the summary.

    A relative corpus root is stored relative to ``out_dir``, so the manifest resolves its media
    from any working directory and moves with the repository; an absolute root stays absolute.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest.table.to_csv(out_dir / MANIFEST_FILE, index=False, encoding="utf-8")
    write_csv(out_dir / ERRORS_FILE, errors)      # opened in spreadsheets: user text neutralised
    summary = summarize(manifest.table, errors, manifest.labels)
    meta = manifest.meta()
    if not Path(manifest.root).is_absolute():
        meta["root"] = relative_root(manifest.root, out_dir)
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def read(out_dir: Path | str) -> Manifest:
    """Load and re-validate a manifest written by :func:`write`."""
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST_FILE
    if not path.exists():
        raise ManifestError(f"{path}: no manifest here; run `dvc repro prepare` first")
    meta = json.loads((out_dir / META_FILE).read_text())
    table = pd.read_csv(path, dtype={c: str for c in STRING_COLUMNS}, keep_default_na=False,
                        na_values={c: [""] for c in FLOAT_COLUMNS}, encoding="utf-8")
    table = normalize_columns(table)
    labelled = bool(meta.get("labelled", True))
    # context_labels: classes kept in their dialogues as unlabelled context, never scored (cross-corpus)
    validate(table, meta["labels"] + meta.get("context_labels", []), source=str(path), labelled=labelled)
    extra = {k: v for k, v in meta.items() if k not in {"corpus", "root", "labels", "columns", "labelled"}}
    root = Path(meta["root"])
    root = root if root.is_absolute() else Path(os.path.normpath(out_dir / root))
    return Manifest(table, meta["corpus"], str(root), list(meta["labels"]), extra, labelled)
