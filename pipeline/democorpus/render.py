"""Turning a simulated turn into text, audio and frames (shared by both layouts)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.democorpus import face, text, voice
from pipeline.democorpus.story import Turn


@dataclass
class Speaker:
    name: str
    base_f0: float
    look: face.Look


@dataclass
class RenderedTurn:
    turn: Turn
    speaker: Speaker
    text: str
    wave: np.ndarray
    start: float = 0.0

    @property
    def duration(self) -> float:
        return len(self.wave) / voice.SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.start + self.duration


def new_speaker(rng: np.random.Generator, name: str, female: bool) -> Speaker:
    f0 = rng.uniform(185, 235) if female else rng.uniform(100, 135)
    return Speaker(name, float(f0), face.random_look(rng))


def render_turn(rng: np.random.Generator, turn: Turn, speaker: Speaker) -> RenderedTurn:
    words = text.sentence(rng, turn.shown["text"])
    seconds = voice.duration_for(rng, words, turn.shown["audio"])
    wave = voice.synthesize(rng, turn.shown["audio"], speaker.base_f0, seconds)
    return RenderedTurn(turn, speaker, words, wave)


def place_on_timeline(rng: np.random.Generator, turns: list[RenderedTurn], t0: float) -> float:
    """Set start times with natural gaps; return the end of the last turn."""
    t = t0
    for r in turns:
        r.start = round(t, 4)
        t = r.end + rng.uniform(0.15, 0.9)
    return turns[-1].end if turns else t0


def speaking_phase(r: RenderedTurn, t: float) -> float:
    """Mouth animation phase at time ``t`` of turn ``r`` (about 4 syllables per second)."""
    return ((t - r.start) * 4.0) % 1.0


def frame_times(start: float, end: float, fps: int) -> np.ndarray:
    return np.arange(start, end, 1.0 / fps)
