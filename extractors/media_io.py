"""Decoding utterance audio and video frames in-process (PyAV's bundled ffmpeg, no system ffmpeg)."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile

from extractors.base import UtteranceFailure

SAMPLE_RATE = 16_000
# How far a span may run past the end of its audio (annotation rounding) before it is a fault.
SPAN_TOLERANCE_S = 0.1


def load_audio(path: Path, start: float | None = None, end: float | None = None,
               sample_rate: int = SAMPLE_RATE, min_duration_s: float = 0.01) -> np.ndarray:
    """Mono float32 waveform of ``path`` between ``start`` and ``end`` seconds, at ``sample_rate``.

    wav/flac are read with soundfile (seeking to the span); anything else (mp4, avi, ...) is decoded
    with PyAV. Down-mixed to mono and resampled. Refused, each with its reason
    (:class:`UtteranceFailure`): a span that starts or ends past the end of the audio (beyond
    ``SPAN_TOLERANCE_S``), non-finite samples, digital silence (all zero), and fewer than
    ``min_duration_s`` seconds (the extractor's shortest meaningful input).
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
    check_samples(wave, sample_rate, min_duration_s, path.name)
    return wave.astype(np.float32, copy=False)


def check_samples(wave: np.ndarray, sample_rate: int, min_duration_s: float, name: str) -> None:
    """Refuse samples no extractor should see (checked before extraction, not after)."""
    if len(wave) == 0:
        raise UtteranceFailure(f"no audio in span of {name}")
    finite = np.isfinite(wave)
    if not finite.all():
        raise UtteranceFailure(f"non-finite audio samples in {name} ({int((~finite).sum())} NaN/Inf)")
    if not np.any(wave):
        raise UtteranceFailure(f"silent audio in {name} (every sample is zero)")
    if len(wave) < min_duration_s * sample_rate:
        raise UtteranceFailure(f"audio span of {name} too short: {1000 * len(wave) / sample_rate:.0f} ms "
                               f"< {1000 * min_duration_s:.0f} ms, the extractor's minimum")


def check_span(start: float | None, end: float | None, available_s: float, name: str) -> None:
    """A span past the end of the decodable audio is a fault, never silently padded or cut."""
    if start is not None and start >= available_s:
        raise UtteranceFailure(f"span starts at {start:.3f} s, after the end of {name} ({available_s:.3f} s)")
    if end is not None and end > available_s + SPAN_TOLERANCE_S:
        raise UtteranceFailure(f"span ends at {end:.3f} s, past the end of {name} ({available_s:.3f} s "
                               "decodable): truncated or damaged audio, or a wrong span")


def _read_soundfile(path: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    info = soundfile.info(str(path))
    first = int(round((start or 0.0) * info.samplerate))
    last = info.frames if end is None else min(info.frames, int(round(end * info.samplerate)))
    check_span(start, end, info.frames / info.samplerate, path.name)
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
    if end is not None or start:
        check_span(start, end, origin + len(wave) / SAMPLE_RATE, path.name)
    first = int(round(((start or origin) - origin) * SAMPLE_RATE)) if start else 0
    last = len(wave) if end is None else int(round((end - origin) * SAMPLE_RATE))
    return wave[max(first, 0):max(last, 0)], SAMPLE_RATE


def upright(frame) -> np.ndarray:
    """The RGB frame as a viewer sees it: a display rotation in the container (phones record
    sideways and say so) is applied, in quarter turns (PyAV's ``rotation``: counter-clockwise
    degrees of the display matrix, -90 for a clip to be turned clockwise)."""
    image = frame.to_ndarray(format="rgb24")
    turns = int(round((getattr(frame, "rotation", 0) or 0) / 90)) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


class VideoReader:
    """Frames at given times from video files; keeps the last file open (utterances of a dialogue
    share one video and arrive in order)."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._container = None

    def frames_at(self, path: Path, times: list[float]) -> list[np.ndarray | None]:
        """RGB uint8 frame at each of ``times`` (seconds, ascending), or None where no frame was
        decoded within one frame period of it: past the end of the video, or where damaged data
        made the decoder skip ahead. A frame is never repeated to stand in for another time."""
        picked: list[np.ndarray | None] = []
        last = None
        try:
            container = self._open(path)
            stream = container.streams.video[0]
            container.seek(max(0, int((times[0] - 0.5) / stream.time_base)), stream=stream,
                           backward=True)
            period = 1.0 / float(stream.average_rate or 25)
            wanted = list(times)
            for frame in container.decode(stream):
                t = last = float(frame.pts * stream.time_base) if frame.pts is not None else 0.0
                while wanted and t >= wanted[0] - period / 2:   # the first frame at the target
                    picked.append(upright(frame) if t <= wanted[0] + period else None)
                    wanted.pop(0)
                if not wanted:
                    break
        except UtteranceFailure:
            raise
        except Exception as exc:
            # The decoder failed part-way: features from the frames before it would describe
            # another span than the one asked for, so the utterance fails, saying what decoded.
            self.close()
            got = [f"{t:.2f}" for t, f in zip(times, picked) if f is not None]
            where = f"after {last:.2f} s" if last is not None else "before its first frame"
            wanted_s = ", ".join(f"{t:.2f}" for t in times)
            raise UtteranceFailure(f"video {path.name} stopped decoding {where} ({type(exc).__name__}: "
                                   f"{exc}); frames decoded at {', '.join(got) or 'none'} of the "
                                   f"{len(times)} wanted ({wanted_s} s)") from None
        return picked + [None] * (len(times) - len(picked))

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
