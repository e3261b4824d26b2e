"""Decoding utterance audio and video frames in-process (PyAV's bundled ffmpeg, no system ffmpeg)."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile

from extractors.base import UtteranceFailure

SAMPLE_RATE = 16_000


def load_audio(path: Path, start: float | None = None, end: float | None = None,
               sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 waveform of ``path`` between ``start`` and ``end`` seconds, at ``sample_rate``.

    wav/flac are read with soundfile (seeking to the span); anything else (mp4, avi, ...) is decoded
    with PyAV. Down-mixed to mono and resampled.
    """
    try:
        if path.suffix.lower() in (".wav", ".flac"):
            wave, sr = _read_soundfile(path, start, end)
        else:
            wave, sr = _read_container(path, start, end)
    except UtteranceFailure:
        raise
    except Exception as exc:  # decoder errors come in many types; the reason is what matters
        raise UtteranceFailure(f"unreadable audio {path.name}: {exc}") from None
    if sr != sample_rate and len(wave):
        import librosa  # lazy: heavy import only needed for resampling
        wave = librosa.resample(wave, orig_sr=sr, target_sr=sample_rate)
    if len(wave) < sample_rate // 100:
        raise UtteranceFailure(f"no audio in span of {path.name} ({len(wave)} samples)")
    return wave.astype(np.float32, copy=False)


def _read_soundfile(path: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    info = soundfile.info(str(path))
    first = int(round((start or 0.0) * info.samplerate))
    last = info.frames if end is None else min(info.frames, int(round(end * info.samplerate)))
    if first >= info.frames:
        raise UtteranceFailure(f"span starts at {start:.3f} s, after the end of {path.name}")
    wave, sr = soundfile.read(str(path), start=first, stop=last, dtype="float32", always_2d=True)
    return wave.mean(axis=1), sr


def _read_container(path: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise UtteranceFailure(f"no audio stream in {path.name}")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        if start:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        chunks, times = [], []
        for frame in container.decode(stream):
            t0 = float(frame.pts * stream.time_base) if frame.pts is not None else 0.0
            if end is not None and t0 >= end:
                break
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
                times.append(t0)
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
            times.append(times[-1] if times else 0.0)
    if not chunks:
        return np.zeros(0, np.float32), SAMPLE_RATE
    wave = np.concatenate(chunks)
    origin = times[0]
    first = int(round(((start or origin) - origin) * SAMPLE_RATE)) if start else 0
    last = len(wave) if end is None else int(round((end - origin) * SAMPLE_RATE))
    return wave[max(first, 0):max(last, 0)], SAMPLE_RATE


class VideoReader:
    """Frames at given times from video files; keeps the last file open (utterances of a dialogue
    share one video and arrive in order)."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._container = None

    def frames_at(self, path: Path, times: list[float]) -> list[np.ndarray]:
        """RGB uint8 frames nearest to each of ``times`` (seconds, ascending)."""
        try:
            container = self._open(path)
            stream = container.streams.video[0]
            container.seek(max(0, int((times[0] - 0.5) / stream.time_base)), stream=stream,
                           backward=True)
            half_frame = 0.5 / float(stream.average_rate or 25)
            wanted = list(times)
            picked: list[np.ndarray] = []
            last = None
            for frame in container.decode(stream):
                t = float(frame.pts * stream.time_base) if frame.pts is not None else 0.0
                last = frame
                while wanted and t >= wanted[0] - half_frame:   # nearest frame to the target
                    picked.append(frame.to_ndarray(format="rgb24"))
                    wanted.pop(0)
                if not wanted:
                    break
            if wanted and last is not None:  # span runs past the last frame: repeat the last one
                picked += [last.to_ndarray(format="rgb24")] * len(wanted)
        except UtteranceFailure:
            raise
        except Exception as exc:
            self.close()
            raise UtteranceFailure(f"unreadable video {path.name}: {exc}") from None
        if not picked:
            raise UtteranceFailure(f"no video frames in span of {path.name}")
        return picked

    def duration(self, path: Path) -> float:
        container = self._open(path)
        stream = container.streams.video[0]
        if stream.duration is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration or 0) / av.time_base

    def _open(self, path: Path):
        if self._path != path:
            self.close()
            try:
                self._container = av.open(str(path))
            except Exception as exc:
                raise UtteranceFailure(f"unreadable video {path.name}: {exc}") from None
            if not self._container.streams.video:
                self.close()
                raise UtteranceFailure(f"no video stream in {path.name}")
            self._path = path
        return self._container

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._path = None, None
