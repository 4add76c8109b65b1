"""The annotated video of `skeljax-predict --video FILE --out annotated.mp4|.gif`: the input's frames with the tracked
skeletons drawn on them, each person's track id, and the action predicted for that moment.

Drawing is NumPy + OpenCV on the frame itself (a few milliseconds per frame), with the rules of skeljax.visualize:
the layout's edges (COCO-17), the joints `visualize.prepare_points` keeps (not all-zero, score at least `min_score`),
its colours (`visualize.COLORS`), here chosen by track id so a person keeps one colour through the video. The id
(`#3`) is written above the person's highest joint. The corner caption is the top-1 label and probability of the
window covering the frame; where windows overlap, of the one whose centre is nearest the frame (a whole-video
prediction is one window). With per-person predictions each person's own label follows its id instead.

Writers: `.mp4` through OpenCV's VideoWriter with the 'mp4v' codec (MPEG-4 Part 2, which the opencv-python wheels
write without an external encoder), `.gif` through Pillow (each frame reduced to 256 colours and kept in memory
until the end, so GIFs are for short clips; Pillow merges identical consecutive frames into one, keeping the
timing). The file appears complete or not at all (skeljax.io.atomic).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from skeljax import layouts, visualize
from skeljax.io.atomic import atomic_path
from skeljax.pose.video_io import import_cv2, open_video
from skeljax.visualize import RenderError

OUTPUT_TYPES = (".mp4", ".gif")
MIN_SCORE = 0.3  # joints below it are guesses (a mediapipe joint outside the frame scores ~0.1)
BOX_RGB = (0, 0, 0)  # caption background
TEXT_RGB = (255, 255, 255)


@dataclasses.dataclass(frozen=True)
class Caption:
    """What was predicted for frames [start, end): the top-5 of the whole input and/or of each track."""

    start: int
    end: int
    top5: Sequence[Mapping[str, Any]] | None = None
    tracks: Mapping[int, Sequence[Mapping[str, Any]]] | None = None  # track id -> top-5 (per-person prediction)


def check_output(path: str | os.PathLike) -> str:
    """The output's extension ('.mp4' or '.gif'), or a RenderError naming the file."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in OUTPUT_TYPES:
        raise RenderError(f"{os.fspath(path)}: unknown output type {ext or '(none)'!r}; expected .mp4 or .gif")
    return ext


def caption_per_frame(captions: Sequence[Caption], total: int) -> list[int | None]:
    """For each of `total` frames, the index of the caption whose window covers it (nearest centre first, then the
    earlier window), or None where no window does."""
    out: list[int | None] = []
    for t in range(total):
        best: tuple[float, int] | None = None
        for i, c in enumerate(captions):
            if c.start <= t < c.end:
                key = (abs((c.start + c.end - 1) / 2 - t), i)
                best = key if best is None or key < best else best
        out.append(None if best is None else best[1])
    return out


def top1_text(top5: Sequence[Mapping[str, Any]] | None) -> str | None:
    """'label 87%' of a top-5 list, or None."""
    if not top5:
        return None
    return f"{top5[0]['label']} {top5[0]['prob']:.0%}"


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


TRACK_RGB = tuple(hex_to_rgb(c) for c in visualize.COLORS)


@dataclasses.dataclass(frozen=True)
class Style:
    """Line widths and text size scaled to the frame (the reference: 3 px lines on a 360-pixel-high frame)."""

    thickness: int
    radius: int
    font_scale: float
    text_thickness: int

    @classmethod
    def for_frame(cls, height: int, width: int) -> Style:
        scale = min(height, width) / 360.0
        thickness = max(2, round(3 * scale))
        return cls(thickness, thickness + 1, 0.6 * scale, max(1, round(scale)))


def put_text(img: np.ndarray, text: str, x: int, y: int, style: Style, box_rgb=BOX_RGB) -> None:
    """White `text` on a filled box of colour `box_rgb` whose top-left corner is (x, y), kept inside the frame."""
    cv2 = import_cv2()
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, style.font_scale, style.text_thickness)
    pad = max(2, style.text_thickness * 2)
    x = int(min(max(x, 0), max(0, img.shape[1] - w - 2 * pad)))
    y = int(min(max(y, 0), max(0, img.shape[0] - h - base - 2 * pad)))
    cv2.rectangle(img, (x, y), (x + w + 2 * pad, y + h + base + 2 * pad), box_rgb, thickness=-1)
    cv2.putText(
        img, text, (x + pad, y + pad + h), cv2.FONT_HERSHEY_SIMPLEX, style.font_scale, TEXT_RGB, style.text_thickness,
        cv2.LINE_AA,
    )  # fmt: skip


def draw_person(
    img: np.ndarray, pts: np.ndarray, visible: np.ndarray, edges, rgb, style: Style, label: str | None
) -> None:
    """One person's visible bones and joints (pts (V, 2) pixels, visible (V,)) and its label above its top joint."""
    cv2 = import_cv2()
    p = np.rint(pts).astype(np.int32)
    for i, j in edges:
        if visible[i] and visible[j]:
            cv2.line(img, tuple(map(int, p[i])), tuple(map(int, p[j])), rgb, style.thickness, cv2.LINE_AA)
    for v in np.flatnonzero(visible):
        cv2.circle(img, tuple(map(int, p[v])), style.radius, rgb, -1, cv2.LINE_AA)
    if label and visible.any():
        seen = p[visible]
        top = int(seen[:, 1].min())
        put_text(img, label, int(seen[:, 0].min()), top - 2 * style.radius - int(28 * style.font_scale), style, rgb)


def draw_frame(
    rgb: np.ndarray,
    pts: np.ndarray,
    visible: np.ndarray,
    track_ids: Sequence[int],
    *,
    edges,
    caption: Caption | None,
    style: Style,
) -> np.ndarray:
    """A copy of frame `rgb` with the people pts (M, V, 2) / visible (M, V) of tracks `track_ids` and the caption."""
    img = np.array(rgb, dtype=np.uint8, copy=True, order="C")
    for m, track in enumerate(track_ids):
        label = f"#{track}"
        own = None if caption is None or caption.tracks is None else top1_text(caption.tracks.get(int(track)))
        label += f" {own}" if own else ""
        draw_person(img, pts[m], visible[m], edges, TRACK_RGB[int(track) % len(TRACK_RGB)], style, label)
    text = None if caption is None else top1_text(caption.top5)
    if text:
        put_text(img, text, style.radius, style.radius, style)
    return img


@contextlib.contextmanager
def open_writer(path: str | os.PathLike, fps: float, width: int, height: int) -> Iterator[Callable[[np.ndarray], None]]:
    """Yield `write(rgb)`, which appends one RGB uint8 (height, width, 3) frame; the file appears at `path` when
    the block ends without an exception (nothing is written otherwise)."""
    path = os.fspath(path)
    ext = check_output(path)
    if not fps or fps <= 0:
        raise RenderError(f"{path}: the frame rate must be positive, got {fps!r}")
    with atomic_path(path, suffix=f".tmp{ext}") as tmp:  # the writers pick the format from the suffix
        if ext == ".mp4":
            with _mp4_writer(tmp, path, fps, width, height) as write:
                yield write
        else:
            with _gif_writer(tmp, fps) as write:
                yield write


@contextlib.contextmanager
def _mp4_writer(tmp: str, path: str, fps: float, width: int, height: int):
    cv2 = import_cv2()
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (int(width), int(height)))
    if not writer.isOpened():
        raise RenderError(f"{path}: OpenCV cannot write an MP4 ('mp4v') video here; write a .gif instead")
    try:
        yield lambda rgb: writer.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


@contextlib.contextmanager
def _gif_writer(tmp: str, fps: float):
    from PIL import Image

    frames = []
    yield lambda rgb: frames.append(
        Image.fromarray(np.ascontiguousarray(rgb)).quantize(256, method=Image.Quantize.FASTOCTREE)
    )
    if frames:
        # GIF delays are in hundredths of a second
        frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=max(20, round(1000 / fps)), loop=0)


def write_annotated(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    anno: Mapping[str, Any],
    captions: Sequence[Caption],
    *,
    fps: float,
    min_score: float = MIN_SCORE,
    on_frame: Callable[[], None] | None = None,
) -> int:
    """Write the RGB `frames` with the people of annotation `anno` (keypoint (M, T, 17, 2) pixels, keypoint_score,
    track_ids) and the captions to `path` (.mp4 or .gif); returns the number of frames written."""
    path = os.fspath(path)
    check_output(path)
    lay = layouts.get("coco")
    pts, visible = visualize.prepare_points(anno["keypoint"], lay, anno.get("keypoint_score"), min_score, path)
    total = pts.shape[1]
    which = caption_per_frame(captions, total)
    track_ids = list(anno.get("track_ids", range(pts.shape[0])))
    count, write, style = 0, None, None
    with contextlib.ExitStack() as stack:
        for t, rgb in enumerate(frames):
            if write is None:
                height, width = rgb.shape[:2]
                style = Style.for_frame(height, width)
                write = stack.enter_context(open_writer(path, fps, width, height))
            if t < total:
                caption = None if which[t] is None else captions[which[t]]
                img = draw_frame(
                    rgb, pts[:, t], visible[:, t], track_ids, edges=lay.inward, caption=caption, style=style
                )
            else:  # frames past the annotation's end: drawn as they are
                img = np.asarray(rgb, np.uint8)
            write(img)
            count += 1
            if on_frame is not None:
                on_frame()
    if write is None:
        raise RenderError(f"{path}: no frame to write")
    return count


def captions_of(windows: Sequence[Any]) -> list[Caption]:
    """Captions from a video's predictions: `WindowPrediction`s (start, end, top5), or per-person ones (track,
    start, end, top5) grouped by window."""
    if windows and hasattr(windows[0], "track"):
        by_span: dict[tuple[int, int], dict[int, Any]] = {}
        for w in windows:
            by_span.setdefault((w.start, w.end), {})[int(w.track)] = w.top5
        return [Caption(s, e, None, tracks) for (s, e), tracks in by_span.items()]
    return [Caption(w.start, w.end, w.top5) for w in windows]


def write_video_result(path: str | os.PathLike, source, result, *, progress: bool = True) -> int:
    """`--video SOURCE --out PATH`: decode the video again and write it annotated with `result` (a
    `skeljax.predict.video.VideoPrediction`); returns the number of frames written."""
    check_output(path)
    anno = result.annotation
    with open_video(source) as video:
        fps = float(anno.get("fps") or video.info.fps)
        total = video.info.frame_count or None
        with tqdm(
            total=total, unit="frame", desc=f"drawing {os.fspath(path)}", file=sys.stderr, disable=not progress
        ) as bar:
            frames = (frame.rgb for frame in video)
            return write_annotated(
                path, frames, anno, captions_of(result.windows), fps=fps, on_frame=lambda: bar.update(1)
            )
