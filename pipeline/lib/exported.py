"""Our manifest and feature caches as a released feature file (the ``export`` stage's library).

Which of our modalities fills which item of a layout (:data:`ITEMS`): the text features fill every
text item (``videoText`` and ``roberta2..4`` of the AMB-DSGDN layout, ``roberta1..4`` of COSMIC's:
a reader that averages the four layers gets our vectors), audio ``videoAudio``, visual
``videoVisual``. Dev dialogues go to ``validIds`` where the layout has them (COSMIC); the others
have no place for them and fold them into ``trainVid``, as their users do (and then hold out a
share of train themselves). Utterances without a label of the set are left out of their
dialogues (the layouts label every utterance); an utterance whose extraction failed gets a zero
vector. Both are counted and listed in the sidecar JSON, never dropped silently.
"""
from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np

from extractors.feature_pickles import LABELS, FeatureFile, FeatureFileError, write_feature_file
from pipeline.lib.inputs import Inputs, feature_provenance

ITEMS = {  # layout -> our modality -> the items it fills
    "amb_dsgdn": {"text": ("videoText", "roberta2", "roberta3", "roberta4"), "audio": ("videoAudio",),
                  "visual": ("videoVisual",)},
    "mmgcn": {"text": ("videoText",), "audio": ("videoAudio",), "visual": ("videoVisual",)},
    "cosmic": {"text": ("roberta1", "roberta2", "roberta3", "roberta4")},
}
SIDECAR_SUFFIX = ".json"


def to_feature_file(inputs: Inputs, layout: str) -> tuple[FeatureFile, dict]:
    """The run's manifest and caches as ``layout`` wants them, and what the sidecar records of the
    conversion (left-out utterances, zero vectors)."""
    if layout not in ITEMS:
        raise FeatureFileError(f"export.format={layout!r}: use one of {', '.join(ITEMS)}")
    m = inputs.manifest
    corpus = m.corpus if m.corpus in LABELS else None
    if corpus is None or list(m.labels) != list(LABELS[corpus]):
        raise FeatureFileError(f"export: the {layout} layout holds IEMOCAP or MELD labels in the community "
                               f"order ({'; '.join(', '.join(v) for v in LABELS.values())}); this manifest's "
                               f"corpus {m.corpus!r} has {', '.join(m.labels)}")
    needed = [mod for mod in ITEMS[layout] if mod not in inputs.matrices]
    if needed:
        raise FeatureFileError(f"export: the {layout} layout holds {', '.join(ITEMS[layout])} features; this "
                               f"run has no {', '.join(needed)} (add it to `modalities`)")
    table = m.table.reset_index(drop=True)
    labelled = table["label"].isin(m.labels)
    left_out = table.loc[~labelled, "utterance_id"].tolist()
    zeroed = {mod: table.loc[labelled & ~inputs.present[mod], "utterance_id"].tolist()
              for mod in ITEMS[layout]}
    int_ids = corpus == "meld" and table["dialogue_id"].str.fullmatch(r"\d+").all()
    splits = {"train": [], "test": [], "valid": []}
    where = {"train": "train", "test": "test", "dev": "valid" if layout == "cosmic" else "train"}
    ff = FeatureFile(layout, corpus, splits, {}, {}, {}, {}, {mod: {} for mod in ITEMS[layout]},
                     int_ids=bool(int_ids))
    for dia, rows in table[labelled].groupby("dialogue_id", sort=False):
        index = rows.index.to_numpy()
        splits[where[rows["split"].iat[0]]].append(str(dia))
        ff.speakers[dia] = rows["speaker_idx"].astype(int).tolist()
        ff.labels[dia] = [m.labels.index(x) for x in rows["label"]]
        ff.sentences[dia] = rows["text"].tolist()
        ff.utterance_ids[dia] = rows["utterance_id"].tolist()
        for mod in ITEMS[layout]:
            ff.vectors[mod][dia] = np.where(inputs.present[mod][index, None], inputs.matrices[mod][index], 0.0
                                            ).astype(np.float32)
    if layout != "cosmic":
        del splits["valid"]
    ff.vectors = {item: ff.vectors[mod] for mod, items in ITEMS[layout].items() for item in items}
    return ff, {"left_out_unlabelled": left_out, "zero_vectors": {k: v for k, v in zeroed.items() if v}}


def export(inputs: Inputs, layout: str, out: Path) -> dict:
    """Write ``out`` (the pickle) and ``out`` + ``.json`` (its sidecar); returns the sidecar."""
    ff, conversion = to_feature_file(inputs, layout)
    sha256 = write_feature_file(ff, out, layout)
    m = inputs.manifest
    sidecar = {
        "format": layout, "file": out.name, "sha256": sha256, "corpus": ff.corpus,
        "label_map": {label: i for i, label in enumerate(LABELS[ff.corpus])},
        "speakers": "M = speaker_idx 0, F = 1" if ff.corpus == "iemocap" else "one-hot of speaker_idx",
        "splits": ff.splits,
        "dev": ("validIds" if layout == "cosmic" else "folded into trainVid (the layout has no dev list)"),
        "dev_dialogues": sorted(m.table.loc[m.table["split"] == "dev", "dialogue_id"].unique().tolist()),
        "items": {mod: list(items) for mod, items in ITEMS[layout].items()},
        "features": feature_provenance({mod: inputs.metas[mod] for mod in ITEMS[layout]}),
        "manifest": {key: m.extra_meta[key] for key in ("feature_file", "dev_split") if key in m.extra_meta},
        **conversion,
        "project": {"name": "ambdsgdn-erc", "version": _version()},
    }
    sidecar_path = out.with_name(out.name + SIDECAR_SUFFIX)
    sidecar_path.write_text(json.dumps(sidecar, indent=2, default=str) + "\n")
    return sidecar


def _version() -> str:
    try:
        return metadata.version("ambdsgdn-erc")
    except metadata.PackageNotFoundError:
        return "unknown"
