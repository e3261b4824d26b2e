"""Writes the demo corpus in the IEMOCAP release layout.

``IEMOCAP_full_release/Session{N}/``
  ``dialog/transcriptions/<dialog>.txt``  ``Ses01F_impro01_F000 [006.2901-008.2357]: text``
  ``dialog/EmoEvaluation/<dialog>.txt``   header + blocks ``[6.2901 - 8.2357]<TAB>id<TAB>label<TAB>[v, a, d]``
                                          followed by per-annotator ``C-E*`` / ``A-E*`` lines
  ``dialog/wav/<dialog>.wav``             the whole dialogue, 16 kHz mono PCM
  ``dialog/avi/DivX/<dialog>.avi``        both actors side by side (F left, M right), XviD
  ``sentences/wav/<dialog>/<utt>.wav``    one file per utterance, 16 kHz mono PCM
"""
from __future__ import annotations

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
from pipeline.democorpus.story import AFFECT, IEMOCAP_PRIOR, StoryParams, simulate_dialogue
from pipeline.democorpus.voice import SAMPLE_RATE

ROOT_NAME = "IEMOCAP_full_release"
OUTSIDE_SIX = ["xxx", "xxx", "oth", "sur", "fea"]
CATEGORY_NAMES = {"neu": "Neutral", "hap": "Happiness", "sad": "Sadness", "ang": "Anger",
                  "exc": "Excited", "fru": "Frustration"}
HALF = 160          # each actor's half of the frame is HALF x HALF pixels
FPS = 10


def write(out: Path, rng: np.random.Generator, *, sessions: int, dialogues_per_session: int,
          turns: tuple[int, int], unlabelled: float, story: StoryParams,
          log: Callable[[str], None] | None = None) -> Path:
    root = out / ROOT_NAME
    for s in range(1, sessions + 1):
        if log:
            log(f"demo: session {s}/{sessions} ({dialogues_per_session} dialogues)")
        for k in range(dialogues_per_session):
            lead = "F" if k % 2 == 0 else "M"        # whose markers were recorded, in the name
            name = (f"Ses{s:02d}{lead}_impro{k // 2 + 1:02d}" if k % 4 < 2
                    else f"Ses{s:02d}{lead}_script{k // 4 + 1:02d}_{k % 2 + 1}")
            _write_dialogue(root / f"Session{s}", name, rng, turns, unlabelled, story)
    return root


def _write_dialogue(session: Path, name: str, rng: np.random.Generator, turns: tuple[int, int],
                    unlabelled: float, story: StoryParams) -> None:
    speakers = {"F": new_speaker(rng, "F", True), "M": new_speaker(rng, "M", False)}
    plot = simulate_dialogue(rng, ["F", "M"], int(rng.integers(turns[0], turns[1] + 1)),
                             IEMOCAP_PRIOR, story)
    rendered = [render_turn(rng, t, speakers[t.speaker]) for t in plot]
    end = place_on_timeline(rng, rendered, t0=float(rng.uniform(1.0, 4.0))) + 1.0
    counters = {"F": 0, "M": 0}
    ids = []
    for r in rendered:
        ids.append(f"{name}_{r.turn.speaker}{counters[r.turn.speaker]:03d}")
        counters[r.turn.speaker] += 1
    dialog = session / "dialog"
    mix = np.zeros(int(end * SAMPLE_RATE) + 1, np.float32)
    for uid, r in zip(ids, rendered):
        encode.write_wav(session / "sentences" / "wav" / name / f"{uid}.wav", r.wave, SAMPLE_RATE)
        at = int(r.start * SAMPLE_RATE)
        mix[at:at + len(r.wave)] += r.wave
    encode.write_wav(dialog / "wav" / f"{name}.wav", np.clip(mix, -1, 1), SAMPLE_RATE)
    (dialog / "transcriptions").mkdir(parents=True, exist_ok=True)
    (dialog / "transcriptions" / f"{name}.txt").write_text("".join(
        f"{uid} [{r.start:08.4f}-{r.end:08.4f}]: {r.text}\n" for uid, r in zip(ids, rendered)))
    (dialog / "EmoEvaluation").mkdir(parents=True, exist_ok=True)
    (dialog / "EmoEvaluation" / f"{name}.txt").write_text(
        _evaluation(rng, ids, rendered, unlabelled))
    encode.write_avi(dialog / "avi" / "DivX" / f"{name}.avi", _frames(rng, rendered, end),
                     FPS, (2 * HALF, HALF))


def _evaluation(rng: np.random.Generator, ids: list[str], rendered: list[RenderedTurn],
                unlabelled: float) -> str:
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for uid, r in zip(ids, rendered):
        label = r.turn.emotion
        if rng.random() < unlabelled:
            label = OUTSIDE_SIX[rng.integers(len(OUTSIDE_SIX))]
        affect = AFFECT[r.turn.emotion]
        val, act = 3 + 2 * affect.valence, 3 + 2 * affect.arousal
        lines.append(f"[{r.start:.4f} - {r.end:.4f}]\t{uid}\t{label}\t"
                     f"[{val:.4f}, {act:.4f}, {act:.4f}]")
        for annotator in ("C-E1", "C-E2", "C-E4"):
            lines.append(f"{annotator}:\t{CATEGORY_NAMES.get(r.turn.emotion, 'Other')};\t()")
        lines.append(f"A-E1:\tval {round(val)}; act {round(act)}; dom  {round(act)};\t()")
        lines.append("")
    return "\n".join(lines) + "\n"


def _frames(rng: np.random.Generator, rendered: list[RenderedTurn], end: float):
    """Both actors side by side; each shows the expression of their current or last turn."""
    scene = face.background(rng, HALF, 2 * HALF)
    noise = face.SensorNoise(rng, scene.shape)
    boxes = {"F": (0, 0, HALF, HALF), "M": (HALF, 0, HALF, HALF)}
    looks = {r.turn.speaker: r.speaker.look for r in rendered}
    current = 0
    last_shown = {"F": "neu", "M": "neu"}
    for t in frame_times(0.0, end, FPS):
        while current < len(rendered) and rendered[current].end <= t:
            last_shown[rendered[current].turn.speaker] = rendered[current].turn.shown["visual"]
            current += 1
        frame = scene.copy()
        active = rendered[current] if current < len(rendered) and rendered[current].start <= t else None
        for who, box in boxes.items():
            if who not in looks:
                continue
            if active is not None and active.turn.speaker == who:
                face.draw_face(frame, box, active.turn.shown["visual"], looks[who], rng,
                               speaking_phase(active, t))
            else:
                face.draw_face(frame, box, last_shown[who], looks[who], rng, None)
        yield noise(frame)
