"""Audio functionals from openSMILE (default IS10 paralinguistics, 1582-d, the paper's feature).

Configs ship inside the ``opensmile`` wheel: ``feature_set`` = IS09, IS10, IS11, IS12, IS13,
eGeMAPSv02 (88), ComParE_2016 (6373), emobase (988), ... Audio is decoded in-process (wav via
soundfile, mp4/avi via PyAV), down-mixed, resampled to 16 kHz and cut to the utterance span.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from extractors.base import Extractor, ExtractorError, MediaPath, media_file, span
from extractors.media_io import SAMPLE_RATE, load_audio


class OpenSmileAudio(Extractor):
    name = "opensmile"
    modality = "audio"
    # openSMILE's IS09-IS13 pitch windows are 60 ms: shorter input gives non-finite functionals
    min_audio_s = 0.1
    defaults = {"feature_set": "IS10", "batch_size": 16}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)   # CPU library: the device and the precision are not used
        import opensmile

        names = list(opensmile.FeatureSet.__members__)
        if self.params["feature_set"] not in names:
            raise ExtractorError(f"extract.audio.opensmile.feature_set={self.params['feature_set']!r}: "
                                 f"unknown (available: {', '.join(names)})")
        self.smile = opensmile.Smile(feature_set=opensmile.FeatureSet[self.params["feature_set"]],
                                     feature_level=opensmile.FeatureLevel.Functionals)
        self._dim = len(self.smile.feature_names)

    @property
    def dim(self) -> int:
        return self._dim

    def identity(self) -> dict:
        import opensmile

        config = Path(self.smile.config_path)
        return {"extractor": self.name, "feature_set": self.params["feature_set"],
                "config": config.name,
                "config_sha256": hashlib.sha256(config.read_bytes()).hexdigest()[:16],
                "opensmile": opensmile.__version__, "sample_rate": SAMPLE_RATE}

    def load(self, row: pd.Series, media_path: MediaPath) -> np.ndarray:
        return load_audio(media_file(row, self.modality, media_path), *span(row, self.modality),
                          min_duration_s=self.min_audio_s)

    def forward(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack([self.smile.process_signal(w, SAMPLE_RATE).to_numpy()[0] for w in inputs]
                        ).astype(np.float32)
