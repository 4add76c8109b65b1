"""Pose-estimator output as skeljax input: MMPose's saved predictions and OpenPose's per-frame JSON files.

Both readers return the annotation dict `skeljax.predict` builds from a `.npy` array (`keypoint` (M, T, V, 2),
`keypoint_score` (M, T, V), `img_shape`, `total_frames`, `frame_dir`), plus `track_ids` (the kept tracks) and
`num_tracks`, so the test pipelines are shared.

MMPose: `demo/topdown_demo_with_mmdet.py --save-predictions` writes `{"meta_info": {...}, "instance_info":
[{"frame_id": i, "instances": [...]}, ...]}` (frame ids from 1); `MMPoseInferencer(...)(video, pred_out_dir=DIR)`
writes the bare list of frames (frame ids from 0). Frame `t` of the result is the entry with frame id `first + t`.
Each instance holds `keypoints` [[x, y], ...] (COCO-17, pixels), `keypoint_scores` and usually `bbox`
[[x1, y1, x2, y2]] (`mmpose/structures/utils.py: split_instances`). Only COCO-17 models are taken (the
`coco` layout); MMPose has no neck joint for OpenPose-18.

OpenPose: a folder of `*_keypoints.json` files (`--write_json DIR`), one per frame in the order of the number in their
names, each `{"people": [{"pose_keypoints_2d": [x0, y0, c0, x1, ...]}, ...]}`; 25 joints (BODY_25) or 18 (COCO-18),
told apart by the count. Joints are picked by name for the model's layout (OpenPose-18 indices: 0 nose, 1 neck,
2-4 right shoulder/elbow/wrist, 5-7 left, 8-10 right hip/knee/ankle, 11-13 left, 14/15 right/left eye, 16/17
right/left ear; BODY_25 inserts MidHip at 8, so hips to ears move up by one, and adds six foot joints 19-24):

| COCO-17 joint      | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 |
|--------------------|---|---|---|---|---|---|---|---|---|---|----|----|----|----|----|----|----|
| from COCO-18 joint | 0 |15 |14 |17 |16 | 5 | 2 | 6 | 3 | 7 | 4  | 11 | 8  | 12 | 9  | 13 | 10 |
| from BODY_25 joint | 0 |16 |15 |18 |17 | 5 | 2 | 6 | 3 | 7 | 4  | 12 | 9  | 13 | 10 | 14 | 11 |

OpenPose-18 from COCO-18 is the identity; from BODY_25 it is joints 0-7 then 9-18 (MidHip and the feet dropped).
Other layouts (NTU-25 3D, custom) are refused. Missing joints (c = 0) keep score 0, which the 2D normalisation zeroes.

Image size: neither tool records it, so it is `img_shape` when given, else `meta_info["img_shape"]` (H, W) when an
MMPose file carries one, else 1080 x 1920 (as for `.npy` input). COCO-17 keeps pixels with that `img_shape`, as
PYSKL's PreNormalize2D expects; OpenPose-18 is stored as image fractions with `img_shape` (1, 1), as the ST-GCN demo
feeds it (`processor/demo_offline.py` of st-gcn) and as `skeljax.data.kinetics` reads Kinetics-skeleton.

Tracking: people are linked across frames by box IoU, matched greedily (the pair with the highest IoU first, at least
`IOU_MIN`) against each track's last box; a detection left over starts a new track. Boxes rather than keypoint
distances because MMPose gives the detector's box and a box overlap needs no scale (a keypoint distance would need
one per person size); OpenPose boxes span the visible joints. A track that misses frames keeps its last box and is
picked up again. The `max_persons` tracks with the highest summed keypoint score are kept (PYSKL's two-person input),
in the order they first appear, so a file whose people keep their order gives the arrays of the equivalent `.npy`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skeljax import layouts

DEFAULT_IMG_SHAPE = (1080, 1920)
MAX_PERSONS = 2
IOU_MIN = 0.3  # below it, a detection starts a new track

# Index tables: entry j is the source joint that becomes the layout's joint j.
COCO17_FROM_COCO18 = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)
COCO17_FROM_BODY25 = (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)
OPENPOSE18_FROM_COCO18 = tuple(range(18))
OPENPOSE18_FROM_BODY25 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
OPENPOSE_MAPPINGS = {
    ("COCO-18", "coco"): COCO17_FROM_COCO18,
    ("BODY_25", "coco"): COCO17_FROM_BODY25,
    ("COCO-18", "openpose"): OPENPOSE18_FROM_COCO18,
    ("BODY_25", "openpose"): OPENPOSE18_FROM_BODY25,
}
OPENPOSE_MODELS = {25: "BODY_25", 18: "COCO-18"}
_FRAME_NUMBER = re.compile(r"(\d+)_keypoints\.json$")


class PoseEstimatorError(ValueError):
    """A pose-estimator file that cannot be read or does not fit the model; the message names the file."""

    def __init__(self, path, problem: str):
        self.path, self.problem = os.fspath(path), problem
        super().__init__(f"{self.path}: {problem}")


@dataclasses.dataclass(frozen=True)
class Person:
    """One detected person in one frame: joints (V, 2) and scores (V,) in the model's layout, box (x1, y1, x2, y2)."""

    keypoints: np.ndarray
    scores: np.ndarray
    box: tuple[float, float, float, float]


def load_json(path: str | os.PathLike) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise PoseEstimatorError(path, f"cannot read as JSON ({e})") from e


def json_format(obj: Any) -> str | None:
    """'mmpose', 'openpose' (one frame), 'kinetics' (Kinetics-skeleton) or None for a loaded JSON document."""
    if isinstance(obj, Mapping):
        if "instance_info" in obj:
            return "mmpose"
        if "people" in obj:
            return "openpose"
        if "data" in obj:
            return "kinetics"
    elif isinstance(obj, list) and obj and all(isinstance(f, Mapping) and "instances" in f for f in obj):
        return "mmpose"
    return None


# ----------------------------------------------------------------------------------------------------------------
# Tracking.
# ----------------------------------------------------------------------------------------------------------------


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes; 0 when either has no area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class IouTracker:
    """Online box-IoU tracking: `update(boxes)` gives each of a frame's boxes a track id (0, 1, ... in order of
    first appearance), matched greedily against each track's last box, the pair with the highest IoU first."""

    def __init__(self, iou_min: float = IOU_MIN):
        self.iou_min = iou_min
        self.last_box: list[tuple[float, float, float, float]] = []  # per track id

    def update(self, boxes: Sequence[tuple[float, float, float, float]]) -> list[int]:
        """The track id of each box of one frame; a box matching no track starts a new one."""
        pairs = sorted(
            (-iou, k, d)
            for k, last in enumerate(self.last_box)
            for d, box in enumerate(boxes)
            if (iou := box_iou(last, box)) >= self.iou_min
        )
        matched_tracks, matched = set(), {}
        for _, k, d in pairs:  # the highest IoU first; ties: the older track, then the earlier detection
            if k not in matched_tracks and d not in matched:
                matched_tracks.add(k)
                matched[d] = k
        ids = []
        for d, box in enumerate(boxes):
            k = matched.get(d)
            if k is None:
                k = len(self.last_box)
                self.last_box.append(box)
            else:
                self.last_box[k] = box
            ids.append(k)
        return ids


def link_tracks(frames: Sequence[Sequence[Person]], iou_min: float = IOU_MIN) -> list[dict[int, Person]]:
    """Tracks (frame index -> Person), numbered in order of first appearance, by greedy box-IoU matching."""
    tracker = IouTracker(iou_min)
    tracks: list[dict[int, Person]] = []
    for t, people in enumerate(frames):
        for k, p in zip(tracker.update([p.box for p in people]), people):
            if k == len(tracks):
                tracks.append({})
            tracks[k][t] = p
    return tracks


def select_tracks(tracks: Sequence[Mapping[int, Person]], max_persons: int = MAX_PERSONS) -> list[int]:
    """The ids of the `max_persons` tracks with the highest summed keypoint score, in track order."""
    totals = [sum(float(p.scores.sum()) for p in tr.values()) for tr in tracks]
    best = sorted(range(len(tracks)), key=lambda k: (-totals[k], k))[:max_persons]
    return sorted(best)


def stack_tracks(
    tracks: Sequence[Mapping[int, Person]], keep: Sequence[int], total_frames: int, num_joints: int
) -> tuple[np.ndarray, np.ndarray]:
    """keypoint (len(keep), T, V, 2) and keypoint_score (len(keep), T, V) of tracks `keep`; absent frames stay zero."""
    kp = np.zeros((len(keep), total_frames, num_joints, 2), np.float32)
    score = np.zeros(kp.shape[:3], np.float32)
    for m, k in enumerate(keep):
        for t, p in tracks[k].items():
            kp[m, t], score[m, t] = p.keypoints, p.scores
    return kp, score


def build_annotation(
    frames: Sequence[Sequence[Person]],
    *,
    name: str,
    img_shape: Sequence[int],
    max_persons: int,
    where: str,
    num_joints: int,
) -> dict:
    """Link, select and stack people into an annotation dict (absent frames stay zero, as PYSKL pads)."""
    if isinstance(max_persons, bool) or not isinstance(max_persons, int) or max_persons < 1:
        raise PoseEstimatorError(where, f"max_persons must be a positive integer, got {max_persons!r}")
    tracks = link_tracks(frames)
    if not tracks:
        raise PoseEstimatorError(where, f"no person detected in any of its {len(frames)} frames")
    keep = select_tracks(tracks, max_persons)
    kp, score = stack_tracks(tracks, keep, len(frames), num_joints)
    return {
        "frame_dir": name,
        "keypoint": kp,
        "keypoint_score": score,
        "img_shape": tuple(int(s) for s in img_shape),
        "total_frames": len(frames),
        "track_ids": keep,
        "num_tracks": len(tracks),
    }


# ----------------------------------------------------------------------------------------------------------------
# Parsing.
# ----------------------------------------------------------------------------------------------------------------


def _numbers(value: Any, shape: tuple[int, ...], what: str, where: str) -> np.ndarray:
    """A finite float32 array of `shape` from a JSON list, or an error naming the file."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != shape:
        got = "not numbers" if arr is None else f"shape {arr.shape}"
        raise PoseEstimatorError(where, f"{what} must be numbers of shape {shape}, got {got}")
    if not np.isfinite(arr).all():
        raise PoseEstimatorError(where, f"{what} holds NaN or inf")
    return arr.astype(np.float32)


def _keypoint_box(kp: np.ndarray, score: np.ndarray) -> tuple[float, float, float, float] | None:
    """The box spanning the joints with a positive score (None: no visible joint)."""
    seen = kp[score > 0]
    if not len(seen):
        return None
    (x1, y1), (x2, y2) = seen.min(0), seen.max(0)
    return float(x1), float(y1), float(x2), float(y2)


def _target(layout: layouts.LayoutArg, source: str, where: str) -> str:
    """The built-in layout name ('coco' or 'openpose') a pose-estimator file can feed, or an error."""
    layout = layouts.get(layout)
    for name in ("coco", "openpose"):
        if layout == layouts.BUILTIN[name]:
            return name
    raise PoseEstimatorError(
        where,
        f"{source} keypoints map to COCO-17 or OpenPose-18 models only; the checkpoint takes "
        f"{layout.expected()} (layout {layout.name!r})",
    )


def _resolve_img_shape(img_shape, from_file, where: str) -> tuple[int, int]:
    shape = img_shape if img_shape is not None else from_file if from_file is not None else DEFAULT_IMG_SHAPE
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise PoseEstimatorError(where, f"img_shape must be (height, width), got {shape!r}") from None
    if h <= 0 or w <= 0:
        raise PoseEstimatorError(where, f"img_shape must be positive (height, width), got {shape!r}")
    return h, w


def _mmpose_person(inst: Any, where: str) -> Person:
    if not isinstance(inst, Mapping) or "keypoints" not in inst or "keypoint_scores" not in inst:
        raise PoseEstimatorError(where, "every instance needs 'keypoints' and 'keypoint_scores'")
    kp = _numbers(inst["keypoints"], (17, 2), "'keypoints' (COCO-17 [x, y] pairs)", where)
    score = _numbers(inst["keypoint_scores"], (17,), "'keypoint_scores'", where)
    box = None
    if inst.get("bbox") is not None:  # [[x1, y1, x2, y2]] (MMPose 1.x) or a flat box, maybe with its score
        try:
            flat = np.asarray(inst["bbox"], dtype=np.float64).ravel()[:4]
        except (TypeError, ValueError):
            flat = inst["bbox"]
        box = tuple(float(v) for v in _numbers(flat, (4,), "'bbox' ([[x1, y1, x2, y2]])", where))
    return Person(kp, score, box or _keypoint_box(kp, score) or (0.0, 0.0, 0.0, 0.0))


def read_mmpose(
    path: str | os.PathLike,
    layout: layouts.LayoutArg = "coco",
    *,
    img_shape: Sequence[int] | None = None,
    max_persons: int = MAX_PERSONS,
    obj: Any = None,
) -> dict:
    """MMPose's saved predictions for a video (demo dict or inferencer list) -> an annotation dict for `layout`."""
    where = os.fspath(path)
    if _target(layout, "MMPose's COCO-17", where) != "coco":
        raise PoseEstimatorError(
            where,
            "MMPose's COCO-17 keypoints have no neck joint, so they cannot feed an OpenPose-18 model "
            "(use a COCO-17 model, or OpenPose's own output)",
        )
    obj = load_json(path) if obj is None else obj
    meta = (obj.get("meta_info") or {}) if isinstance(obj, Mapping) else {}
    frames_in = obj.get("instance_info") if isinstance(obj, Mapping) else obj
    if not isinstance(frames_in, list) or not all(isinstance(f, Mapping) for f in frames_in):
        raise PoseEstimatorError(where, "'instance_info' must be a list of {'frame_id', 'instances'} frames")
    if not frames_in:
        raise PoseEstimatorError(where, "holds no frames")
    n_kp = meta.get("num_keypoints") if isinstance(meta, Mapping) else None
    if n_kp is not None and n_kp != 17:
        raise PoseEstimatorError(where, f"the pose model has {n_kp} keypoints; only COCO-17 models are supported")
    ids = [f.get("frame_id", i) for i, f in enumerate(frames_in)]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids) or len(set(ids)) != len(ids):
        raise PoseEstimatorError(where, "frame ids must be distinct integers")
    first = min(ids)
    frames: list[list[Person]] = [[] for _ in range(max(ids) - first + 1)]
    for fid, f in zip(ids, frames_in):
        instances = f.get("instances") or []
        if not isinstance(instances, list):
            raise PoseEstimatorError(where, f"frame {fid}: 'instances' must be a list")
        frames[fid - first] = [_mmpose_person(inst, f"{where}: frame {fid}") for inst in instances]
    shape = _resolve_img_shape(img_shape, meta.get("img_shape") if isinstance(meta, Mapping) else None, where)
    return build_annotation(
        frames, name=Path(where).stem, img_shape=shape, max_persons=max_persons, where=where, num_joints=17
    )


def _openpose_frame(obj: Any, where: str, target: str, img_shape: tuple[int, int]) -> tuple[str | None, list]:
    """(the file's OpenPose model or None when it lists nobody, its people in the target layout)."""
    people = obj.get("people") if isinstance(obj, Mapping) else None
    if not isinstance(people, list):
        raise PoseEstimatorError(where, "not an OpenPose keypoints file (expected {'people': [...]})")
    model, out = None, []
    for i, person in enumerate(people):
        flat = person.get("pose_keypoints_2d") if isinstance(person, Mapping) else None
        if not isinstance(flat, list) or len(flat) % 3 or len(flat) // 3 not in OPENPOSE_MODELS:
            n = len(flat) if isinstance(flat, list) else type(flat).__name__
            raise PoseEstimatorError(
                where,
                f"person {i}: 'pose_keypoints_2d' must hold 25 (BODY_25) or 18 (COCO-18) x, y, c triples, got {n}",
            )
        this = OPENPOSE_MODELS[len(flat) // 3]
        if model is not None and this != model:
            raise PoseEstimatorError(where, f"mixes {model} and {this} people")
        model = this
        arr = _numbers(flat, (len(flat),), f"person {i}: 'pose_keypoints_2d'", where).reshape(-1, 3)
        arr = arr[list(OPENPOSE_MAPPINGS[model, target])]
        kp, score = arr[:, :2], arr[:, 2]
        box = _keypoint_box(kp, score)
        if box is None:
            continue  # no visible joint: nothing to track
        if target == "openpose":  # image fractions, as the ST-GCN demo and Kinetics-skeleton hold them
            kp = kp / np.asarray(img_shape[::-1], np.float32)
        out.append(Person(kp.astype(np.float32), score, box))
    return model, out


def openpose_files(folder: str | os.PathLike) -> list[Path]:
    """The `*_keypoints.json` files of an OpenPose output folder, in frame order (the number in their names)."""
    files = sorted(Path(folder).glob("*_keypoints.json"))
    if not files:
        raise PoseEstimatorError(folder, "no OpenPose *_keypoints.json files in this folder")
    numbers = [_FRAME_NUMBER.search(f.name) for f in files]
    if all(numbers):
        files = [f for _, f in sorted(zip((int(m.group(1)) for m in numbers), files))]
    return files


def read_openpose(
    path: str | os.PathLike,
    layout: layouts.LayoutArg,
    *,
    img_shape: Sequence[int] | None = None,
    max_persons: int = MAX_PERSONS,
) -> dict:
    """An OpenPose output folder (or one `*_keypoints.json` frame) -> an annotation dict for `layout`."""
    where = os.fspath(path)
    target = _target(layout, "OpenPose's BODY_25 / COCO-18", where)
    files = openpose_files(path) if os.path.isdir(path) else [Path(path)]
    shape = _resolve_img_shape(img_shape, None, where)
    frames, seen = [], {}
    for f in files:
        model, people = _openpose_frame(load_json(f), str(f), target, shape)
        if model is not None:
            seen.setdefault(model, str(f))
        frames.append(people)
    if len(seen) > 1:
        raise PoseEstimatorError(
            where, "mixes BODY_25 and COCO-18 files: " + ", ".join(f"{m} ({f})" for m, f in seen.items())
        )
    name = Path(where).name if os.path.isdir(path) else Path(where).name.split(".")[0]
    num_joints = layouts.BUILTIN[target].num_joints
    anno = build_annotation(
        frames, name=name, img_shape=shape, max_persons=max_persons, where=where, num_joints=num_joints
    )
    if target == "openpose":
        anno["img_shape"] = (1, 1)  # the coordinates are image fractions
    return anno
