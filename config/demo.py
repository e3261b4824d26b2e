"""The ``demo`` params: the generated demo corpus's layout, seed, sizes and generative story
(:mod:`pipeline.democorpus`; the story's steps are documented in :mod:`pipeline.democorpus.story`)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StoryParams:
    alternate: float = 0.8
    carry: float = 0.55
    contagion: float = 0.3
    mood_weight: float = 0.5
    reliability: dict = field(default_factory=lambda: {"text": 0.65, "audio": 0.6, "visual": 0.55})


@dataclass(frozen=True)
class IemocapDemo:
    """``demo.iemocap``: size of the IEMOCAP-layout demo."""

    sessions: int = 5
    dialogues_per_session: int = 6
    turns: list[int] = field(default_factory=lambda: [12, 24])   # min, max turns per dialogue
    unlabelled: float = 0.06          # fraction annotated outside the 6-way set


@dataclass(frozen=True)
class MeldDemo:
    """``demo.meld``: size of the MELD-layout demo."""

    dialogues: dict = field(default_factory=lambda: {"train": 40, "dev": 6, "test": 10})
    turns: list[int] = field(default_factory=lambda: [3, 14])


@dataclass(frozen=True)
class DemoParams:
    """The ``demo`` section (the nested sections: :class:`StoryParams`, :class:`IemocapDemo`,
    :class:`MeldDemo`)."""

    layout: str = "iemocap"           # iemocap | meld
    seed: int = 0
    story: dict = field(default_factory=dict)
    iemocap: dict = field(default_factory=dict)
    meld: dict = field(default_factory=dict)
