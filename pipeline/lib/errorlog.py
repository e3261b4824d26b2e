"""Per-utterance problems found while reading a corpus, and the policy applied to them.

Nothing is dropped silently: every excluded utterance, missing or unreadable media file,
renumbered turn gap or empty dialogue becomes one row of ``errors.csv`` saying what was
found (``problem``, ``detail``) and what was done about it (``action``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from config.vocabulary import MEDIA_POLICIES, SOURCE_COLUMN
from pipeline.lib.manifest import ManifestError, list_problems

# source: the file and line the problem was found at (``path:line``), where it comes from one line
ERROR_COLUMNS = ["split", "dialogue_id", "utterance_id", "modality", "problem", "detail", "action",
                 "source"]


@dataclass
class ErrorLog:
    rows: list[dict] = field(default_factory=list)

    def add(self, *, split: str = "", dialogue_id: str = "", utterance_id: str = "",
            modality: str = "", problem: str, detail: str = "", action: str, source: str = "") -> None:
        self.rows.append({"split": split, "dialogue_id": dialogue_id, "utterance_id": utterance_id,
                          "modality": modality, "problem": problem, "detail": detail,
                          "action": action, "source": source})

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=ERROR_COLUMNS)

    def count(self, problem: str) -> int:
        return sum(r["problem"] == problem for r in self.rows)


def apply_media_policy(table: pd.DataFrame, media_problems: list[tuple[int, str, str, str]],
                       policy: str, log: ErrorLog) -> pd.DataFrame:
    """Apply ``policy`` to (row index, modality, problem, detail) findings; log each one.

    Returns the table with paths blanked (keep) or rows removed (drop).
    """
    if policy not in MEDIA_POLICIES:
        raise ManifestError(f"prepare.on_missing_media: unknown policy {policy!r} "
                            f"(expected one of {', '.join(MEDIA_POLICIES)})")
    if not media_problems:
        return table
    if policy == "fail":
        raise ManifestError(list_problems(
            f"{len(media_problems)} utterance(s) lack media for a required modality "
            "(set prepare.on_missing_media to keep or drop to continue)",
            [f"{table.at[i, 'utterance_id']} ({table.at[i, 'split']}): {mod}: {problem}: {detail}"
             for i, mod, problem, detail in media_problems]))
    table = table.copy()
    for i, modality, problem, detail in media_problems:
        action = "kept, zero features + mask" if policy == "keep" else "utterance dropped"
        log.add(split=table.at[i, "split"], dialogue_id=table.at[i, "dialogue_id"],
                utterance_id=table.at[i, "utterance_id"], modality=modality, problem=problem,
                detail=detail, action=action)
        if policy == "keep":
            table.at[i, SOURCE_COLUMN[modality]] = ""
    if policy == "drop":
        table = table.drop(index=sorted({i for i, *_ in media_problems}))
    return table
