"""A drawn face whose expression and colour follow an emotion, for the demo videos.

Affect -> appearance: mouth curve (valence), mouth opening and eye opening (arousal), brow slant
(inner ends down for negative valence with arousal, raised when surprised/afraid), and a skin tint
per emotion. While speaking the mouth opens and closes at the syllable rate. The face is shaded
(dark eyes and brows over a light skin oval) so OpenCV's Haar cascade has a chance to find it;
extractors fall back to a centre crop when it does not.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.democorpus.story import AFFECT


@dataclass(frozen=True)
class Look:
    """Per-speaker constants: skin colour and head size jitter stay fixed over a dialogue."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]


def random_look(rng: np.random.Generator) -> Look:
    base = rng.uniform(0.75, 0.95)
    skin = (int(150 * base + 40), int(180 * base + 40), int(215 * base + 40))
    hair = tuple(int(x) for x in rng.integers(10, 90, 3))
    return Look(skin, hair)  # type: ignore[arg-type]


def draw_face(canvas: np.ndarray, box: tuple[int, int, int, int], emotion: str, look: Look,
              rng: np.random.Generator, speaking_phase: float | None) -> None:
    """Draw a face expressing ``emotion`` inside ``box`` = (x, y, w, h) of ``canvas`` (BGR, in place).

    ``speaking_phase`` in [0, 1) animates the mouth; None means silent (mouth closed).
    """
    x, y, w, h = box
    affect = AFFECT[emotion]
    v, a = affect.valence, affect.arousal
    cx = x + w // 2 + int(rng.normal(0, w * 0.015))
    cy = y + h // 2 + int(rng.normal(0, h * 0.015))
    fw, fh = int(w * 0.30), int(h * 0.40)               # face half-axes
    tint = np.array(affect.tint, float)
    skin = tuple(int(c) for c in 0.5 * np.array(look.skin) + 0.5 * tint)
    cv2.ellipse(canvas, (cx, cy - int(fh * 0.35)), (int(fw * 1.08), int(fh * 0.8)), 0, 180, 360,
                look.hair, -1)
    cv2.ellipse(canvas, (cx, cy), (fw, fh), 0, 0, 360, skin, -1)
    eye_y = cy - int(fh * 0.2)
    eye_dx = int(fw * 0.42)
    eye_open = max(2, int(fh * (0.11 + 0.06 * a)))
    brow_lift = int(fh * (0.08 + 0.12 * max(a, 0) * (1 if v > -0.2 or emotion == "fear" else 0)))
    inner_drop = int(fh * 0.12 * max(0.0, -v) * (1 if a > 0 else -0.8))
    for side in (-1, 1):
        ex = cx + side * eye_dx
        cv2.ellipse(canvas, (ex, eye_y), (int(fw * 0.2), eye_open), 0, 0, 360, (235, 235, 235), -1)
        cv2.circle(canvas, (ex, eye_y), max(2, int(fw * 0.09)), (30, 20, 20), -1)
        outer = (ex + side * int(fw * 0.25), eye_y - eye_open - int(fh * 0.08) - brow_lift)
        inner = (ex - side * int(fw * 0.2), eye_y - eye_open - int(fh * 0.08) - brow_lift + inner_drop)
        cv2.line(canvas, outer, inner, (25, 25, 35), max(2, int(fh * 0.05)))
    nose_top, nose_bottom = (cx, eye_y + int(fh * 0.1)), (cx - int(fw * 0.06), cy + int(fh * 0.22))
    cv2.line(canvas, nose_top, nose_bottom, tuple(int(c * 0.7) for c in skin), 2)
    _draw_mouth(canvas, cx, cy + int(fh * 0.5), fw, fh, v, a, speaking_phase)


def _draw_mouth(canvas: np.ndarray, cx: int, my: int, fw: int, fh: int, v: float, a: float,
                speaking_phase: float | None) -> None:
    half = int(fw * 0.45)
    xs = np.linspace(-half, half, 15)
    curve = v * fh * 0.14 * (1 - (xs / half) ** 2)       # image y grows down: v > 0 smiles
    opening = fh * (0.04 + 0.12 * max(a, 0))
    if speaking_phase is not None:
        opening *= 0.4 + 0.6 * abs(np.sin(np.pi * speaking_phase))
    upper = np.stack([cx + xs, my + curve - opening / 2], 1)
    lower = np.stack([cx + xs[::-1], my + curve[::-1] + opening / 2], 1)
    pts = np.concatenate([upper, lower]).astype(np.int32)
    cv2.fillPoly(canvas, [pts], (40, 30, 120))


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A soft vertical gradient of a random colour: the set behind the actors."""
    top, bottom = rng.integers(40, 200, 3), rng.integers(40, 200, 3)
    ramp = np.linspace(0, 1, height)[:, None, None]
    img = (1 - ramp) * top + ramp * bottom
    return np.broadcast_to(img, (height, width, 3)).astype(np.uint8).copy()


class SensorNoise:
    """Per-frame sensor noise drawn from a small bank of precomputed patterns (cheap per frame)."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...], sigma: float = 5.0,
                 bank: int = 8) -> None:
        self._rng = rng
        self._bank = np.clip(rng.normal(0, sigma, (bank, *shape)), -127, 127).astype(np.int16)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        pattern = self._bank[self._rng.integers(len(self._bank))]
        return np.clip(frame + pattern, 0, 255).astype(np.uint8)
