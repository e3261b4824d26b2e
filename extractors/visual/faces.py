"""Face crops; the speaker's face chosen by the side of the frame.

Two detectors (``extract.visual.torchvision.face_detector``): ``haar``, OpenCV's Haar cascade
(Viola-Jones 2001: fast, misses turned and partly lit faces), and ``mtcnn``, the MTCNN of
``facenet-pytorch`` (Zhang et al. 2016; its weights ship in the wheel and load weights-only),
each behind :data:`DETECTORS`. Faces are searched on the whole frame, and with a ``side`` the face
with the largest area inside that half is the speaker's: a face that straddles the midline (real
IEMOCAP framing) is found, where cutting the frame in half first would cut it too. Fallback when
no face qualifies: a centre crop of the speaker's half (a square of side ``min(h, w)``, centred),
counted per utterance so the cache says how often it happened.
"""
from __future__ import annotations

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"
Box = tuple[float, float, float, float]    # x, y, width, height


class HaarFaces:
    """OpenCV's frontal-face Haar cascade on the grey image."""

    name = "haar"

    def __init__(self) -> None:
        path = cv2.data.haarcascades + CASCADE
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path} (opencv-python<5 ships it)")
        cv2.setNumThreads(1)  # the CNN already uses every core; OpenCV's pool would fight it

    def identity(self) -> dict:
        return {"face_detector": self.name, "opencv": cv2.__version__}

    def detect(self, frame: np.ndarray, scale: float, smallest: int) -> list[Box]:
        """(x, y, w, h) of each face at least ``smallest`` px wide in the RGB ``frame`` scaled by
        ``scale``, in the scaled image's pixels."""
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = self.cascade.detectMultiScale(gray, scaleFactor=1.15, minNeighbors=4,
                                              minSize=(smallest, smallest))
        return [tuple(float(v) for v in f) for f in faces]


class MtcnnFaces:
    """MTCNN (P-Net, R-Net, O-Net cascade) from ``facenet-pytorch`` 2.5.3 on the CPU, one image
    at a time (deterministic; the extractor's CNN keeps the accelerator)."""

    name = "mtcnn"

    def __init__(self) -> None:
        import torch
        from facenet_pytorch import MTCNN

        self.torch = torch
        self.model = MTCNN(keep_all=True, device="cpu", post_process=False)

    def identity(self) -> dict:
        from importlib import metadata

        return {"face_detector": self.name, "facenet_pytorch": metadata.version("facenet-pytorch")}

    def detect(self, frame: np.ndarray, scale: float, smallest: int) -> list[Box]:
        image = frame if scale >= 1.0 else cv2.resize(frame, None, fx=scale, fy=scale,
                                                      interpolation=cv2.INTER_AREA)
        self.model.min_face_size = smallest
        with self.torch.inference_mode():
            boxes, _ = self.model.detect(np.ascontiguousarray(image))
        if boxes is None:
            return []
        return [(float(x0), float(y0), float(x1 - x0), float(y1 - y0)) for x0, y0, x1, y1 in boxes]


DETECTORS = {"haar": HaarFaces, "mtcnn": MtcnnFaces}


class FaceCropper:
    """Detection runs on the region scaled down to ``detect_size`` px (longer side) and looks for
    faces of at least ``min_face`` of the region's shorter side: in conversation video the speaker's
    face is large, and this keeps detection cheap next to the CNN. The crop is cut at full
    resolution."""

    def __init__(self, detector: str = "haar", detect_size: int = 160, min_face: float = 0.2,
                 margin: float = 0.15) -> None:
        if detector not in DETECTORS:
            raise ValueError(f"face_detector={detector!r}: use one of {', '.join(DETECTORS)}")
        self.detector = DETECTORS[detector]()
        self.detect_size, self.min_face, self.margin = detect_size, min_face, margin

    def crop(self, frame: np.ndarray, side: str) -> tuple[np.ndarray, bool]:
        """(RGB crop of the speaker's face, whether a face was found): the largest face of the
        frame, or with ``side`` (left / right) the one with the largest area inside that half."""
        region = half(frame, side)      # sets the scale and the smallest face, as for one person
        scale = min(1.0, self.detect_size / max(region.shape[:2]))
        width = frame.shape[1] if scale >= 1.0 else int(round(frame.shape[1] * scale))
        smallest = max(20, int(self.min_face * scale * min(region.shape[:2])))
        faces = self.detector.detect(frame, scale, smallest)
        lo, hi = {"left": (0, width // 2), "right": (width // 2, width)}.get(side, (0, width))

        def area_inside(face) -> float:
            x, _, w, h = face
            return max(0.0, min(x + w, hi) - max(x, lo)) * h

        inside = [f for f in faces if area_inside(f) > 0]
        if not inside:
            return centre_square(region), False
        x, y, w, h = (int(round(v / scale)) for v in max(inside, key=area_inside))
        m = int(self.margin * max(w, h))
        y0, y1 = max(0, y - m), min(frame.shape[0], y + h + m)
        x0, x1 = max(0, x - m), min(frame.shape[1], x + w + m)
        return frame[y0:y1, x0:x1], True


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
