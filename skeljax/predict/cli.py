"""Predict actions for your own skeletons with one checkpoint or a multi-stream fusion of several.

    python -m skeljax.predict --checkpoint CKPT --input FILE [--json] [--feat j|b|jm|bm]
        [--labels ntu60|ntu120|synthetic|FILE.txt] [--sample FRAME_DIR]
        [--recipe pyskl|vanilla|mmaction0x|stgcn_original]
    python -m skeljax.predict --checkpoint J_DIR --checkpoint B_DIR --input FILE     # J+B fusion (1:1)
    python -m skeljax.predict --checkpoint CKPT --input LONG.npy --window 100 --stride 50   # one line per window

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
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from skeljax import cli
from skeljax.data import pose_estimators
from skeljax.data.pipelines import RECIPES
from skeljax.data.transforms import FEATS
from skeljax.predict.predictor import format_json, format_text, predict, report_tracks
from skeljax.predict.windows import format_windows, predict_windows


def build_parser():
    """The command line of skeljax-predict; a new input mode adds its flags here and its branch in `input_mode`."""
    p = cli.parser("skeljax-predict", __doc__)
    p.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        help="skeljax model directory or .pth; repeat for multi-stream fusion",
    )
    p.add_argument(
        "--input",
        required=True,
        help=".skeleton, .npy (M, T, V, C), annotation .pkl, a .json (MMPose, OpenPose, Kinetics-skeleton) or an "
        "OpenPose --write_json folder",
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
    p.add_argument("--json", action="store_true", help='JSON Lines output, one {"top5": [...]} per sample')
    p.add_argument("--trusted", action="store_true", help="allow full unpickling of a .pth (runs code in the file)")
    p.add_argument(
        "--window",
        type=int,
        metavar="T",
        help="predict each window of T frames of one long sequence: one line per window with its frame range "
        '[start, end), end exclusive (with --json: {"start", "end", "top5"})',
    )
    p.add_argument("--stride", type=int, metavar="S", help="frames between window starts (default: T, no overlap)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    args = cli.parse(p, argv)
    check_args(p, args)
    run = MODES[input_mode(args)]
    return cli.run(lambda: run(args))


def check_args(p, args) -> None:
    """Flag combinations argparse cannot check (exit status 2); --feat / --recipe given once apply to every stream."""
    if args.stride is not None and args.window is None:
        p.error("--stride needs --window")
    n = len(args.checkpoint)
    for name in ("feat", "recipe"):
        value = getattr(args, name)
        if value is not None and len(value) not in (1, n):
            p.error(f"--{name} given {len(value)} times for {n} checkpoints (give it once or once per checkpoint)")
        if value is not None and len(value) == 1:
            setattr(args, name, value * n)


def input_mode(args) -> str:
    """Which prediction the flags ask for: a key of `MODES`."""
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


MODES: dict[str, Callable[..., None]] = {"files": _predict_files, "windows": _predict_windows}


if __name__ == "__main__":
    sys.exit(main())
