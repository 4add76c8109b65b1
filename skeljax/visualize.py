"""Render a skeleton sequence (with its predicted action as the title) to an animated GIF or an MP4.

    python -m skeljax.visualize --input FILE --out clip.gif [--checkpoint CKPT ...] [--sample FRAME_DIR] [--step 2]

FILE is what `skeljax.predict` reads (.skeleton, .npy (M, T, V, C), annotation .pkl, Kinetics-skeleton .json). With
--checkpoint the title is the predicted top-1 class and its probability (and the ground truth when the input names
it); several checkpoints are fused as in `skeljax.predict`.

Drawing: NTU-25 3D joints (camera space, metres) are shown as the Kinect saw them, u = -x, v = y; 2D joints (COCO-17
pixels, OpenPose-18 image fractions) with y pointing down. Joints whose coordinates are all zero (absent persons or
frames) are not drawn, nor 2D joints whose score is below `min_score`. Person 1 is blue, person 2 orange; edges are
the layout's graph edges (`skeljax.layouts`). One video frame per `step` input frames: ceil(T / step) frames in all.
"""

from __future__ import annotations

import math
import os
import sys
import textwrap
from collections.abc import Sequence

import numpy as np

from skeljax import cli, compilation_cache, layouts
from skeljax.io.atomic import atomic_path

# matplotlib's tab:blue, tab:orange, tab:green, tab:red as hex, which skeljax.predict.annotate also draws with
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
WRITERS = {".gif": "pillow", ".mp4": "ffmpeg"}


class RenderError(ValueError):
    """A skeleton that cannot be drawn or an output that cannot be written."""


def _get_layout(layout: layouts.LayoutArg, where: str) -> layouts.SkeletonLayout:
    try:
        return layouts.get(layout)
    except ValueError:
        raise RenderError(
            f"{where}: unknown layout {layout!r}; expected one of {sorted(layouts.BUILTIN)} or a SkeletonLayout"
        ) from None


def prepare_points(keypoint, lay: layouts.SkeletonLayout, keypoint_score, min_score: float, where: str):
    """-> points (M, T, V, 2) in plot coordinates (2D: as given) and a visibility mask (M, T, V): joints not all
    zero and, in 2D, scoring at least `min_score`."""
    layout = lay.name
    kp = np.asarray(keypoint, dtype=np.float64)
    if kp.ndim == 3:  # one person (T, V, C)
        kp = kp[None]
        keypoint_score = None if keypoint_score is None else np.asarray(keypoint_score)[None]
    v = lay.num_joints
    if kp.ndim != 4 or kp.shape[2] != v or kp.shape[0] < 1 or kp.shape[1] < 1:
        raise RenderError(f"{where}: expected keypoints (M, T, {v}, C) for layout {layout!r}, got {kp.shape}")
    kind = lay.kind
    if kind == "3d" and kp.shape[3] != 3:
        raise RenderError(f"{where}: layout {layout!r} needs x, y, z (C = 3), got C = {kp.shape[3]}")
    if kind == "2d" and kp.shape[3] not in (2, 3):
        raise RenderError(f"{where}: layout {layout!r} needs x, y (and optionally a score), got C = {kp.shape[3]}")
    if not np.isfinite(kp).all():
        raise RenderError(f"{where}: keypoints hold NaN or inf")
    visible = np.any(kp != 0, axis=-1)
    if kind == "3d":
        pts = np.stack([-kp[..., 0], kp[..., 1]], axis=-1)
    else:
        if keypoint_score is None and kp.shape[3] == 3:
            keypoint_score = kp[..., 2]
        pts = kp[..., :2]
        if keypoint_score is not None:
            score = np.asarray(keypoint_score, dtype=np.float64)
            if score.shape != kp.shape[:3]:
                raise RenderError(
                    f"{where}: keypoint_score shape {score.shape} does not match keypoints {kp.shape[:3]}"
                )
            visible &= score >= min_score
        visible &= np.any(pts != 0, axis=-1)
    return pts, visible


def _limits(pts: np.ndarray, visible: np.ndarray, flip_y: bool):
    """Fixed axis limits over the whole sequence, with a 10% margin and a square-ish frame."""
    if not visible.any():
        return (-1.0, 1.0), ((1.0, -1.0) if flip_y else (-1.0, 1.0))
    p = pts[visible]
    lo, hi = p.min(axis=0), p.max(axis=0)
    center, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.1, 1e-3)
    xlim = (center[0] - half, center[0] + half)
    ylim = (center[1] - half, center[1] + half)
    return xlim, (ylim[::-1] if flip_y else ylim)


TITLE_PT = 9


def title_lines(title: str | None, size: float) -> list[str]:
    """The title wrapped to the figure's width (about 0.6 em per character at TITLE_PT points)."""
    width = max(16, int(size * 72 / (0.6 * TITLE_PT)) - 2)
    out: list[str] = []
    for part in (title or "").splitlines():
        out += textwrap.wrap(part, width) or [""]
    return out


def render_skeleton(
    keypoint,
    path: str | os.PathLike,
    *,
    layout: layouts.LayoutArg,
    title: str | None = None,
    fps: int = 15,
    keypoint_score=None,
    step: int = 1,
    min_score: float = 0.1,
    size: float = 4.0,
    dpi: int = 80,
) -> int:
    """Write an animation of keypoint (M, T, V, C) or (T, V, C) to `path` (.gif or .mp4); returns the frame count.

    layout: a `skeljax.layouts` layout or the name of a built-in ('nturgb+d' 3D, 'coco' 2D, ...).
    keypoint_score (M, T, V): 2D detection scores; a third channel of 2D keypoints is taken as the score.
    step: draw every step-th frame, so the animation has ceil(T / step) frames.
    """
    from matplotlib import animation

    path = os.fspath(path)
    ext = _checked_output(path, step, fps)
    lay = _get_layout(layout, path)
    pts, visible = prepare_points(keypoint, lay, keypoint_score, min_score, path)
    M, T = pts.shape[:2]
    fig, ax, counter = _figure(title, size, dpi, *_limits(pts, visible, lay.kind == "2d"))
    lines = [[ax.plot([], [], "-", color=COLORS[m % len(COLORS)], lw=2)[0] for _ in lay.inward] for m in range(M)]
    dots = [ax.plot([], [], "o", color=COLORS[m % len(COLORS)], ms=3)[0] for m in range(M)]

    frames = range(0, T, step)
    writer = animation.writers[WRITERS[ext]](fps=fps)
    with atomic_path(path, suffix=f".tmp{ext}") as tmp, writer.saving(fig, tmp, dpi):  # the writer reads the suffix
        for t in frames:
            counter.set_text(f"frame {t + 1}/{T}")
            for m in range(M):
                _draw_person(dots[m], lines[m], lay.inward, pts[m, t], visible[m, t])
            writer.grab_frame()
    return len(frames)


def _checked_output(path: str, step, fps) -> str:
    """The output's extension, once the path, the frame step and the rate are known to work."""
    from matplotlib import animation

    ext = os.path.splitext(path)[1].lower()
    if ext not in WRITERS:
        raise RenderError(f"{path}: unknown output type {ext or '(none)'!r}; expected .gif or .mp4")
    if ext == ".mp4" and not animation.writers.is_available("ffmpeg"):
        raise RenderError(
            f"{path}: writing MP4 needs the ffmpeg program on PATH (e.g. apt-get install ffmpeg); write a .gif instead"
        )
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise RenderError(f"step must be a positive integer, got {step!r}")
    if not fps or fps <= 0:
        raise RenderError(f"fps must be positive, got {fps!r}")
    return ext


def _figure(title: str | None, size: float, dpi: int, xlim, ylim):
    """(figure, axes, frame counter): square axes without ticks below the wrapped title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size, size), dpi=dpi)
    FigureCanvasAgg(fig)
    head = title_lines(title, size)
    line_h = 1.3 * TITLE_PT / 72 / size  # one title line as a fraction of the figure height
    top = 0.985 - line_h * len(head) - (0.01 if head else 0)
    ax = fig.add_axes((0.02, 0.02, 0.96, top - 0.02))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if head:
        fig.text(0.5, 0.985, "\n".join(head), ha="center", va="top", fontsize=TITLE_PT)
    # inside the axes, bottom right: it never collides with the title however many lines that has
    counter = ax.text(0.98, 0.02, "", transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="0.4")
    return fig, ax, counter


def _draw_person(dots, lines, edges, p, vis) -> None:
    """One person's visible joints and the edges whose two ends are visible, in one frame."""
    dots.set_data(p[vis, 0], p[vis, 1])
    for line, (i, j) in zip(lines, edges):
        if vis[i] and vis[j]:
            line.set_data([p[i, 0], p[j, 0]], [p[i, 1], p[j, 1]])
        else:
            line.set_data([], [])


def _layout_of(arr_shape, where: str) -> layouts.SkeletonLayout:
    layout = layouts.by_joints(arr_shape[2]) if len(arr_shape) == 4 else None
    if layout is not None:
        return layout
    raise RenderError(
        f"{where}: cannot tell the layout of an array {tuple(arr_shape)}; expected (M, T, 25, 3) or (M, T, 17, 3)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("skeljax-visualize", __doc__)
    p.add_argument(
        "--input", required=True, help=".skeleton, .npy (M, T, V, C), annotation .pkl or Kinetics-skeleton .json"
    )
    p.add_argument("--out", required=True, help="output .gif (or .mp4 when ffmpeg is installed)")
    p.add_argument("--checkpoint", action="append", help="predict with this checkpoint (repeat to fuse streams)")
    p.add_argument("--feat", action="append", choices=("j", "b", "jm", "bm"), help="as in skeljax.predict")
    p.add_argument("--labels", help="class names, as in skeljax.predict")
    p.add_argument("--sample", help="frame_dir of the sample to draw from an annotation pickle (default: the first)")
    p.add_argument("--title", help="title (default: the prediction, or the sample name)")
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--step", type=int, default=1, help="draw every step-th frame")
    compilation_cache.add_flag(p)
    args = cli.parse(p, argv)
    compilation_cache.setup_for_command(args.no_cache)
    return cli.run(lambda: _render(p, args))


def _render(p, args) -> None:
    """Reads the input, predicts its title when asked to, and writes the animation."""
    from skeljax.predict.inputs import read_input
    from skeljax.predict.predictor import load_predictor, predict

    preds, layout = None, "nturgb+d"
    if args.checkpoint:
        n = len(args.checkpoint)
        feats = args.feat * n if args.feat and len(args.feat) == 1 else (args.feat or [None] * n)
        if len(feats) != n:
            p.error(f"--feat given {len(feats)} times for {n} checkpoints")
        preds = [load_predictor(c, feat=f) for c, f in zip(args.checkpoint, feats)]
        layout = preds[0].layout
    elif args.input.lower().endswith(".json"):  # Kinetics-skeleton: always OpenPose-18
        layout = "openpose"
    elif args.input.lower().endswith(".npy") and os.path.isfile(args.input):
        layout = _layout_of(np.load(args.input, mmap_mode="r", allow_pickle=False).shape, args.input)
    anno = read_input(args.input, layout=layout, sample=args.sample)[0]
    if preds is None:  # pickles: the sample's own joint count decides
        layout = _layout_of(anno["keypoint"].shape, args.input)
    title = args.title or str(anno.get("frame_dir", ""))
    if preds is not None and args.title is None:
        pred = predict(preds, anno, labels=args.labels)
        top = pred.top_k(0, 1)[0]
        title = f"{title}: {top['label']} ({top['prob']:.0%})"
        if pred.labels[0] is not None and pred.labels[0] < len(pred.class_names):
            title += f"\nground truth: {pred.class_names[pred.labels[0]]}"
    n = render_skeleton(
        anno["keypoint"],
        args.out,
        layout=layout,
        title=title,
        fps=args.fps,
        keypoint_score=anno.get("keypoint_score"),
        step=args.step,
    )
    print(f"wrote {args.out}: {n} frames at {args.fps} fps ({math.ceil(n / args.fps)} s)")


if __name__ == "__main__":
    sys.exit(main())
