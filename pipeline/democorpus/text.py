"""Wording of the demo utterances: an emotion cue phrase with neutral opener and follow-up."""
from __future__ import annotations

import numpy as np

OPENERS = ["", "", "", "Well,", "So,", "Look,", "Okay,", "Hey,", "You know,", "I mean,"]
# Neutral follow-up sentences: context words shared by every emotion (noise for the text modality).
FOLLOW_UPS = ["It's about the car.", "It's about the apartment.", "This is about the job.",
              "We talked about dinner yesterday.", "The letter came this morning.",
              "Your brother called again.", "The trip is next week.", "It's the money thing.",
              "The wedding is in June.", "The flight leaves at six.", "The kids are asleep.",
              "Everyone is coming to the party."]

CUES = {
    "neu": ["I was thinking.", "Let me check the schedule.",
            "We can talk later.", "It is on Tuesday,.",
            "I just wanted to ask.", "Sure, I read the note."],
    "hap": ["I'm so happy!", "That is wonderful news.",
            "I love it, thank you.", "This makes me really glad.",
            "What a lovely surprise.", "I feel great."],
    "sad": ["I miss him so much.", "I feel so lonely.",
            "It breaks my heart.", "I'm sorry, I can't stop crying.",
            "Everything feels hopeless.", "I lost everything."],
    "ang": ["I am furious!", "How dare you lie to me!",
            "This is completely unacceptable!", "I hate this, get out!",
            "Don't you dare yell at me!", "You ruined everything!"],
    "exc": ["Oh my god, this is amazing!", "I can't wait, it's incredible!",
            "Wow, we actually did it!", "Yes! This is the best day ever!",
            "That's fantastic, let's go right now!", "I'm so thrilled!"],
    "fru": ["Nothing ever works.", "I've told you a hundred times.",
            "Why is this so complicated?", "I'm sick of waiting.",
            "This is so annoying.", "I keep trying and it's pointless."],
    "surprise": ["Wait, what? Really?", "No way, seriously?",
                 "I did not expect that!", "Are you kidding me?",
                 "You're joking, right?", "Whoa, since when?"],
    "fear": ["I'm scared.", "Something terrible is going to happen.",
             "Please don't leave me alone.", "I'm really afraid.",
             "What if they find out?", "I'm terrified."],
    "disgust": ["Ew, that's disgusting.", "That is so gross.",
                "Yuck, I feel sick.", "That's revolting.",
                "Ugh, how could anyone do that?", "It's nasty."],
}
CUES.update(neutral=CUES["neu"], joy=CUES["hap"], sadness=CUES["sad"], anger=CUES["ang"])


def sentence(rng: np.random.Generator, emotion: str) -> str:
    """One utterance expressing ``emotion`` through its cue phrase."""
    cue = CUES[emotion][rng.integers(len(CUES[emotion]))]
    opener = OPENERS[rng.integers(len(OPENERS))]
    if opener:
        keep_capital = cue.startswith(("I ", "I'"))
        cue = f"{opener} {cue if keep_capital else cue[0].lower() + cue[1:]}"
    if rng.random() < 0.5:
        cue += " " + FOLLOW_UPS[rng.integers(len(FOLLOW_UPS))]
    return cue
