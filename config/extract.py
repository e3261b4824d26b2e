"""The ``extract.<modality>`` sections: which registered extractor computes a modality's vectors
and what a failed utterance does. Each extractor family's own params sit under its name
(``extract.audio.opensmile``) and are checked against that family's declared params."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExtractSection:
    """One ``extract.<modality>`` section."""

    name: str | None = None           # a registered extractor (required by the stage)
    on_failure: str = "mask"          # mask | drop
    max_failed_fraction: float = 0.1  # stop if more utterances than this fail
    chunk_size: int = 128             # utterances per resumable chunk
