"""Frames of a video file, a camera or a stream, as RGB uint8 arrays, through OpenCV's `cv2.VideoCapture`.

OpenCV comes with the `video` and `rtm` extras (mediapipe and rtmlib depend on it) and is imported only here, when a
video is opened, so the base install stays free of it. `open_video(source)` takes a file path, a camera index (an
int, or a string of digits such as "0") or a stream URL (rtsp://, http://, ...). Every problem is a PoseError naming
the source: a missing file, one OpenCV cannot open as a video (a text file, an image format it does not decode), a
video with no frame, a camera that does not open.

Timestamps: frame i of a file is at round(1000 i / fps) ms (its container's frame rate, else 30 fps); a camera or
stream frame is at the time it was read, from the first one. Both strictly increase, as mediapipe's VIDEO mode needs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator

import numpy as np

from skeljax.pose.base import MissingExtraError, PoseError, native_stderr_silenced

DEFAULT_FPS = 30.0  # when the container or camera does not say
STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")
UNREADABLE = (
    "OpenCV cannot read it as a video (not a video, a format it does not decode, or cut off before its index as a "
    "zero-length recording is)"
)


def import_cv2():
    """OpenCV, or one MissingExtraError naming the pip command."""
    try:
        import cv2
    except ImportError:
        raise MissingExtraError("cv2", "decoding a video (OpenCV)") from None
    return cv2


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What the container or device says: frames per second, frame size in pixels, frame count (0: unknown, as for
    cameras and streams)."""

    source: str
    fps: float
    width: int
    height: int
    frame_count: int
    live: bool  # a camera or stream: timestamps from the clock, no end known

    @property
    def img_shape(self) -> tuple[int, int]:
        """(H, W), as skeljax's annotation dicts hold it."""
        return self.height, self.width


@dataclasses.dataclass(frozen=True)
class Frame:
    index: int  # 0, 1, 2, ... in the order read
    timestamp_ms: int
    rgb: np.ndarray  # (H, W, 3) uint8


class Video:
    """An opened video source; iterate it for `Frame`s, `close()` it (or use `with`)."""

    def __init__(self, capture, info: VideoInfo, first):
        self._capture, self.info, self._first = capture, info, first

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __iter__(self) -> Iterator[Frame]:
        cv2 = import_cv2()
        bgr, index, start, last_ms = self._first, 0, time.monotonic(), -1
        self._first = None
        while bgr is not None and self._capture is not None:
            if self.info.live:
                ms = int(round((time.monotonic() - start) * 1000.0))
            else:
                ms = int(round(index * 1000.0 / self.info.fps))
            last_ms = max(ms, last_ms + 1)
            yield Frame(index, last_ms, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1
            with native_stderr_silenced():
                ok, bgr = self._capture.read()
            bgr = bgr if ok else None


def _source_arg(source: str | int | os.PathLike) -> tuple[str | int, str, bool]:
    """(what VideoCapture takes, the name for messages, whether it is live)."""
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return int(source), f"camera {int(source)}", True
    source = os.fspath(source)
    if source.lower().startswith(STREAM_PREFIXES):
        return source, source, True
    if not os.path.exists(source):
        raise PoseError(source, "no such file")
    if os.path.isdir(source):
        raise PoseError(source, "is a folder, not a video file")
    if os.path.getsize(source) == 0:
        raise PoseError(source, "is empty (0 bytes), not a video")
    return source, source, False


def open_video(source: str | int | os.PathLike) -> Video:
    """The opened source, its first frame already read (so a video with no frame fails here, before any work)."""
    arg, name, live = _source_arg(source)
    cv2 = import_cv2()
    with native_stderr_silenced():
        capture = cv2.VideoCapture(arg)
        opened = capture.isOpened()
        ok, first = capture.read() if opened else (False, None)
    if not opened:
        capture.release()
        raise PoseError(name, "cannot open the camera" if isinstance(arg, int) else UNREADABLE)
    if not ok or first is None:
        capture.release()
        raise PoseError(name, "holds no video frame (zero-length, or not a video OpenCV can decode)")
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    fps = fps if np.isfinite(fps) and 0 < fps < 1000 else DEFAULT_FPS
    count = 0 if live else max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    height, width = first.shape[:2]
    return Video(capture, VideoInfo(name, fps, int(width), int(height), count, live), first)
