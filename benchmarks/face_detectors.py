"""Face detectors compared (a benchmark script): faces found and milliseconds per frame and side,
Haar against MTCNN, on the real IEMOCAP clip of ../shared and the demo's first three clips.

    python benchmarks/face_detectors.py        # after make demo (for the demo clips)
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from extractors.media_io import VideoReader  # noqa: E402
from extractors.visual.faces import DETECTORS, FaceCropper  # noqa: E402

REAL = REPO.parent / "shared" / "data" / "real_media" / "Ses01M_script02_2_M054_neutral.avi"


def main() -> None:
    clips = [("real IEMOCAP clip", REAL, ["left", "right", ""])] if REAL.exists() else []
    demo = sorted((REPO / "data" / "demo").rglob("*.avi"))[:3]
    clips += [(f"demo {p.name}", p, ["left", "right"]) for p in demo]
    if not clips:
        raise SystemExit("no clip: needs ../shared/data beside the repository or the demo corpus (make demo)")
    for name in DETECTORS:
        cropper = FaceCropper(name)
        for label, path, sides in clips:
            reader = VideoReader()
            times = list(np.linspace(0.2, reader.duration(path) - 0.2, 40))
            frames = [f for f in reader.frames_at(path, times) if f is not None]
            found = tried = 0
            started = time.perf_counter()
            for frame in frames:
                for side in sides:
                    found += cropper.crop(frame, side)[1]
                    tried += 1
            ms = 1000 * (time.perf_counter() - started) / tried
            print(f"{name:6s} {label:40s} {found:3d}/{tried} faces found, {ms:6.1f} ms per frame and side "
                  f"({frames[0].shape[1]}x{frames[0].shape[0]})", flush=True)


if __name__ == "__main__":
    main()
