"""What the train, evaluate and baseline stages read: the manifest, the checked feature caches of
the run's modalities, and the dialogues of each split.

Every feature cache is checked against ``extract.<modality>`` and the installed extractor's code
(:func:`extractors.cache.read_features`): a stale, failed, unused or other-code cache is refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from config.schema import checked
from extractors import extractor_code_digest, section_params
from extractors.cache import read_features
from model.data import Dialogue, dialogues
from pipeline.lib import manifest


class Inputs(NamedTuple):
    manifest: manifest.Manifest
    matrices: dict[str, np.ndarray]   # modality -> (N, d) features, manifest order
    present: dict[str, np.ndarray]    # modality -> (N,) bool: the utterance has that feature
    metas: dict[str, dict]            # modality -> the cache's meta.json


def load_inputs(params: dict, manifest_dir: Path, features_dir: Path) -> Inputs:
    """The manifest and the checked caches of ``params["modalities"]`` (all by default)."""
    m = manifest.read(manifest_dir)
    ids = m.table["utterance_id"].tolist()
    matrices, present, metas = {}, {}, {}
    params = checked(params, ("extract",))
    chosen = params["modalities"]
    for modality in chosen:
        section = params.get("extract", {}).get(modality) or {}
        name = section.get("name")
        code = extractor_code_digest(name) if name else None
        cache = read_features(features_dir / modality, ids, name, section_params(section), code)
        matrices[modality], present[modality], metas[modality] = cache.matrix, cache.present, cache.meta
    return Inputs(m, matrices, present, metas)


def feature_provenance(metas: dict[str, dict]) -> dict[str, dict]:
    """Per modality: the extractor, its params, its identity and the feature dim (what a model or a
    metrics file records about the features it was trained / scored on)."""
    return {k: {"extractor": v["extractor"], "params": v["params"], "identity": v["identity"],
                "dim": v["dim"]} for k, v in metas.items()}


def failure_reasons(metas: dict[str, dict]) -> dict[str, dict[str, str]]:
    """Per modality, utterance id -> why its cache has no vector for it (the extractor's reason)."""
    return {k: {f["utterance_id"]: f["reason"] for f in v.get("failures", [])} for k, v in metas.items()}


def split_dialogues(m: manifest.Manifest) -> dict[str, list[Dialogue]]:
    """Dialogues per split; refuses an empty split and a dialogue in two splits."""
    splits = {s: dialogues(m.table, m.labels, s) for s in manifest.SPLITS}
    empty = [s for s, d in splits.items() if not d]
    if empty:
        raise ValueError(f"the manifest has no {empty[0]} dialogues")
    check_disjoint(splits)
    return splits


def check_disjoint(splits: dict[str, list[Dialogue]]) -> None:
    """No dialogue may sit in two splits (dev/test material must never reach training)."""
    seen: dict[str, str] = {}
    for split, items in splits.items():
        for d in items:
            if d.dialogue_id in seen:
                raise ValueError(f"dialogue {d.dialogue_id} is in both {seen[d.dialogue_id]} and {split}")
            seen[d.dialogue_id] = split


def trainable_rows(inputs: Inputs) -> np.ndarray | None:
    """Utterances the training loss may see, or None for all: under ``on_failure: drop`` an
    utterance without features of that modality leaves the loss (evaluation still scores it)."""
    trainable = np.ones(len(inputs.manifest.table), bool)
    for modality, meta in inputs.metas.items():
        if meta.get("on_failure") == "drop":
            trainable &= inputs.present[modality]
    return None if trainable.all() else trainable


def split_counts(m: manifest.Manifest) -> dict[str, int]:
    """Utterances per split."""
    return {s: int((m.table["split"] == s).sum()) for s in manifest.SPLITS}
