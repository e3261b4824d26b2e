"""Voice-like audio: a harmonic source with a pitch contour, syllable envelope and noise.

Affect -> acoustics (what an openSMILE/prosody extractor can pick up):
pitch level (arousal, valence), pitch slope (valence: rising when pleasant), energy and spectral
brightness (arousal), syllable rate (arousal), jitter (high arousal + negative valence).
"""
from __future__ import annotations

import numpy as np

from pipeline.democorpus.story import AFFECT

SAMPLE_RATE = 16_000


def duration_for(rng: np.random.Generator, text: str, emotion: str) -> float:
    """Speaking time of ``text``: faster when aroused, plus a little random slack."""
    words = max(2, len(text.split()))
    rate = 2.8 + 1.2 * AFFECT[emotion].arousal          # words per second
    return float(np.clip(words / rate + rng.uniform(0.1, 0.4), 0.8, 6.0))


def synthesize(rng: np.random.Generator, emotion: str, base_f0: float, seconds: float) -> np.ndarray:
    """Mono float32 waveform in [-1, 1] at :data:`SAMPLE_RATE` expressing ``emotion``."""
    affect = AFFECT[emotion]
    v, a = affect.valence, affect.arousal
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    # Pitch: level from arousal/valence, linear slope from valence, slow vibrato, random-walk jitter.
    level = base_f0 * 2 ** (0.45 * a + 0.1 * v + rng.normal(0, 0.05))
    slope = 2 ** (0.6 * v * (t / seconds - 0.5))          # pleasant rises, unpleasant falls
    jitter_scale = 0.004 + 0.02 * max(a, 0) * (1 if v < 0 else 0.4)
    jitter = np.cumsum(rng.normal(0, jitter_scale, n)) / np.sqrt(np.arange(1, n + 1))
    f0 = level * slope * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t)) * (1 + jitter)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    tilt = 1.7 - 0.6 * a                                 # brighter voice when aroused
    harmonics = np.arange(1, 11)
    source = (np.sin(np.outer(phase, harmonics)) * harmonics ** -tilt).sum(axis=1)
    # Syllables: raised-sine bursts at an arousal-dependent rate with random loudness and gaps.
    rate = 3.6 + 1.6 * a + rng.normal(0, 0.2)
    syllable = np.floor(t * rate).astype(int)
    loudness = rng.uniform(0.5, 1.0, syllable.max() + 1) * (rng.random(syllable.max() + 1) > 0.12)
    envelope = np.sin(np.pi * (t * rate % 1.0)) ** 0.7 * loudness[syllable]
    fade = np.minimum(1, np.minimum(t, seconds - t) / 0.03)
    gain = 0.05 * 10 ** (0.45 * a)
    breath = np.convolve(rng.normal(0, 1, n), np.ones(8) / 8, mode="same") * 0.08
    wave = gain * envelope * fade * (source / 1.5 + breath) + rng.normal(0, 0.002, n)
    return np.clip(wave, -1, 1).astype(np.float32)
