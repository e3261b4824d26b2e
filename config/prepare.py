"""The corpus-independent ``prepare`` params. Each corpus adapter's own params
(``prepare.<corpus>.<param>``) are its ``load`` function's keyword arguments
(:mod:`pipeline.corpora`), checked by the prepare stage."""
from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass, fields

from config.vocabulary import MEDIA_POLICIES, MODALITIES, check_choice, check_modalities

NOT_PARAMS = ("modalities", "labelled")   # PrepareOptions fields that params.yaml does not set


@dataclass(frozen=True)
class PrepareOptions:
    """Corpus-independent ``prepare`` params (see params.yaml)."""

    modalities: tuple[str, ...] = MODALITIES   # the run's modalities (top-level ``modalities``)
    on_missing_media: str = "keep"             # keep | drop | fail, see config.vocabulary
    probe_media: bool = True                   # decode the first frame of each media file
    encoding: str = "utf-8"                    # tried first on every line of transcripts / CSVs
    fallback_encoding: str = "cp1252"          # for a line `encoding` cannot decode (each logged)
    allow_outside_root: bool = False           # media may resolve outside the corpus root
    # Not a param: False when a corpus is read to predict on (pipeline.predict): labels and splits
    # are then optional, and an utterance with a label outside the set is kept (its label as given).
    labelled: bool = True

    @classmethod
    def from_params(cls, section: dict, modalities: Sequence[str], labelled: bool = True) -> PrepareOptions:
        """The options of a checked ``prepare`` params section, for the run's ``modalities``."""
        return cls(modalities=tuple(modalities), labelled=labelled,
                   **{f.name: section[f.name] for f in fields(cls) if f.name not in NOT_PARAMS})

    def __post_init__(self) -> None:
        check_modalities(self.modalities)
        for key in ("encoding", "fallback_encoding"):
            try:
                codecs.lookup(getattr(self, key))
            except LookupError:
                raise ValueError(f"prepare.{key}: unknown encoding {getattr(self, key)!r}") from None
        check_choice(self.on_missing_media, MEDIA_POLICIES, "prepare.on_missing_media")
