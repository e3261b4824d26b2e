"""Audio statistics with librosa: MFCC (+ deltas), pitch, energy and spectral shape functionals.

A light alternative to openSMILE. Per frame: ``n_mfcc`` MFCCs and their deltas, YIN pitch (log,
voiced frames), RMS energy, zero-crossing rate, spectral centroid/bandwidth/roll-off/flatness.
Per utterance: mean, std, min, max of each, plus voiced fraction and duration.
dim = 4 * (2 * n_mfcc + 7) + 2.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from extractors.base import Extractor, ExtractorError, MediaPath, media_file, span
from extractors.media_io import SAMPLE_RATE, load_audio

HOP = 160    # 10 ms
FRAME = 400  # 25 ms


class LibrosaAudio(Extractor):
    name = "librosa"
    modality = "audio"
    min_audio_s = 0.1   # a few analysis frames at least, so the statistics are defined
    defaults = {"n_mfcc": 20, "fmin": 60.0, "fmax": 500.0, "batch_size": 16}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)   # CPU library: the device and the precision are not used
        if not 1 <= int(self.params["n_mfcc"]) <= 128:
            raise ExtractorError(f"extract.audio.librosa.n_mfcc={self.params['n_mfcc']}: must be in 1..128")

    @property
    def dim(self) -> int:
        return 4 * (2 * int(self.params["n_mfcc"]) + 7) + 2

    def identity(self) -> dict:
        import librosa

        return {"extractor": self.name, "librosa": librosa.__version__, "sample_rate": SAMPLE_RATE,
                **{k: self.params[k] for k in ("n_mfcc", "fmin", "fmax")}}

    def load(self, row: pd.Series, media_path: MediaPath) -> np.ndarray:
        return load_audio(media_file(row, self.modality, media_path), *span(row, self.modality),
                          min_duration_s=self.min_audio_s)

    def forward(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack([self._one(w) for w in inputs]).astype(np.float32)

    def _one(self, wave: np.ndarray) -> np.ndarray:
        import librosa

        wave = np.pad(wave, (0, max(0, 2 * FRAME - len(wave))))
        sr, n_mfcc = SAMPLE_RATE, int(self.params["n_mfcc"])
        mfcc = librosa.feature.mfcc(y=wave, sr=sr, n_mfcc=n_mfcc, n_fft=512, hop_length=HOP,
                                    win_length=FRAME)
        delta = librosa.feature.delta(mfcc, width=min(9, mfcc.shape[1] - (mfcc.shape[1] + 1) % 2))
        spec = np.abs(librosa.stft(wave, n_fft=512, hop_length=HOP, win_length=FRAME))
        rms = librosa.feature.rms(S=spec, frame_length=512, hop_length=HOP)
        f0 = librosa.yin(wave, fmin=float(self.params["fmin"]), fmax=float(self.params["fmax"]),
                         sr=sr, frame_length=1024, hop_length=HOP)[None, : rms.shape[1]]
        voiced = rms[:, : f0.shape[1]] > 0.25 * rms.max()
        log_f0 = np.log(f0[voiced]) if voiced.any() else np.zeros(1)
        frames = np.vstack([
            mfcc, delta, rms,
            librosa.feature.zero_crossing_rate(wave, frame_length=512, hop_length=HOP)[:, : rms.shape[1]],
            librosa.feature.spectral_centroid(S=spec, sr=sr),
            librosa.feature.spectral_bandwidth(S=spec, sr=sr),
            librosa.feature.spectral_rolloff(S=spec, sr=sr),
            librosa.feature.spectral_flatness(S=spec),
        ])
        stats = [frames.mean(1), frames.std(1), frames.min(1), frames.max(1)]
        pitch = np.array([log_f0.mean(), log_f0.std(), log_f0.min(), log_f0.max()])
        return np.concatenate([*stats, pitch, [voiced.mean(), len(wave) / sr]])
