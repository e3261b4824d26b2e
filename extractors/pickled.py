"""Vectors read from a released feature file (``extract.<modality>.name: pickled``), for any
modality: the features the field's papers trained on (:mod:`extractors.feature_pickles`), cached
like computed ones so that train, evaluate, predict's identity checks and the reports work the same.

Params: ``file`` (the .pkl; it may differ from the one ``prepare`` read, e.g. COSMIC's RoBERTa
features beside MMGCN's audio and visual ones), ``entry`` (the file's item: ``videoText``,
``roberta1`` .. ``roberta4``, ``roberta_mean``, ``videoAudio``, ``videoVisual``) and ``layout``
(``auto``). An utterance is found by its dialogue id and its position in the dialogue (the
manifest's ``turn``); a dialogue the file lacks, or whose length differs from the manifest's,
fails its utterances with the reason. The identity records the file's sha256, layout and entry.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from extractors.base import Extractor, ExtractorError, MediaPath, UtteranceFailure
from extractors.feature_pickles import FeatureFileError, read_feature_file

ANY_MODALITY = "any"


class PickledVectors(Extractor):
    name = "pickled"
    modality = ANY_MODALITY           # set per instance: the one family serves every modality
    defaults = {"file": "", "entry": "", "layout": "auto", "batch_size": 256}

    def __init__(self, *, modality: str, **kwargs: Any) -> None:
        self.modality = modality
        super().__init__(**kwargs)
        if not self.params["file"] or not self.params["entry"]:
            raise ExtractorError(f"extract.{modality}.pickled: set file (the .pkl) and entry (which of its "
                                 "items feeds this modality)")
        try:
            self.file = read_feature_file(Path(self.params["file"]), self.params["layout"])
            self.vectors = self.file.entry(self.params["entry"])
        except FeatureFileError as exc:
            raise ExtractorError(f"extract.{modality}.pickled: {exc}") from None
        self._dim = int(next(iter(self.vectors.values())).shape[1])

    @property
    def dim(self) -> int:
        return self._dim

    def identity(self) -> dict:
        return {"extractor": self.name, "file_sha256": self.file.sha256, "layout": self.file.layout,
                "corpus": self.file.corpus, "entry": self.params["entry"]}

    def input_key(self, row: pd.Series, media_path: MediaPath, digest) -> str:
        """The utterance's place in the file (the text is no key: equal sentences have different
        vectors in context)."""
        return hashlib.sha1(json.dumps([self.file.sha256, row["dialogue_id"], int(row["turn"])]).encode()
                            ).hexdigest()[:16]

    def prepare_inputs(self, table: pd.DataFrame, labelled: bool = True) -> None:
        self._lengths = table.groupby("dialogue_id", sort=False).size().to_dict()

    def load(self, row: pd.Series, media_path: MediaPath) -> np.ndarray:
        dialogue, turn = str(row["dialogue_id"]), int(row["turn"])
        matrix = self.vectors.get(dialogue)
        if matrix is None:
            raise UtteranceFailure(f"dialogue {dialogue} is not in {self.params['file']}")
        expected = getattr(self, "_lengths", {}).get(row["dialogue_id"])
        if expected is not None and expected != len(matrix):
            raise UtteranceFailure(f"dialogue {dialogue} has {len(matrix)} utterances in "
                                   f"{self.params['file']}, {expected} in the manifest")
        if not 0 <= turn < len(matrix):
            raise UtteranceFailure(f"turn {turn} is outside dialogue {dialogue}'s {len(matrix)} utterances "
                                   f"in {self.params['file']}")
        return matrix[turn]

    def forward(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs).astype(np.float32) if inputs else np.zeros((0, self.dim), np.float32)
