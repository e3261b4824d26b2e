"""The protocols of :mod:`pipeline.lib.experiments` beside the manifest's own split:

- leave-one-session-out (``loso``): IEMOCAP's five folds, one per session (read from the dialogue
  ids, ``Ses01...``): that session's dialogues the test split, a fixed 10 % of the other dialogues
  (seeded shuffle) dev, the rest train; a point's score is the mean ± sample std over folds of each
  fold's mean over seeds (:func:`over_folds`);
- cross-corpus (``cross``): trained on one corpus, tested on another's test split, both relabelled
  to the classes they share (:data:`SHARED_CLASSES`); an utterance of any other class stays in its
  dialogue as context (``context_labels``: never trained on, never scored); the features must come
  from one extractor (:func:`same_features`).
"""
from __future__ import annotations

import re

import numpy as np

from pipeline.lib import manifest as manifests
from pipeline.lib.inputs import Inputs
from pipeline.lib.metrics import seed_stat

LOSO_DEV_FRACTION = 0.1    # of the training sessions' dialogues, for epoch selection
SESSION = re.compile(r"^Ses0*(\d+)")
# Cross-corpus classes and the corpus labels each gathers (IEMOCAP's and MELD's spellings). IEMOCAP's
# excited and frustrated, MELD's surprise, fear and disgust have no counterpart: left unlabelled.
SHARED_CLASSES = {"neutral": ("neu", "neutral"), "joy": ("hap", "happy", "joy", "happiness"),
                  "sadness": ("sad", "sadness"), "anger": ("ang", "angry", "anger")}


def session_folds(m: manifests.Manifest) -> list[tuple[str, manifests.Manifest]]:
    """IEMOCAP leave-one-session-out: per session, the manifest re-split (test = the session, dev =
    :data:`LOSO_DEV_FRACTION` of the other dialogues by a seeded shuffle, train = the rest)."""
    ids = list(dict.fromkeys(m.table["dialogue_id"]))
    session = {}
    for dialogue in ids:
        found = SESSION.match(dialogue)
        if not found:
            raise ValueError(f"protocol loso: dialogue {dialogue!r} names no IEMOCAP session (Ses01...): "
                             "leave-one-session-out needs IEMOCAP's dialogue ids")
        session[dialogue] = int(found.group(1))
    if len(set(session.values())) < 2:
        raise ValueError("protocol loso: the manifest has one session only")
    folds = []
    for held_out in sorted(set(session.values())):
        rest = sorted(d for d in ids if session[d] != held_out)
        count = max(1, round(LOSO_DEV_FRACTION * len(rest)))
        dev = {rest[i] for i in np.random.default_rng(0).permutation(len(rest))[:count]}
        split = ["test" if session[d] == held_out else "dev" if d in dev else "train"
                 for d in m.table["dialogue_id"]]
        table = m.table.assign(split=split)
        extra = {**m.extra_meta, "protocol": f"loso: session {held_out} held out"}
        folds.append((f"session_{held_out}", manifests.Manifest(table, m.corpus, m.root, m.labels, extra)))
    return folds


def shared_classes(train: manifests.Manifest, test: manifests.Manifest) -> list[str]:
    """The :data:`SHARED_CLASSES` both corpora have (in that order); refuses fewer than two."""
    def has(m: manifests.Manifest, spellings: tuple[str, ...]) -> bool:
        return any(label in spellings for label in m.labels)
    shared = [c for c, spellings in SHARED_CLASSES.items()
              if has(train, spellings) and has(test, spellings)]
    if len(shared) < 2:
        raise ValueError(f"protocol cross: {train.corpus} ({', '.join(train.labels)}) and {test.corpus} "
                         f"({', '.join(test.labels)}) share fewer than two classes of "
                         f"{', '.join(SHARED_CLASSES)}")
    return shared


def relabelled(m: manifests.Manifest, shared: list[str]) -> manifests.Manifest:
    """``m`` with its labels renamed to the shared classes; every other class becomes a context
    label (``context_labels``: its utterances stay in their dialogues, unlabelled)."""
    rename = {spelling: c for c in shared for spelling in SHARED_CLASSES[c]}
    table = m.table.assign(label=[rename.get(label, label) for label in m.table["label"]])
    context = [label for label in m.labels if label not in rename]
    return manifests.Manifest(table, m.corpus, m.root, list(shared),
                              {**m.extra_meta, "relabelled_from": m.labels, "context_labels": context})


def same_features(train: Inputs, test: Inputs) -> None:
    """Cross-corpus scoring needs one feature space: the same extractor, params and width per modality."""
    for modality, meta in train.metas.items():
        other = test.metas[modality]
        for key in ("extractor", "params", "dim"):
            if meta.get(key) != other.get(key):
                raise ValueError(f"protocol cross: the {modality} features differ in {key} "
                                 f"({meta.get(key)!r} for training, {other.get(key)!r} for testing): "
                                 "extract both corpora with the same extractor")


def over_folds(per_fold: dict[str, dict]) -> dict:
    """One point over the folds: each fold's mean over seeds, then mean ± sample std over folds."""
    scored = {f: r for f, r in per_fold.items() if r.get("test_wa_f1")}
    row = {"test_dialogues": sum(r["test_dialogues"] for r in per_fold.values()),
           "test_utterances": sum(r["test_utterances"] for r in per_fold.values()),
           "folds": per_fold}
    if not scored:
        return {**row, "note": "no fold has a test dialogue of this point"}
    first = next(iter(scored.values()))
    return {**row, **{key: seed_stat([r[key]["mean"] for r in scored.values()])
                      for key in ("test_wa_f1", "test_wa_acc", "test_macro_f1", "dev_wa_f1")},
            "selected_epochs": [e for r in scored.values() for e in r["selected_epochs"]],
            "parameters": first["parameters"],
            "confusion": np.sum([r["confusion"] for r in scored.values()], axis=0).tolist()}
