"""Face crops with OpenCV's Haar cascade, inside the speaker's half of the frame.

Fallback when no face is found: a centre crop of the searched region (a square of side
``min(h, w)``, centred), counted per utterance so the cache says how often it happened.
"""
from __future__ import annotations

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"


class FaceCropper:
    def __init__(self, min_size: int = 30, margin: float = 0.15) -> None:
        path = cv2.data.haarcascades + CASCADE
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path} (opencv-python<5 ships it)")
        self.min_size = min_size
        self.margin = margin

    def crop(self, frame: np.ndarray, side: str) -> tuple[np.ndarray, bool]:
        """(RGB crop of the largest face in ``side`` of ``frame``, whether a face was found)."""
        region = half(frame, side)
        gray = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)
        faces = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4,
                                              minSize=(self.min_size, self.min_size))
        if len(faces) == 0:
            return centre_square(region), False
        x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        m = int(self.margin * max(w, h))
        y0, y1 = max(0, y - m), min(region.shape[0], y + h + m)
        x0, x1 = max(0, x - m), min(region.shape[1], x + w + m)
        return region[y0:y1, x0:x1], True


def half(frame: np.ndarray, side: str) -> np.ndarray:
    width = frame.shape[1]
    if side == "left":
        return frame[:, : width // 2]
    if side == "right":
        return frame[:, width // 2:]
    return frame


def centre_square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return image[y0:y0 + s, x0:x0 + s]
