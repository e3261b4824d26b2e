"""Writes the demo corpus in the MELD.Raw layout.

``MELD.Raw/{train,dev,test}_sent_emo.csv`` with the release's columns and timestamp format, and one
``dia{D}_utt{U}.mp4`` (MPEG-4 video of the speaker + AAC audio) per utterance in ``train_splits/``,
``dev_splits_complete/`` and ``output_repeated_splits_test/``. Like the real release, one dev clip
is missing and one train clip is corrupt (truncated), so the error policy is exercised.
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.democorpus import encode, face
from pipeline.democorpus.render import (
    RenderedTurn,
    frame_times,
    new_speaker,
    place_on_timeline,
    render_turn,
    speaking_phase,
)
from pipeline.democorpus.story import MELD_PRIOR, StoryParams, simulate_dialogue
from pipeline.democorpus.voice import SAMPLE_RATE
from pipeline.lib.releases import MELD_CLIP_DIRS as CLIP_DIRS
from pipeline.lib.releases import MELD_CSV_COLUMNS as CSV_COLUMNS
from pipeline.lib.releases import MELD_CSV_FILES as CSV_FILES

ROOT_NAME = "MELD.Raw"
CAST = {"Rachel": True, "Monica": True, "Phoebe": True, "Ross": False, "Chandler": False,
        "Joey": False, "Janice": True, "Gunther": False}
SENTIMENT = {"neutral": "neutral", "joy": "positive", "surprise": "positive", "sadness": "negative",
             "anger": "negative", "fear": "negative", "disgust": "negative"}
SIZE = (192, 144)
FPS = 12
# (split, dialogue, utterance) of the planted defects, mirroring dev dia110_utt7 / train dia125_utt3.
MISSING_CLIP = ("dev", 1, 1)
CORRUPT_CLIP = ("train", 2, 1)


def timestamp(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write(out: Path, rng: np.random.Generator, *, dialogues: dict[str, int],
          turns: tuple[int, int], story: StoryParams, log: Callable[[str], None] | None = None) -> Path:
    root = out / ROOT_NAME
    root.mkdir(parents=True, exist_ok=True)
    serial = 1
    for split in CSV_FILES:
        if log:
            log(f"demo: {split} split ({dialogues[split]} dialogues)")
        rows = []
        for dia in range(dialogues[split]):
            names = list(rng.choice(list(CAST), size=int(rng.integers(2, 5)), replace=False))
            speakers = {n: new_speaker(rng, n, CAST[n]) for n in names}
            plot = simulate_dialogue(rng, names, int(rng.integers(turns[0], turns[1] + 1)),
                                     MELD_PRIOR, story)
            rendered = [render_turn(rng, t, speakers[t.speaker]) for t in plot]
            place_on_timeline(rng, rendered, t0=float(rng.uniform(60, 1200)))
            season, episode = int(rng.integers(1, 11)), int(rng.integers(1, 25))
            for utt, r in enumerate(rendered):
                rows.append({"Sr No.": serial, "Utterance": r.text.replace("'", "\u2019"),
                             "Speaker": r.turn.speaker, "Emotion": r.turn.emotion,
                             "Sentiment": SENTIMENT[r.turn.emotion], "Dialogue_ID": dia,
                             "Utterance_ID": utt, "Season": season, "Episode": episode,
                             "StartTime": timestamp(r.start), "EndTime": timestamp(r.end)})
                serial += 1
                _write_clip(root / CLIP_DIRS[split] / f"dia{dia}_utt{utt}.mp4", rng, r,
                            defect=(split, dia, utt))
        with open(root / CSV_FILES[split], "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return root


def _write_clip(path: Path, rng: np.random.Generator, r: RenderedTurn, defect: tuple) -> None:
    if defect == MISSING_CLIP:
        return
    scene = face.background(rng, SIZE[1], SIZE[0])
    box = (SIZE[0] // 2 - SIZE[1] // 2, 0, SIZE[1], SIZE[1])
    noise = face.SensorNoise(rng, scene.shape, bank=4)

    def frames():
        for t in frame_times(r.start, r.end, FPS):
            frame = scene.copy()
            face.draw_face(frame, box, r.turn.shown["visual"], r.speaker.look, rng,
                           speaking_phase(r, t))
            yield noise(frame)

    encode.write_mp4(path, frames(), FPS, SIZE, r.wave, SAMPLE_RATE)
    if defect == CORRUPT_CLIP:
        path.write_bytes(path.read_bytes()[:700])   # truncated download, as in the real release
