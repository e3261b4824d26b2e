"""What every corpus adapter shares: options, text-file decoding, media checks, finalization."""
from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from config.paths import file_problem
from config.prepare import PrepareOptions
from config.vocabulary import MEDIA_PREFIX, SOURCE_COLUMN
from pipeline.lib import media
from pipeline.lib.errorlog import ErrorLog, apply_media_policy
from pipeline.lib.manifest import (
    SPLITS,
    VIDEO_SIDES,
    Manifest,
    ManifestError,
    list_problems,
    normalize_columns,
    outside_root,
    renumber_turns,
    sort_dialogues,
    validate,
)

DECODED_WITH_FALLBACK = "line decoded with the fallback encoding"
UNDECODABLE = "undecodable line"
MALFORMED_ROW = "malformed CSV row"


def read_lines(path: Path, options: PrepareOptions, log: ErrorLog) -> list[tuple[int, str | None]]:
    """``(line number, text)`` of every line of a text file, decoded line by line: a UTF-8 BOM is
    stripped (a UTF-16 file, known by its BOM, is decoded whole), CRLF and lone CR end lines like
    LF; ``options.encoding`` first, then ``options.fallback_encoding``
    for a line it cannot decode (logged with file:line and the byte at fault, kept); a line neither
    decodes is logged and given as None. One bad byte never refuses the whole file, and the
    well-encoded lines around it are never re-read in the fallback. A path that is not a regular
    file (a named pipe, a directory) is refused by name, never opened."""
    problem = file_problem(path)
    if problem:
        raise ManifestError(f"{path}: {problem}; expected a text file")
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            raw = raw.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{path}: a UTF-16 file (by its BOM) that does not decode: {exc}") from None
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    lines = re.split(rb"\r\n|\n|\r", raw)
    if lines and lines[-1] == b"":
        lines.pop()                      # the file's final line end
    out: list[tuple[int, str | None]] = []
    for number, line in enumerate(lines, start=1):
        try:
            out.append((number, line.decode(options.encoding)))
            continue
        except UnicodeDecodeError as exc:
            what = (f"byte {line[exc.start:exc.start + 1]!r} at column {exc.start + 1} is not "
                    f"{options.encoding}")
        try:
            out.append((number, line.decode(options.fallback_encoding)))
            log.add(problem=DECODED_WITH_FALLBACK, detail=f"{what}; decoded as {options.fallback_encoding}",
                    action="kept", source=f"{path}:{number}")
        except UnicodeDecodeError:
            out.append((number, None))
            log.add(problem=UNDECODABLE, detail=f"{what}, nor {options.fallback_encoding} "
                    f"(set prepare.fallback_encoding): {line[:120]!r}", action="line skipped",
                    source=f"{path}:{number}")
    return out


def read_csv_rows(path: Path, options: PrepareOptions, log: ErrorLog, required: Sequence[str],
                  what: str, row_id: Callable[[dict], tuple[str, str, str]] | None = None
                  ) -> pd.DataFrame:
    """A CSV as strings (no NaN guessing), one row per record, with its first line number in
    ``_line``. A record with the wrong number of fields is logged (file:line; ``row_id`` gives its
    split, dialogue and utterance ids where it can) and excluded; a missing file or a missing
    required column refuses the corpus."""
    problem = file_problem(path)
    if problem:
        raise ManifestError(f"{path}: {what} {'not found' if problem == 'does not exist' else problem} "
                            "(check prepare.root)")
    lines = [(n, t) for n, t in read_lines(path, options, log) if t is not None]
    reader = csv.reader(io.StringIO("".join(t + "\n" for _, t in lines)))
    header: list[str] | None = None
    records, line_numbers = [], []
    consumed = 0

    def line_at(index: int) -> int:      # physical line number of a line of the joined text
        return lines[min(index, len(lines) - 1)][0] if lines else 0

    while True:
        first = line_at(consumed)
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:         # e.g. a NUL byte: the record is a fault, the file goes on
            consumed = max(reader.line_num, consumed + 1)
            log.add(problem=MALFORMED_ROW, detail=f"unreadable CSV record: {exc}", action="row excluded",
                    source=f"{path}:{first}")
            continue
        last = line_at(reader.line_num - 1)
        consumed = reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue                     # a blank line
        if header is None:
            header = [c.strip() for c in record]
            missing = [c for c in required if c not in header]
            if missing:
                raise ManifestError(f"{path}: missing required column(s) {', '.join(missing)} "
                                    f"(found: {', '.join(header)})")
            continue
        if len(record) != len(header):
            fields = dict(zip(header, record))
            split, dialogue, utterance = row_id(fields) if row_id else ("", "", "")
            log.add(split=split, dialogue_id=dialogue, utterance_id=utterance, problem=MALFORMED_ROW,
                    detail=f"{len(record)} fields, the header has {len(header)}: "
                           f"{','.join(record)[:160]!r}",
                    action="row excluded", source=f"{path}:{first}")
            continue
        if last > first:                 # legal in CSV, but an unclosed quote looks the same
            split, dialogue, utterance = row_id(dict(zip(header, record))) if row_id else ("", "", "")
            log.add(split=split, dialogue_id=dialogue, utterance_id=utterance,
                    problem="CSV record over several lines",
                    detail=f"lines {first}-{last}: a quoted field holds line breaks (an unclosed quote "
                           f"swallows the rows after it): {','.join(record)[:160]!r}",
                    action="kept", source=f"{path}:{first}")
        records.append(record)
        line_numbers.append(first)
    if header is None:
        raise ManifestError(f"{path}: {what} is empty (no header line)")
    table = pd.DataFrame(records, columns=header, dtype=str) if records else \
        pd.DataFrame({c: pd.Series(dtype=str) for c in header})
    table["_line"] = line_numbers
    table["_source"] = [f"{path}:{n}" for n in line_numbers]
    return table


EXCLUDED = "utterance excluded"


def screen_rows(table: pd.DataFrame, labels: Sequence[str], log: ErrorLog, source: str,
                labelled: bool = True) -> pd.DataFrame:
    """Row faults exclude the row, never the corpus: an empty dialogue id, utterance id, speaker
    or label, an unknown split or label, an end before the start, a bad ``video_side``. A dialogue
    in several splits or with a repeated turn number is excluded whole; turn gaps are renumbered.
    Without ``labelled`` (a corpus read to predict on) labels and splits are not checked.
    Each is logged with the row's ``_source`` (``file:line``) where the table has one. Duplicate
    utterance ids stay a whole-corpus refusal (:func:`~pipeline.lib.manifest.validate`): which row
    is meant cannot be told."""
    sources = table["_source"].reset_index(drop=True) if "_source" in table else None
    table = normalize_columns(table)
    known = set(labels)
    label_checks = [
        (table["label"].str.strip() == "", "no label", lambda r: ""),
        (~table["split"].isin(SPLITS), "unknown split",
         lambda r: f"{r['split']!r} (expected one of {', '.join(SPLITS)})"),
        (~table["label"].isin(known) & (table["label"].str.strip() != ""), "unknown label",
         lambda r: f"{r['label']!r} (label set: {', '.join(labels)})"),
    ]
    checks = [
        (table["dialogue_id"].str.strip() == "", "empty dialogue_id",
         lambda r: "utterance without a dialogue"),
        (table["utterance_id"].str.strip() == "", "empty utterance_id", lambda r: ""),
        (table["speaker"].str.strip() == "", "empty speaker", lambda r: ""),
        *(label_checks if labelled else []),
        (table["end_s"] < table["start_s"], "end before start",
         lambda r: f"start_s {r['start_s']}, end_s {r['end_s']}"),
        (~table["video_side"].isin(VIDEO_SIDES), "bad video_side",
         lambda r: f"{r['video_side']!r} (expected left, right or empty)"),
    ]
    bad: dict = {}
    for mask, problem, detail in checks:
        for i in table.index[mask.to_numpy()]:
            bad.setdefault(i, (problem, detail(table.loc[i])))

    def where(i) -> str:
        return sources[i] if sources is not None else source

    def exclude(i, problem: str, detail: str, action: str = EXCLUDED) -> None:
        r = table.loc[i]
        log.add(split=r["split"], dialogue_id=r["dialogue_id"], utterance_id=r["utterance_id"],
                problem=problem, detail=detail, action=action, source=where(i))

    for i, (problem, detail) in bad.items():
        exclude(i, problem, detail)
    thinned = set(table.loc[list(bad), "dialogue_id"])   # their gaps are explained by the log
    table = table.drop(index=list(bad))
    for dia, group in table.groupby("dialogue_id", sort=True):
        splits = sorted(set(group["split"]))
        repeated = sorted(set(group["turn"][group["turn"].duplicated()]))
        several = len(splits) > 1 and labelled
        if several or repeated:
            detail = (f"dialogue {dia!r} is in several splits ({', '.join(splits)})" if several
                      else f"dialogue {dia!r} repeats turn(s) {', '.join(map(str, repeated))}")
            for i in group.index:
                exclude(i, "inconsistent dialogue", detail, "dialogue excluded")
            table = table.drop(index=group.index)
        elif sorted(group["turn"]) != list(range(len(group))) and dia not in thinned:
            missing = sorted(set(range(int(group["turn"].max()) + 1)) - set(group["turn"]))
            log.add(split=splits[0], dialogue_id=dia, problem="turn gap",
                    detail=f"turn(s) {', '.join(map(str, missing))} absent",
                    action="turns renumbered contiguously", source=source)
    return renumber_turns(table) if len(table) else table


def canonical_label(label: str) -> str:
    """One spelling per class whatever its case or surrounding whitespace ('Exc ' is 'exc'):
    what every layout compares and writes."""
    return label.strip().lower()


def canonical_labels(values: pd.Series, declared: Sequence[str] | None = None, key: str = "labels"
                     ) -> tuple[pd.Series, list[str] | None]:
    """``values`` in :func:`canonical_label` form, and the declared label set in the same form
    (None when undeclared); a declared set naming one class twice ('Neu', 'neu') is refused."""
    out = values.fillna("").astype(str).map(canonical_label)
    if declared is None:
        return out, None
    labels = [canonical_label(label) for label in declared]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ManifestError(f"{key}: {twice[0]!r} is declared twice (labels are compared ignoring case and "
                            f"surrounding whitespace)")
    return out, labels


def refuse_duplicate_ids(table: pd.DataFrame, source: str) -> None:
    """Two rows with one utterance id make the corpus ambiguous: refused, naming the lines."""
    dup = table["utterance_id"].duplicated(keep=False) & (table["utterance_id"] != "")
    if dup.any():
        where = "lines" if "_line" in table else "rows"   # _line: from read_csv_rows
        problems = [f"duplicate utterance id {uid!r} at {where} "
                    f"{', '.join(str(v) for v in (g['_line'] if '_line' in g else g.index + 1))}"
                    for uid, g in table[dup].groupby("utterance_id", sort=True)]
        raise ManifestError(list_problems(f"{source}: {len(problems)} problem(s)", problems))


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
            problem = (outside_root_problem(root / rel, root) if not options.allow_outside_root
                       else None)
            # A path outside the root is never probed (nor, its entry blanked, extracted).
            problem = problem or media.probe(root / rel, prefix, decode=required and options.probe_media)
            if problem is None:
                continue
            if required:
                findings.append((i, modality, *problem))
            else:
                table.at[i, column] = ""
    return table, findings


def outside_root_problem(path: Path, root: Path) -> tuple[str, str] | None:
    """``(problem, detail)`` when ``path`` resolves outside the corpus ``root``."""
    if not outside_root(path, root):
        return None
    return (media.OUTSIDE_ROOT, f"{path} resolves to {os.path.realpath(path)}, outside the corpus root "
            f"{os.path.realpath(root)} (set prepare.allow_outside_root: true to allow it)")


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
    validate(table, labels, source=source or f"{corpus} corpus at {root}", labelled=options.labelled)
    meta = {"errors": len(log.rows), "allow_outside_root": options.allow_outside_root,
            **(extra_meta or {})}
    return Manifest(table, corpus, str(root), list(labels), meta, options.labelled)
