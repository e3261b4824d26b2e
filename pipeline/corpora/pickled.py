"""A released feature file as a corpus (``prepare.corpus: pickled``, ``prepare.root``: the .pkl):
its dialogues, speakers, labels, sentences and splits become the manifest; its vectors are read by
the ``pickled`` extractor family (:mod:`extractors.pickled`). The layouts:
:mod:`extractors.feature_pickles`.

Splits: the file's train and test lists as given. Dev (``dev_split``):

- ``standard``: COSMIC's ``validIds``; for IEMOCAP files without them the 12 standard dev
  dialogues (:data:`pipeline.corpora.iemocap.STANDARD_DEV`), taken out of train. MELD files of
  the other layouts number their dialogues without saying which were MELD's dev ones, so there
  ``standard`` falls back to ``seeded`` (the manifest's ``dev_split`` says so);
- ``seeded``: ``dev_fraction`` of the train dialogues (at least one), drawn with ``seed`` from
  the sorted ids.

Speakers: IEMOCAP ``M`` = 0, ``F`` = 1 (named ``<dialogue>_M``); MELD the one-hot position ``k``
(named ``<dialogue>_p<k>``). Utterance ids: the file's ``videoIDs`` where it has them, else
``<dialogue>_<position>``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from config.prepare import PrepareOptions
from pipeline.corpora.common import finalize
from pipeline.corpora.iemocap import STANDARD_DEV
from pipeline.lib.errorlog import ErrorLog
from pipeline.lib.manifest import Manifest, ManifestError

DEV_SPLITS = ("standard", "seeded")


def load(path: Path, options: PrepareOptions, *, layout: str = "auto", dev_split: str = "standard",
         dev_fraction: float = 0.1, seed: int = 0) -> tuple[Manifest, ErrorLog]:
    if dev_split not in DEV_SPLITS:
        raise ManifestError(f"prepare.pickled.dev_split={dev_split!r}: use one of {', '.join(DEV_SPLITS)}")
    if not 0 < dev_fraction < 1:
        raise ManifestError(f"prepare.pickled.dev_fraction={dev_fraction}: must be in (0, 1)")
    # Imported here, not with the module: every prepare run imports every adapter (for the params
    # schema), and only this one reads the format (a dependency of the prepare stage in dvc.yaml).
    from extractors.feature_pickles import IEMOCAP_SPEAKERS, LABELS, FeatureFileError, read_feature_file

    try:
        ff = read_feature_file(path, layout)
    except FeatureFileError as exc:
        raise ManifestError(str(exc)) from None
    split_of, how = assign_splits(ff.splits, ff.corpus, dev_split, dev_fraction, seed)
    rows = []
    for dia in ff.dialogues:
        count = len(ff.labels[dia])
        ids = ff.utterance_ids[dia] if ff.utterance_ids else [f"{dia}_{i}" for i in range(count)]
        for turn, (uid, speaker, label, sentence) in enumerate(zip(ids, ff.speakers[dia], ff.labels[dia],
                                                                    ff.sentences[dia])):
            name = IEMOCAP_SPEAKERS[speaker] if ff.corpus == "iemocap" else f"p{speaker}"
            rows.append({"corpus": ff.corpus, "split": split_of[dia], "dialogue_id": dia, "turn": turn,
                         "utterance_id": uid, "speaker": f"{dia}_{name}", "speaker_idx": speaker,
                         "text": sentence, "label": LABELS[ff.corpus][label]})
    table = pd.DataFrame(rows)
    log = ErrorLog()
    meta = {"feature_file": {"path": str(path), "sha256": ff.sha256, "layout": ff.layout,
                             "entries": ff.entries()},
            "dev_split": how, "dev_dialogues": sorted(d for d, s in split_of.items() if s == "dev")}
    return finalize(table, corpus=ff.corpus, root=Path(path).parent, labels=LABELS[ff.corpus],
                    options=options, log=log, extra_meta=meta, source=str(path)), log


def assign_splits(splits: dict[str, list[str]], corpus: str, method: str, fraction: float, seed: int
                  ) -> tuple[dict[str, str], str]:
    """Dialogue -> train/dev/test, and how dev was chosen (recorded in the manifest's meta)."""
    out = {d: "train" for d in splits.get("train", [])} | {d: "test" for d in splits.get("test", [])}
    train = splits.get("train", [])
    if method == "standard" and splits.get("valid"):
        return out | {d: "dev" for d in splits["valid"]}, "standard: the file's validIds"
    if method == "standard" and corpus == "iemocap" and set(STANDARD_DEV) <= set(train):
        return out | {d: "dev" for d in STANDARD_DEV}, "standard: the 12 standard IEMOCAP dev dialogues"
    if len(train) < 2:
        raise ManifestError(f"prepare.pickled: {len(train)} train dialogues: too few to hold out dev ones")
    count = max(1, round(fraction * len(train)))
    chosen = np.random.default_rng(seed).choice(sorted(train), size=count, replace=False)
    fallback = "" if method == "seeded" else " (no standard dev dialogues named in this file)"
    how = f"seeded: {count} of {len(train)} train dialogues (dev_fraction {fraction}, seed {seed}){fallback}"
    return out | {str(d): "dev" for d in chosen}, how
