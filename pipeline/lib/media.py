"""Cheap checks that a media file exists and can be decoded, done once per file.

Used by ``prepare`` so that missing or corrupt clips (the real MELD release has both) are found
and recorded before any extractor runs. Decoding uses PyAV's bundled ffmpeg; no system ffmpeg.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import soundfile

MISSING = "missing file"
UNREADABLE = "unreadable file"
NO_AUDIO = "no audio stream"
NO_VIDEO = "no video stream"
EMPTY = "zero-length media"
OUTSIDE_ROOT = "outside the corpus root"


def probe(path: Path, kind: str, decode: bool = True) -> tuple[str, str] | None:
    """Return ``(problem, detail)`` if ``path`` cannot serve as ``kind`` ('audio'|'video'), else None.

    With ``decode`` the first frame of the stream is decoded (catches truncated/corrupt files);
    without it only existence is checked.
    """
    if not path.is_file():
        return MISSING, str(path)
    if path.stat().st_size == 0:
        return EMPTY, f"{path}: 0 bytes"
    if not decode:
        return None
    return _probe_cached(str(path), kind, path.stat().st_mtime_ns)


@lru_cache(maxsize=4096)
def _probe_cached(path: str, kind: str, _mtime: int) -> tuple[str, str] | None:
    if kind == "audio" and path.lower().endswith((".wav", ".flac")):
        try:
            info = soundfile.info(path)
        except Exception as exc:  # soundfile raises its own LibsndfileError, RuntimeError, ...
            return UNREADABLE, f"{path}: {exc}"
        return None if info.frames > 0 else (EMPTY, f"{path}: 0 samples")
    return _probe_container(path, kind)


def _probe_container(path: str, kind: str) -> tuple[str, str] | None:
    import av  # imported lazily: only needed for video containers

    try:
        with av.open(path) as container:
            streams = container.streams.audio if kind == "audio" else container.streams.video
            if not streams:
                return (NO_AUDIO if kind == "audio" else NO_VIDEO), path
            for _ in container.decode(streams[0]):
                return None
            return EMPTY, f"{path}: no decodable {kind} frame"
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        return UNREADABLE, f"{path}: {exc}"


def stream_kinds(path: Path) -> list[str]:
    """The kinds of stream (``video``, ``audio``, in that order) a media file has; empty when it
    cannot be opened."""
    if path.suffix.lower() in (".wav", ".flac"):
        try:
            return ["audio"] if soundfile.info(str(path)).frames > 0 else []
        except Exception:  # soundfile raises its own LibsndfileError, RuntimeError, ...
            return []
    import av

    try:
        with av.open(str(path)) as container:
            return [kind for kind, streams in (("video", container.streams.video),
                                               ("audio", container.streams.audio)) if streams]
    except (av.error.FFmpegError, OSError, ValueError):
        return []
