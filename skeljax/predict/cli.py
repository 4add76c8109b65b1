"""Predict actions for your own skeletons with one checkpoint or a multi-stream fusion of several.

    python -m skeljax.predict --checkpoint CKPT --input FILE [--json] [--feat j|b|jm|bm]
        [--labels ntu60|ntu120|synthetic|FILE.txt] [--sample FRAME_DIR]
        [--recipe pyskl|vanilla|mmaction0x|stgcn_original]
    python -m skeljax.predict --checkpoint J_DIR --checkpoint B_DIR --input FILE     # J+B fusion (1:1)
    python -m skeljax.predict --checkpoint CKPT --input LONG.npy --window 100 --stride 50   # one line per window
    python -m skeljax.predict --video clip.mp4 [--pose mediapipe-full] [--window 100 --stride 50]
        [--per-person] [--save-pose clip_pose.json] [--out annotated.mp4]               # from a video (docs/video.md)
    python -m skeljax.predict --stream 0 [--window 100] [--stride 15] [--per-person]    # live from a camera

CKPT is a skeljax model directory (`model_spec.json` + `state/`) or a released PyTorch `.pth` (PYSKL, MMAction2
0.x / 1.x). FILE is a raw NTU `.skeleton` file, a `.npy` array (M, T, V, C) (COCO-17 2D: C = 3 = x, y, score in
pixels of a 1080x1920 image unless --img-shape), or a PYSKL / MMAction2 0.x annotation pickle (`.pkl`: every sample,
or only --sample FRAME_DIR). Pose-estimator output is read too (skeljax.data.pose_estimators, docs/pose_estimators.md):
MMPose's saved predictions (`.json`, COCO-17) and OpenPose's `--write_json` folder (BODY_25 or COCO-18, mapped to the
model's joints); people are linked into tracks by box IoU and the --max-persons (2) tracks with the highest summed
keypoint score are kept, reported on stderr and, with --json, as "tracks". A model trained on a custom joint layout
(config.model.layout='custom') takes `.npy` inputs (M, T, V, C) with the layout's joints and channels (x, y, score for
2D layouts with scores); its model directory stores the layout (older `best/` / `final/` exports: the run's
`config.json` beside them gives it).

Each checkpoint's own test pipeline is applied: PYSKL (ST-GCN++, PYSKL ST-GCN) 10 clips x 100 frames with the mean of
the clips' softmax; vanilla ST-GCN (--recipe vanilla) PadTo 300; MMAction2 0.x one clip of 300 looped frames, whose
raw logits are shown through a softmax. The layout, modality (j, b, jm, bm), recipe, clip length, clips, averaging and
class names are read from the "test" settings of a model directory's `model_spec.json` (written by the trainer's
exports, skeljax-convert and `zoo get`; skeljax.predict.settings); --feat, --recipe and --labels replace
them (another recipe brings its own clip settings). Directories written before that key: from its flat keys (`feat`,
`recipe`, `clip_len`, `test_num_clips`, `test_average`, `class_names`; a conflicting flag is an error) or the
training run's `config.json` beside a `best/` or `final/` directory, else from the flags. Several checkpoints are fused as PYSKL does: a weighted sum of
the streams' probabilities (default weights 1:1, 2:2:1:1 for four streams); the printed probability is that sum
divided by the sum of the weights.

Output: the top-5 classes per sample. With --json, one line per sample, in input order (JSON Lines), each exactly
{"top5": [{"index": int, "label": str, "prob": float}, ...]}, and for a pose-estimator file also
"tracks": {"kept": [track ids], "found": int}.

Long recordings: --window T [--stride S] predicts windows of T frames S apart (default S = T) of one sequence, each
through the same test pipeline as a whole sample; windows start at 0, S, 2S, ... while T frames fit, and when frames
are left over a last window covers the final T frames (a sequence of at most T frames is one window). One line per
window with its frame range, end exclusive: `[start, end)  label prob | ...`, or with --json exactly
{"start": int, "end": int, "top5": [...]}. Python: `predict_windows(checkpoints, input, window=T, stride=S)`.

From a video: --video FILE decodes it (OpenCV), finds each frame's people with a pose backend (--pose
mediapipe-lite|mediapipe-full|mediapipe-heavy|rtmpose|rtmo or a .task / .onnx model file; default mediapipe-full,
fetched into the zoo cache), links them into tracks by box IoU, keeps the --max-persons tracks with the highest
summed keypoint score and predicts the COCO-17 keypoints in pixels of the video's own frame size, whole or per
--window/--stride, with --checkpoint (default zoo:stgcnpp_ntu60_xsub_2d_j; 2D COCO-17 models only). Output as for a
pose-estimator file (with --window, as for windows). --save-pose FILE also writes the tracked keypoints in MMPose's
format, which --input FILE reads back to the same prediction. --per-person predicts each kept track alone (the
second person zeroed): one line per track and window, with --json exactly {"track": int, "start": int, "end": int,
"top5": [...]}. Needs `pip install "skeljax[video]"` (mediapipe) or `"skeljax[rtm]"` (rtmlib). Python:
`skeljax.predict.video.predict_video(video, checkpoints)`. --out FILE (.mp4 or .gif) also writes the video with
the skeletons, track ids and the label of the window covering each frame drawn on it (skeljax.predict.annotate).

Live: --stream SOURCE (a camera index such as 0, a stream URL, or a video file played as if live) predicts the last
--window frames (default: the model's clip length) every --stride frames (default 15) as they come and prints one JSON
line per prediction, exactly {"frame": int, "time_s": float, "latency_ms": float, "top5": [...], "dropped": int}
(with --per-person "tracks": [{"track": int, "top5": [...]}, ...] in place of "top5"); frames are dropped, and
counted, when the machine falls behind; a file is played at its frame rate unless --no-realtime. It stops at the end
of the source or on Ctrl-C (a summary line on stderr; exit status 130 after Ctrl-C). Python:
`skeljax.predict.stream(source, checkpoint)`, a generator of the same dicts (skeljax.predict.live).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from skeljax import cli, compilation_cache
from skeljax.data import pose_estimators
from skeljax.data.pipelines import RECIPES
from skeljax.data.transforms import FEATS
from skeljax.pose.base import DEFAULT_POSE
from skeljax.predict.predictor import format_json, format_text, predict, report_tracks
from skeljax.predict.windows import format_windows, predict_windows


def build_parser():
    """The command line of skeljax-predict; a new input mode adds its flags here and its branch in `input_mode`."""
    p = cli.parser("skeljax-predict", __doc__)
    _add_model_arguments(p)
    _add_input_arguments(p)
    _add_video_arguments(p)
    _add_output_arguments(p)
    add_live_arguments(p)
    compilation_cache.add_flag(p)
    return p


def _add_model_arguments(p) -> None:
    """Which checkpoints, and their test settings where a checkpoint does not store them."""
    p.add_argument(
        "--checkpoint",
        action="append",
        help="skeljax model directory or .pth; repeat for multi-stream fusion (with --video, default "
        "zoo:stgcnpp_ntu60_xsub_2d_j)",
    )
    p.add_argument(
        "--feat",
        action="append",
        choices=FEATS,
        help="modality when the checkpoint does not store it (default j); once, or once per checkpoint",
    )
    p.add_argument(
        "--recipe",
        action="append",
        choices=RECIPES,
        help="test pipeline when the checkpoint does not store it (default: pyskl, mmaction0x for "
        "MMAction2 0.x models, stgcn_original for the original ST-GCN's); once, or once per checkpoint",
    )
    p.add_argument("--weights", nargs="+", type=float, help="fusion weights, one per checkpoint")
    p.add_argument(
        "--labels",
        help="class names: ntu60, ntu120, synthetic or a .txt file with one name per line "
        "(default: NTU-60/120 by the number of classes)",
    )
    p.add_argument("--trusted", action="store_true", help="allow full unpickling of a .pth (runs code in the file)")


def _add_input_arguments(p) -> None:
    """Skeleton and pose-estimator files."""
    p.add_argument(
        "--input",
        help=".skeleton, .npy (M, T, V, C), annotation .pkl, a .json (MMPose, OpenPose, Kinetics-skeleton) or an "
        "OpenPose --write_json folder",
    )
    p.add_argument("--sample", help="only this frame_dir of an annotation pickle")
    p.add_argument(
        "--img-shape",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        help="image size of 2D keypoints in pixels (.npy, MMPose, OpenPose; default: the file's, else 1080 1920)",
    )
    p.add_argument(
        "--max-persons",
        type=int,
        default=pose_estimators.MAX_PERSONS,
        help="tracks kept from an MMPose / OpenPose file, those with the highest summed keypoint score "
        f"(default {pose_estimators.MAX_PERSONS}, PYSKL's two-person input)",
    )


def _add_video_arguments(p) -> None:
    """A video file: pose backend, saved poses, one prediction per person."""
    p.add_argument("--video", help="a video file: estimate poses on every frame, then predict (docs/video.md)")
    p.add_argument(
        "--pose",
        default=DEFAULT_POSE,
        help="pose backend for --video: mediapipe-lite, mediapipe-full, mediapipe-heavy, rtmpose, rtmo, or a "
        f".task (mediapipe) / .onnx (RTMO) model file (default {DEFAULT_POSE})",
    )
    p.add_argument(
        "--save-pose",
        metavar="FILE.json",
        help="with --video: also write the tracked keypoints in MMPose's format (read back by --input)",
    )
    p.add_argument(
        "--per-person",
        action="store_true",
        help='with --video: predict each kept track alone (one line per track and window; --json: {"track", ...})',
    )


def _add_output_arguments(p) -> None:
    """Output format and sliding windows."""
    p.add_argument("--json", action="store_true", help='JSON Lines output, one {"top5": [...]} per sample')
    p.add_argument(
        "--window",
        type=int,
        metavar="T",
        help="predict each window of T frames of one long sequence: one line per window with its frame range "
        '[start, end), end exclusive (with --json: {"start", "end", "top5"})',
    )
    p.add_argument("--stride", type=int, metavar="S", help="frames between window starts (default: T, no overlap)")


def add_live_arguments(p) -> None:
    """--stream and --realtime (skeljax.predict.live), --out (skeljax.predict.annotate)."""
    from skeljax.predict.live import DEFAULT_STRIDE

    p.add_argument(
        "--stream",
        metavar="SOURCE",
        help="predict live from a camera index (0), a stream URL or a video file played as if live: one JSON line "
        '{"frame", "time_s", "latency_ms", "top5", "dropped"} per prediction, every --stride frames '
        f"(default {DEFAULT_STRIDE}) over the last --window frames (default: the model's clip length)",
    )
    p.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="--stream of a file: play it at its frame rate, dropping frames when the machine falls behind "
        "(default); --no-realtime: as fast as it goes, no frame dropped (cameras and URLs are always real time)",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="with --video: also write the video with the skeletons, track ids and predicted labels drawn on it "
        "(.mp4 or .gif)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    args = cli.parse(p, argv)
    check_args(p, args)
    compilation_cache.setup_for_command(args.no_cache)  # a second prediction loads its programs from disk
    run = MODES[input_mode(args)]
    return cli.run(lambda: run(args))


def check_args(p, args) -> None:
    """Flag combinations argparse cannot check (exit status 2); --feat / --recipe given once apply to every stream."""
    if args.stride is not None and args.window is None and args.stream is None:
        p.error("--stride needs --window")
    check_sources(p, args)
    n = len(args.checkpoint or [None])
    for name in ("feat", "recipe"):
        value = getattr(args, name)
        if value is not None and len(value) not in (1, n):
            p.error(f"--{name} given {len(value)} times for {n} checkpoints (give it once or once per checkpoint)")
        if value is not None and len(value) == 1:
            setattr(args, name, value * n)


def check_sources(p, args) -> None:
    """Exactly one input source (`SOURCE_FLAGS`); the video flags only with --video; a checkpoint unless a video's
    default applies."""
    given = [f"--{name.replace('_', '-')}" for name in SOURCE_FLAGS if getattr(args, name, None) is not None]
    if len(given) != 1:
        wanted = ", ".join(f"--{name.replace('_', '-')}" for name in SOURCE_FLAGS)
        p.error(f"give one of {wanted}" + (f", not {' and '.join(given)}" if given else ""))
    video, stream = args.video is not None, args.stream is not None
    for flag, value in (("--save-pose", args.save_pose), ("--out", args.out)):
        if value and not video:
            p.error(f"{flag} needs --video")
    if args.per_person and not (video or stream):
        p.error("--per-person needs --video or --stream")
    if args.out and not args.out.lower().endswith((".mp4", ".gif")):
        p.error(f"--out {args.out}: the annotated video is written as .mp4 or .gif")
    if (video or stream) and args.img_shape:
        p.error("--img-shape does not apply to --video or --stream (their frames have their own size)")
    if args.checkpoint is None and not (video or stream):
        p.error("--checkpoint is required (it defaults to a zoo model only with --video and --stream)")


def input_mode(args) -> str:
    """Which prediction the flags ask for: a key of `MODES`."""
    if args.video is not None:
        return "video"
    if args.stream is not None:
        return "stream"
    return "windows" if args.window is not None else "files"


def _predict_files(args) -> None:
    """Top-5 per sample of the input (fused over the checkpoints), as text or JSON Lines."""
    pred = predict(
        args.checkpoint,
        args.input,
        feats=args.feat,
        weights=args.weights,
        recipes=args.recipe,
        sample=args.sample,
        labels=args.labels,
        img_shape=tuple(args.img_shape) if args.img_shape else None,
        trusted=args.trusted,
        max_persons=args.max_persons,
    )
    report_tracks(pred)
    print(format_json(pred) if args.json else format_text(pred))


def _predict_windows(args) -> None:
    """One line per window of one long sequence."""
    windows = predict_windows(
        args.checkpoint,
        args.input,
        window=args.window,
        stride=args.stride,
        sample=args.sample,
        img_shape=tuple(args.img_shape) if args.img_shape else None,
        max_persons=getattr(args, "max_persons", None),
        feats=args.feat,
        recipes=args.recipe,
        weights=args.weights,
        labels=args.labels,
        trusted=args.trusted,
    )
    print(format_windows(windows, args.json))


def _predict_video(args) -> None:
    """Poses from a video, then its prediction: whole, per window, or per track (skeljax.predict.video)."""
    from skeljax.predict import video

    result = video.predict_video(
        args.video,
        args.checkpoint,
        pose=args.pose,
        max_persons=args.max_persons,
        window=args.window,
        stride=args.stride,
        per_person=args.per_person,
        save_pose_to=args.save_pose,
        feats=args.feat,
        recipes=args.recipe,
        weights=args.weights,
        labels=args.labels,
        trusted=args.trusted,
    )
    video.report_video_tracks(result)
    print(video.format_video(result, args.json, whole=args.window is None))
    if args.out is not None:
        from skeljax.predict.annotate import write_video_result

        n = write_video_result(args.out, args.video, result)
        print(f"wrote {args.out}: {n} frames", file=sys.stderr)


def _predict_stream(args) -> int:
    """One JSON line per live prediction; 0 at the end of the source, 130 on Ctrl-C (skeljax.predict.live)."""
    from skeljax.predict.live import run_cli

    return run_cli(args)


SOURCE_FLAGS = ("input", "video", "stream")  # exactly one is given
MODES: dict[str, Callable[..., int | None]] = {
    "files": _predict_files,
    "windows": _predict_windows,
    "video": _predict_video,
    "stream": _predict_stream,
}


if __name__ == "__main__":
    sys.exit(main())
