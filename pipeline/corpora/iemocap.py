"""IEMOCAP release adapter (``IEMOCAP_full_release/Session{1..5}``).

Reads, per dialogue ``<dialog>`` of ``Session{N}/dialog/``:

- ``EmoEvaluation/<dialog>.txt``: block headers
  ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]`` give span and
  consensus label; labels outside the 6-way set ``neu hap sad ang exc fru`` (``xxx``, ``oth``,
  ``sur``, ``fea``, ``dis``) are excluded, each one logged.
- ``transcriptions/<dialog>.txt``: ``Ses01F_impro01_F000 [006.2901-008.2357]: text``.
- audio: ``Session{N}/sentences/wav/<dialog>/<utterance>.wav``;
  video: ``dialog/avi/DivX/<dialog>.avi`` cut to the utterance span, on the speaker's half of the
  frame (``speaker_side`` param, both actors are side by side).

Every line that names an utterance id either parses or is logged with file:line (malformed
annotation or transcript lines, transcript lines without an annotation); an empty dialogue file is
logged and skipped. Turns are ordered by start time. Speaker = first letter of the utterance id's last part
(``F000`` -> ``F``); ``speaker_idx`` is M=0, F=1 as in the community's feature releases.
Split: ``test_sessions`` (default Session 5) = test; a dialogue-level dev split is carved from the
other sessions, either the ``standard`` 12 dialogues of the published baselines or a seeded
``random`` draw of ``dev_dialogues`` dialogues.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from config.paths import file_problem
from config.prepare import PrepareOptions
from pipeline.corpora.common import canonical_label, finalize, read_lines, require_dir
from pipeline.lib.errorlog import ErrorLog
from pipeline.lib.manifest import Manifest, ManifestError

LABELS = ["hap", "sad", "neu", "ang", "exc", "fru"]  # index order of the community releases
SPEAKER_IDX = {"M": 0, "F": 1}
# Dev dialogues of the standard split used by published baselines (COSMIC / MERBench releases).
STANDARD_DEV = (
    "Ses01M_impro01", "Ses01M_script03_1", "Ses02F_impro02", "Ses02F_impro07",
    "Ses02M_script01_2", "Ses03F_impro01", "Ses03M_impro02", "Ses03M_impro08a",
    "Ses03M_script02_2", "Ses03M_script03_2", "Ses04F_impro07", "Ses04F_script02_1",
)
DEV_METHODS = ("standard", "random")

EVAL_HEADER = re.compile(r"^\[(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\]\t(\S+)\t\s*(\S+)\s*\t\[.*\]\s*$")
UTTERANCE_ID = re.compile(r"\bSes\d+[A-Za-z]*_\w+_[A-Za-z]+\d+\b")
TRANSCRIPT_LINE = re.compile(r"^(\S+) \[(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)\]:\s?(.*)$")
SESSION_DIR = re.compile(r"^Session(\d+)$")


def load(root: Path, options: PrepareOptions, *, dev_split: str = "random", dev_dialogues: int = 12,
         seed: int = 0, test_sessions: Sequence[int] = (5,),
         speaker_side: Mapping[str, str] | None = None) -> tuple[Manifest, ErrorLog]:
    speaker_side = dict(speaker_side or {"F": "left", "M": "right"})
    require_dir(root, "IEMOCAP release root")
    log = ErrorLog()
    sessions = sorted((int(m.group(1)), p) for p in root.iterdir()
                      if p.is_dir() and (m := SESSION_DIR.match(p.name)))
    if not sessions:
        raise ManifestError(f"{root}: no Session<N> directories (expected IEMOCAP_full_release)")
    dialogues = [(number, session, dialog, evaluation) for number, session in sessions
                 for dialog, evaluation in _dialogues(session)]
    splits = _assign_splits({d: n for n, _, d, _ in dialogues}, dev_split, dev_dialogues, seed,
                            test_sessions)
    rows = []
    for _, session, dialog, evaluation in dialogues:
        rows += _read_dialogue(root, session, dialog, splits[dialog], evaluation, options, log,
                               speaker_side)
    extra = {"dev_split": dev_split,
             "dev_dialogues": sorted(d for d, s in splits.items() if s == "dev"),
             "test_sessions": list(test_sessions),
             "excluded_labels": log.count("label outside the 6-way set")}
    table = pd.DataFrame(rows)
    return finalize(table, corpus="iemocap", root=root, labels=LABELS, options=options, log=log,
                    extra_meta=extra), log


def _dialogues(session: Path) -> list[tuple[str, Path]]:
    folder = require_dir(session / "dialog" / "EmoEvaluation", "EmoEvaluation directory")
    return sorted((p.stem, p) for p in folder.glob("*.txt") if not p.name.startswith("."))


def _read_dialogue(root: Path, session: Path, dialog: str, split: str, evaluation: Path,
                   options: PrepareOptions, log: ErrorLog, speaker_side: Mapping[str, str]
                   ) -> list[dict]:
    """The 6-way-labelled utterances of one dialogue. Every utterance id met in its annotation or
    transcript file ends in the manifest or in the log (with file:line)."""
    def fault(problem: str, detail: str, action: str, source: str, uid: str = "") -> None:
        log.add(split=split, dialogue_id=dialog, utterance_id=uid, problem=problem, detail=detail,
                action=action, source=source)

    problem = file_problem(evaluation)
    if problem:      # a named pipe would block the reader: named, never opened
        fault("unreadable annotation file", f"the file {problem}", "dialogue dropped", str(evaluation))
        return []
    evaluated = _parse_evaluation(evaluation, options, fault)
    transcript_path = session / "dialog" / "transcriptions" / f"{dialog}.txt"
    problem = file_problem(transcript_path)
    if problem and problem != "does not exist":
        fault("unreadable transcript", f"the file {problem}", "texts not read", str(transcript_path))
    texts = _parse_transcript(transcript_path, options, fault) if not problem else {}
    video = (session / "dialog" / "avi" / "DivX" / f"{dialog}.avi").relative_to(root)
    rows = []
    for start, end, uid, label, source in evaluated:
        label = canonical_label(label)
        speaker = uid.rsplit("_", 1)[-1][:1]
        if label not in LABELS and options.labelled:   # predicting: kept, its label as given
            fault("label outside the 6-way set", label, "utterance excluded", source, uid)
            continue
        if speaker not in SPEAKER_IDX:
            fault("unreadable speaker", "the last part of the utterance id does not start with M or F",
                  "utterance excluded", source, uid)
            continue
        rows.append({
            "corpus": "iemocap", "split": split, "dialogue_id": dialog, "utterance_id": uid,
            "speaker": speaker, "speaker_idx": SPEAKER_IDX[speaker], "text": texts.get(uid, ("", ""))[0],
            "label": label, "start_s": start, "end_s": end,
            "audio_path": str((session / "sentences" / "wav" / dialog / f"{uid}.wav").relative_to(root)),
            "video_path": str(video), "video_start_s": start, "video_end_s": end,
            "video_side": speaker_side.get(speaker, ""),
        })
    annotated = {uid for _, _, uid, _, _ in evaluated}
    for uid, (_, source) in sorted(texts.items()):
        if uid not in annotated:
            fault("no emotion annotation", f"{uid} is in the transcript only", "not an utterance of the "
                  "manifest", source, uid)
    rows.sort(key=lambda r: (r["start_s"], r["utterance_id"]))
    for turn, row in enumerate(rows):
        row["turn"] = turn
    if not evaluated:
        fault("empty dialogue", "no '[start - end]<TAB>utterance<TAB>label<TAB>[v, a, d]' line",
              "dialogue dropped", str(evaluation))
    elif not rows:
        fault("empty dialogue", "no utterance with a 6-way label", "dialogue dropped", str(evaluation))
    return rows


Fault = Callable[..., None]


def _parse_evaluation(path: Path, options: PrepareOptions, fault: Fault
                      ) -> list[tuple[float, float, str, str, str]]:
    """``(start, end, utterance id, label, file:line)`` of each block header. A line that looks
    like one (starts with ``[``) or names an utterance id but does not parse is a logged fault."""
    out = []
    for number, line in read_lines(path, options, _LineLog(fault)):
        source = f"{path}:{number}"
        if line is None:
            continue
        if m := EVAL_HEADER.match(line):
            start, end = float(m.group(1)), float(m.group(2))
            if end < start:
                fault("end before start", line.strip()[:120], "utterance excluded", source, m.group(3))
                continue
            out.append((start, end, m.group(3), m.group(4), source))
        elif line.startswith("[") or UTTERANCE_ID.search(line):
            uid = UTTERANCE_ID.search(line)
            fault("malformed annotation line", line.strip()[:160], "utterance excluded", source,
                  uid.group(0) if uid else "")
    return out


def _parse_transcript(path: Path, options: PrepareOptions, fault: Fault) -> dict[str, tuple[str, str]]:
    """utterance id -> (text, file:line). A line naming an utterance id that does not parse is a
    logged fault (that utterance's text is then empty, itself logged by the media checks)."""
    texts = {}
    for number, line in read_lines(path, options, _LineLog(fault)):
        source = f"{path}:{number}"
        if line is None or not line.strip():
            continue
        if m := TRANSCRIPT_LINE.match(line.strip()):
            texts[m.group(1)] = (m.group(4).strip(), source)
        elif uid := UTTERANCE_ID.search(line):
            fault("malformed transcript line", line.strip()[:160], "text not read", source, uid.group(0))
    return texts


class _LineLog:
    """Adapts a dialogue's ``fault`` callback to the ``log.add`` that :func:`read_lines` calls."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault

    def add(self, *, problem: str, detail: str, action: str, source: str, **_: str) -> None:
        self.fault(problem, detail, action, source)


def _assign_splits(session_of: Mapping[str, int], method: str, size: int, seed: int,
                   test_sessions: Sequence[int]) -> dict[str, str]:
    """Dialogue -> split: test sessions, then a dialogue-level dev split from the rest."""
    if method not in DEV_METHODS:
        raise ManifestError(f"prepare.iemocap.dev_split: unknown method {method!r} "
                            f"(expected one of {', '.join(DEV_METHODS)})")
    candidates = sorted(d for d, n in session_of.items() if n not in test_sessions)
    if method == "standard":
        absent = [d for d in STANDARD_DEV if d not in candidates]
        if absent:
            raise ManifestError("prepare.iemocap.dev_split=standard: these standard dev dialogues are "
                                f"not in the training sessions under this root: {', '.join(absent)} "
                                "(use dev_split: random for other corpora)")
        dev = set(STANDARD_DEV)
    else:
        if not 0 <= size < len(candidates):
            raise ManifestError(f"prepare.iemocap.dev_dialogues={size}: must be in "
                                f"[0, {len(candidates) - 1}] for {len(candidates)} training dialogues")
        rng = np.random.default_rng(seed)
        dev = set(rng.choice(candidates, size=size, replace=False).tolist()) if size else set()
    return {d: "test" if n in test_sessions else ("dev" if d in dev else "train")
            for d, n in session_of.items()}
