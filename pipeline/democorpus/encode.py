"""Writing demo media with the ffmpeg bundled in PyAV (no system ffmpeg)."""
from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile

AAC_FRAME = 1024  # samples per AAC frame


def write_wav(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM wav, as in the IEMOCAP release."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, wave, sample_rate, subtype="PCM_16")


def write_avi(path: Path, frames: Iterable[np.ndarray], fps: int, size: tuple[int, int]) -> None:
    """MPEG-4 Part 2 video tagged XVID in an AVI container (the IEMOCAP DivX/XviD files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.codec_tag = "XVID"
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 200_000
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: int, size: tuple[int, int],
              wave: np.ndarray, sample_rate: int) -> None:
    """MPEG-4 Part 2 video + AAC mono audio in MP4 (MELD clips are MP4 with H.264 + AAC).

    Not H.264: libx264 output differed from run to run inside the generator (same input frames),
    which would make the DVC-cached demo corpus change on every rebuild.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.bit_rate = 300_000
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=sample_rate, layout="mono")
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        padded = np.zeros(-(-len(wave) // AAC_FRAME) * AAC_FRAME, np.float32)
        padded[:len(wave)] = wave
        for start in range(0, len(padded), AAC_FRAME):
            frame = av.AudioFrame.from_ndarray(padded[None, start:start + AAC_FRAME], format="fltp",
                                               layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = start
            frame.time_base = Fraction(1, sample_rate)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
