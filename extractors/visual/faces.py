"""Face crops with OpenCV's Haar cascade, inside the speaker's half of the frame.

Fallback when no face is found: a centre crop of the searched region (a square of side
``min(h, w)``, centred), counted per utterance so the cache says how often it happened.
"""
from __future__ import annotations

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"


class FaceCropper:
    """Detection runs on the region scaled down to ``detect_size`` px (longer side) and looks for
    faces of at least ``min_face`` of the region's shorter side: in conversation video the speaker's
    face is large, and this keeps detection cheap next to the CNN. The crop is cut at full
    resolution."""

    def __init__(self, detect_size: int = 160, min_face: float = 0.2, margin: float = 0.15) -> None:
        path = cv2.data.haarcascades + CASCADE
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path} (opencv-python<5 ships it)")
        cv2.setNumThreads(1)  # the CNN already uses every core; OpenCV's pool would fight it
        self.detect_size, self.min_face, self.margin = detect_size, min_face, margin

    def crop(self, frame: np.ndarray, side: str) -> tuple[np.ndarray, bool]:
        """(RGB crop of the largest face in ``side`` of ``frame``, whether a face was found)."""
        region = half(frame, side)
        scale = min(1.0, self.detect_size / max(region.shape[:2]))
        gray = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        smallest = max(20, int(self.min_face * min(gray.shape)))
        faces = self.cascade.detectMultiScale(gray, scaleFactor=1.15, minNeighbors=4,
                                              minSize=(smallest, smallest))
        if len(faces) == 0:
            return centre_square(region), False
        x, y, w, h = (int(round(v / scale)) for v in max(faces, key=lambda f: f[2] * f[3]))
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
