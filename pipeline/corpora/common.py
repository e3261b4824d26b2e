"""What every corpus adapter shares: options, text-file decoding, media checks, finalization."""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.lib import media
from pipeline.lib.errorlog import MEDIA_POLICIES, ErrorLog, apply_media_policy
from pipeline.lib.manifest import (
    MEDIA_PREFIX,
    MODALITIES,
    SOURCE_COLUMN,
    Manifest,
    ManifestError,
    normalize_columns,
    renumber_turns,
    sort_dialogues,
    validate,
)


@dataclass(frozen=True)
class PrepareOptions:
    """Corpus-independent ``prepare`` params (see params.yaml)."""

    modalities: tuple[str, ...] = MODALITIES   # the run's modalities (top-level ``modalities``)
    on_missing_media: str = "keep"             # keep | drop | fail, see pipeline.lib.errorlog
    probe_media: bool = True                   # decode the first frame of each media file
    encoding: str = "utf-8"                    # of transcripts / CSVs

    def __post_init__(self) -> None:
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown:
            raise ManifestError(f"modalities: unknown modality {unknown[0]!r} "
                                f"(expected some of {', '.join(MODALITIES)})")
        if self.on_missing_media not in MEDIA_POLICIES:
            raise ManifestError(f"prepare.on_missing_media: unknown policy "
                                f"{self.on_missing_media!r} (expected one of "
                                f"{', '.join(MEDIA_POLICIES)})")


def read_text_file(path: Path, encoding: str) -> str:
    """Decode a whole text file, naming file, line and byte on failure."""
    raw = path.read_bytes()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ManifestError(
            f"{path}: line {line}: cannot decode byte {raw[exc.start:exc.start + 1]!r} at offset "
            f"{exc.start} as {encoding} (set prepare.encoding, e.g. latin-1 or cp1252)") from None
    except LookupError:
        raise ManifestError(f"prepare.encoding: unknown encoding {encoding!r}") from None


def read_csv_strings(path: Path, encoding: str, required: Sequence[str], what: str) -> pd.DataFrame:
    """A CSV as strings (no NaN guessing), with decoding/parsing/column errors naming the file."""
    if not path.is_file():
        raise ManifestError(f"{path}: {what} not found (check prepare.root)")
    text = read_text_file(path, encoding)
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise ManifestError(f"{path}: not a readable CSV: {exc}") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ManifestError(f"{path}: missing required column(s) {', '.join(missing)} "
                            f"(found: {', '.join(table.columns)})")
    return table


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise ManifestError(f"{path}: {what} not found (check prepare.root)")
    return path


def check_media(table: pd.DataFrame, root: Path, options: PrepareOptions
                ) -> tuple[pd.DataFrame, list[tuple[int, str, str, str]]]:
    """Find unusable media/text for required modalities; blank absent optional media.

    Returns the table (optional media that does not exist blanked, which the summary's coverage
    counts show) and the findings ``(row index, modality, problem, detail)`` for the policy.
    """
    table = table.copy()
    findings: list[tuple[int, str, str, str]] = []
    if "text" in options.modalities:
        for i in table.index[table["text"].str.strip() == ""]:
            findings.append((i, "text", "empty transcript", ""))
    for modality, prefix in MEDIA_PREFIX.items():
        column = SOURCE_COLUMN[modality]
        required = modality in options.modalities
        for i, rel in table[column].items():
            if not rel:
                if required:
                    findings.append((i, modality, media.MISSING, "no path given"))
                continue
            problem = media.probe(root / rel, prefix, decode=required and options.probe_media)
            if problem is None:
                continue
            if required:
                findings.append((i, modality, *problem))
            else:
                table.at[i, column] = ""
    return table, findings


def finalize(table: pd.DataFrame, *, corpus: str, root: Path, labels: Sequence[str],
             options: PrepareOptions, log: ErrorLog, extra_meta: dict | None = None,
             source: str | None = None) -> Manifest:
    """Media checks + policy, empty-dialogue accounting, turn renumbering, validation."""
    table = normalize_columns(table)
    table, findings = check_media(table, root, options)
    dialogues_before = set(table["dialogue_id"])
    split_of = dict(zip(table["dialogue_id"], table["split"]))
    table = apply_media_policy(table, findings, options.on_missing_media, log)
    for dia in sorted(dialogues_before - set(table["dialogue_id"])):
        log.add(split=split_of[dia], dialogue_id=dia, problem="empty dialogue",
                detail="every utterance was dropped", action="dialogue dropped")
    if options.on_missing_media == "drop" and findings:
        table = renumber_turns(table)
    table = sort_dialogues(table)
    validate(table, labels, source=source or f"{corpus} corpus at {root}")
    meta = {"errors": len(log.rows), **(extra_meta or {})}
    return Manifest(table, corpus, str(root), list(labels), meta)
