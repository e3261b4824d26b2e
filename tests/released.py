"""Small released feature files built here in each layout's exact structure (a tuple of dicts keyed
by dialogue id holding per-utterance lists, and split lists), independently of the project's
writer: what the public dataloaders unpack."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from pipeline.corpora.iemocap import STANDARD_DEV

DIMS = {"text": 16, "audio": 12, "visual": 8}


def dialogues(corpus: str, rng: np.random.Generator) -> tuple[list, list, list]:
    """(train ids, test ids, valid ids): IEMOCAP names (the 12 standard dev dialogues among the
    train ones), MELD integers."""
    if corpus == "iemocap":
        train = [*STANDARD_DEV, *(f"Ses0{1 + i % 4}F_impro1{i}" for i in range(10))]
        test = [f"Ses05{'FM'[i % 2]}_script0{i}_1" for i in range(5)]
        return train, test, [f"Ses04M_script0{i}_2" for i in range(3)]
    return list(range(0, 20)), list(range(20, 26)), list(range(26, 29))


def build(corpus: str, seed: int = 0) -> dict:
    """Named per-dialogue items for ``corpus``: what every layout is assembled from."""
    rng = np.random.default_rng(seed)
    train, test, valid = dialogues(corpus, rng)
    classes = 6 if corpus == "iemocap" else 7
    items = {k: {} for k in ("ids", "speakers", "labels", "sentences", "sentiment", "text", "r2", "r3", "r4",
                             "audio", "visual")}
    for dia in [*train, *test, *valid]:
        n = int(rng.integers(3, 9))
        labels = rng.integers(0, classes, n)
        items["ids"][dia] = [f"{dia}_u{i:03d}" for i in range(n)]
        if corpus == "iemocap":
            items["speakers"][dia] = [str(rng.choice(["M", "F"])) for _ in range(n)]
        else:
            items["speakers"][dia] = [list(np.eye(9, dtype=int)[rng.integers(0, 3)]) for _ in range(n)]
        items["labels"][dia] = [int(x) for x in labels]
        items["sentences"][dia] = [f"utterance {i} of {dia}" for i in range(n)]
        items["sentiment"][dia] = [int(x) for x in rng.integers(0, 3, n)]
        for name, dim in (("text", DIMS["text"]), ("r2", DIMS["text"]), ("r3", DIMS["text"]), ("r4", DIMS["text"]),
                          ("audio", DIMS["audio"]), ("visual", DIMS["visual"])):
            signal = np.eye(classes, dim)[labels] * 2.0          # learnable: the label shows
            items[name][dia] = [v.astype(np.float32) for v in signal + rng.normal(size=(n, dim))]
    return {"items": items, "train": train, "test": test, "valid": valid}


def as_tuple(built: dict, layout: str, corpus: str) -> tuple:
    """The tuple a layout's dataloader unpacks (module docstring of extractors.feature_pickles)."""
    it, train, test = built["items"], built["train"], built["test"]
    if layout == "amb_dsgdn":
        out = (it["ids"], it["speakers"], it["labels"], it["text"], it["r2"], it["r3"], it["r4"], it["audio"],
               it["visual"], it["sentences"], train + built["valid"], test)
        return out + (None,) if corpus == "meld" else out
    if layout == "mmgcn":
        out = (it["ids"], it["speakers"], it["labels"], it["text"], it["audio"], it["visual"], it["sentences"],
               train + built["valid"], test)
        return out + ([],) if corpus == "meld" else out
    if layout == "dialoguegcn":    # MELD: no visual, sentiment last
        return (it["ids"], it["speakers"], it["labels"], it["text"], it["audio"], it["sentences"],
                train + built["valid"], test, it["sentiment"])
    if layout == "cosmic":
        head = (it["speakers"], it["labels"]) + ((it["sentiment"],) if corpus == "meld" else ())
        return head + (it["text"], it["r2"], it["r3"], it["r4"], it["sentences"], train, test, built["valid"])
    raise ValueError(layout)


def write(path: Path, layout: str, corpus: str, seed: int = 0, protocol: int = 2) -> Path:
    """A released file at ``path`` (protocol 2, as Python 2 wrote them)."""
    path.write_bytes(pickle.dumps(as_tuple(build(corpus, seed), layout, corpus), protocol=protocol))
    return path
