"""The demo corpus's generative story: who speaks, what they feel, what each modality shows.

1. A dialogue has speakers (IEMOCAP layout: one ``F``, one ``M`` actor; MELD layout: two to four
   characters from a small cast) and a *mood*: one emotion drawn from the corpus prior.
2. Turn-taking: the other speaker (or, with several, a random other one) takes the next turn with
   probability ``alternate``; otherwise the same speaker goes on.
3. The emotion of turn t of speaker s:
   - *carry-over*: with probability ``carry`` s keeps the emotion of their own previous turn;
   - else *contagion*: with probability ``contagion`` s takes the emotion of turn t-1 (another
     speaker's);
   - else a fresh draw from ``mood_weight``·onehot(mood) + (1 - ``mood_weight``)·prior.
   So the label of a turn depends on the speaker's own past (intra-speaker edges) and on the
   other speakers (inter-speaker edges): dialogue modelling helps.
4. Every modality independently *shows* the true emotion with its ``reliability`` and otherwise a
   uniformly drawn one. Each modality alone is therefore above chance, independent errors make
   fusion better than any single modality, and neighbours' evidence lets context fix errors.
5. Rendering (see ``text``, ``voice``, ``face``): wording with emotion cue phrases between neutral
   fillers; a voice whose pitch, pitch slope, energy, brightness and speaking rate follow the shown
   emotion's valence/arousal; a drawn face whose mouth curve, mouth opening, brows, eyes and skin
   tint follow it. Continuous noise (jitter, pixel noise, background noise) is added everywhere.
6. IEMOCAP layout only: a fraction ``unlabelled`` of turns get an annotation outside the 6-way set
   (``xxx``, ``oth``, ``sur``, ``fea``) exactly as in the real release, so exclusion is exercised.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from config.demo import StoryParams
from config.vocabulary import MODALITIES


@dataclass(frozen=True)
class Affect:
    """Continuous description of an emotion used by every renderer."""

    valence: float   # -1 (unpleasant) .. 1 (pleasant)
    arousal: float   # -1 (calm) .. 1 (excited)
    tint: tuple[int, int, int]  # BGR skin tint of the drawn face


AFFECT = {
    "neu": Affect(0.0, -0.1, (150, 150, 150)),
    "hap": Affect(0.8, 0.3, (90, 200, 240)),
    "sad": Affect(-0.7, -0.7, (200, 120, 80)),
    "ang": Affect(-0.8, 0.8, (60, 60, 230)),
    "exc": Affect(0.7, 0.9, (60, 230, 160)),
    "fru": Affect(-0.5, 0.3, (60, 140, 200)),
    "surprise": Affect(0.2, 0.9, (230, 200, 80)),
    "fear": Affect(-0.6, 0.6, (200, 80, 200)),
    "disgust": Affect(-0.7, 0.1, (60, 180, 110)),
}
# MELD names for emotions that share an affect with an IEMOCAP label.
AFFECT.update(neutral=AFFECT["neu"], joy=AFFECT["hap"], sadness=AFFECT["sad"], anger=AFFECT["ang"])

IEMOCAP_PRIOR = {"neu": 0.24, "hap": 0.09, "sad": 0.15, "ang": 0.15, "exc": 0.14, "fru": 0.23}
MELD_PRIOR = {"neutral": 0.42, "surprise": 0.12, "fear": 0.05, "sadness": 0.08, "joy": 0.17,
              "disgust": 0.05, "anger": 0.11}


@dataclass
class Turn:
    speaker: str
    emotion: str
    shown: dict[str, str]   # modality -> emotion that modality expresses


def simulate_dialogue(rng: np.random.Generator, speakers: list[str], n_turns: int,
                      prior: dict[str, float], params: StoryParams) -> list[Turn]:
    """Draw one dialogue's speakers, emotions and per-modality shown emotions (steps 1-4)."""
    labels = list(prior)
    p = np.array([prior[k] for k in labels])
    p = p / p.sum()
    mood = rng.choice(len(labels), p=p)
    fresh = params.mood_weight * np.eye(len(labels))[mood] + (1 - params.mood_weight) * p
    last_of: dict[str, str] = {}
    turns: list[Turn] = []
    speaker = speakers[rng.integers(len(speakers))]
    for t in range(n_turns):
        if t and rng.random() < params.alternate:
            speaker = rng.choice([s for s in speakers if s != speaker])
        if speaker in last_of and rng.random() < params.carry:
            emotion = last_of[speaker]
        elif turns and turns[-1].speaker != speaker and rng.random() < params.contagion:
            emotion = turns[-1].emotion
        else:
            emotion = labels[rng.choice(len(labels), p=fresh)]
        shown = {m: emotion if rng.random() < params.reliability[m] else labels[rng.integers(len(labels))]
                 for m in MODALITIES}
        turns.append(Turn(str(speaker), emotion, shown))
        last_of[speaker] = emotion
    return turns
