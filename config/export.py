"""The ``export`` params: our manifest and features written in a released feature file's layout
(:mod:`pipeline.lib.exported`), off by default."""
from __future__ import annotations

from dataclasses import dataclass

from config.vocabulary import FEATURE_FILE_FORMATS, check_choice


@dataclass(frozen=True)
class ExportConfig:
    """The ``export`` section."""

    enabled: bool = False
    format: str = "amb_dsgdn"     # amb_dsgdn | mmgcn | cosmic

    def __post_init__(self) -> None:
        check_choice(self.format, FEATURE_FILE_FORMATS, "export.format")
