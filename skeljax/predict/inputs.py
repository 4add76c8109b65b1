"""Input readers: a file, an array or an annotation dict -> the annotation dicts a model's test pipeline takes.

Files: a raw NTU `.skeleton` (converted as the checkpoint's recipe converts them), a `.npy` array (M, T, V, C), a PYSKL
/ MMAction2 0.x annotation pickle, a `.json` (MMPose's saved predictions, an OpenPose frame, a Kinetics-skeleton
video) or an OpenPose `--write_json` folder (skeljax.data.pose_estimators). Every reader fails with one
`PredictError` naming the file and the problem.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from skeljax import layouts
from skeljax.data import pose_estimators
from skeljax.data.annotations import load_annotations
from skeljax.data.ntu_meta import parse_ntu_name
from skeljax.predict.errors import PredictError

INPUT_EXTENSIONS = (".skeleton", ".npy", ".pkl", ".pickle", ".json")
DEFAULT_IMG_SHAPE = pose_estimators.DEFAULT_IMG_SHAPE  # (H, W) of 2D pixels when neither the flag nor the file says


def check_sample(
    sample: Mapping[str, Any], layout: layouts.LayoutArg, where: str, checkpoint: str = "the checkpoint"
) -> None:
    """Clear error naming the file when a sample's joints/channels do not fit the checkpoint's layout."""
    kp = sample.get("keypoint")
    name = sample.get("frame_dir", "?")
    if not isinstance(kp, np.ndarray) or kp.ndim != 4:
        raise PredictError(
            f"{where}: sample {name}: 'keypoint' must be an array (M, T, V, C), got "
            f"{getattr(kp, 'shape', type(kp).__name__)}"
        )
    layout = layouts.get(layout)
    v, c = layout.num_joints, layout.keypoint_channels
    if kp.shape[2:] != (v, c):
        raise PredictError(
            f"{where}: sample {name}: expected {v} joints x {c} channels for {checkpoint} (layout "
            f"{layout.name!r}), got {kp.shape[2]} x {kp.shape[3]}"
        )
    if layout.score and "keypoint_score" not in sample:
        raise PredictError(f"{where}: sample {name}: layout {layout.name!r} needs keypoint_score (M, T, V)")


def _read_skeleton(path: str, conversion: str) -> dict:
    from skeljax.data import ntu_raw

    frames = ntu_raw.parse_skeleton_file(path)
    if conversion == "mmaction0x":
        kp = ntu_raw.mmaction0x_keypoints(frames, path)
    elif conversion == "original":  # long recordings are left whole: --window cuts them into 300-frame inputs
        kp = ntu_raw.original_keypoints(frames, path, max_frames=None)
    else:
        kp = ntu_raw.pyskl_keypoints(ntu_raw.track_bodies(frames), path).astype(np.float16)
    name = Path(path).name.split(".")[0]
    anno = {"frame_dir": name, "keypoint": kp, "total_frames": kp.shape[1]}
    try:
        anno["label"] = parse_ntu_name(name)["action"] - 1
    except ValueError:
        pass  # not an NTU file name: no ground truth
    return anno


def _read_npy(path: str, layout: layouts.LayoutArg, img_shape) -> dict:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise PredictError(f"{path}: cannot read as a .npy array ({e})") from e
    return array_annotation(arr, Path(path).stem, layout, path, img_shape)


def array_annotation(arr: np.ndarray, name: str, layout: layouts.LayoutArg, where: str, img_shape=(1080, 1920)) -> dict:
    """An array (M, T, V, C) -> annotation dict; COCO-17 arrays carry the score as channel 2 (x, y, score)."""
    layout = layouts.get(layout)
    v, needs_score = layout.num_joints, layout.score
    want = layout.keypoint_channels + needs_score
    if arr.ndim != 4 or arr.dtype.kind not in "fiu":
        raise PredictError(f"{where}: expected a numeric array (M, T, V, C), got {arr.dtype} {arr.shape}")
    if arr.shape[2:] != (v, want):
        extra = " (x, y, score)" if needs_score else ""
        raise PredictError(
            f"{where}: expected {v} joints x {want} channels{extra} for layout "
            f"{layout.name!r}, got {arr.shape[2]} x {arr.shape[3]}"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise PredictError(f"{where}: the array {arr.shape} has no person or no frame")
    if not np.isfinite(arr).all():
        raise PredictError(f"{where}: the array holds NaN or inf")
    anno = {"frame_dir": name, "total_frames": arr.shape[1]}
    if needs_score:
        anno.update(
            keypoint=arr[..., :2].astype(np.float32),
            keypoint_score=arr[..., 2].astype(np.float32),
            img_shape=tuple(img_shape),
        )
    else:
        anno["keypoint"] = arr if arr.dtype.kind == "f" else arr.astype(np.float32)
    return anno


def _read_pickle(path: str, sample: str | None) -> list[dict]:
    obj = load_annotations(path)
    annos = obj["annotations"] if isinstance(obj, dict) else obj
    if not all(isinstance(a, dict) and "keypoint" in a for a in annos):
        raise PredictError(f"{path}: every annotation must be a dict with a 'keypoint' array")
    if sample is not None:
        annos = [a for a in annos if a.get("frame_dir") == sample]
        if not annos:
            raise PredictError(f"{path}: no sample with frame_dir {sample!r}")
    if not annos:
        raise PredictError(f"{path}: holds no samples")
    return annos


def check_path(path: str, sample: str | None) -> str:
    """The input's extension, after checking that it is a known kind and that the file exists."""
    if os.path.isdir(path):  # OpenPose's --write_json folder
        if sample is not None:
            raise PredictError(f"{path}: a sample name selects from an annotation pickle, not a folder")
        return "openpose"
    ext = os.path.splitext(path)[1].lower()
    if ext not in INPUT_EXTENSIONS:
        raise PredictError(
            f"{path}: unknown input type {ext or '(no extension)'!r}; expected one of {', '.join(INPUT_EXTENSIONS)}"
        )
    if not os.path.isfile(path):
        raise PredictError(f"{path}: no such input file (or OpenPose folder)")
    if sample is not None and ext not in (".pkl", ".pickle"):
        raise PredictError(f"{path}: a sample name selects from an annotation pickle, not a {ext} file")
    return ext


def read_input(
    path: str | os.PathLike,
    *,
    layout: layouts.LayoutArg,
    conversion: str = "pyskl",
    sample: str | None = None,
    img_shape=None,
    max_persons: int = pose_estimators.MAX_PERSONS,
) -> list[dict]:
    """A file -> annotation dicts: `.skeleton` (raw NTU), `.npy` (M, T, V, C), `.pkl`/`.pickle` (annotations),
    `.json` (MMPose's saved predictions, one OpenPose frame, or a Kinetics-skeleton video as ST-GCN's demo writes it:
    skeljax.data.read_kinetics_skeleton) or a folder of OpenPose `*_keypoints.json` files
    (skeljax.data.pose_estimators). `img_shape` (H, W) of 2D pixels: default the file's, else 1080 x 1920;
    `max_persons`: how many tracks of a pose-estimator file are kept."""
    path = os.fspath(path)
    ext = check_path(path, sample)
    if ext in ("openpose", ".json"):
        return [_read_pose_json(path, layout, img_shape, max_persons)]
    if ext == ".skeleton":
        layout = layouts.get(layout)
        if layout != layouts.BUILTIN["nturgb+d"]:
            raise PredictError(
                f"{path}: a .skeleton file holds NTU-25 3D joints but the checkpoint takes "
                f"{layout.expected()} (layout {layout.name!r})"
            )
        return [_read_skeleton(path, conversion)]
    if ext == ".npy":
        return [_read_npy(path, layout, img_shape or DEFAULT_IMG_SHAPE)]
    return _read_pickle(path, sample)


def _read_pose_json(path: str, layout: layouts.LayoutArg, img_shape, max_persons: int) -> dict:
    """Dispatch a `.json` file on its content (or a folder of OpenPose files) to its reader."""
    kind, obj = "openpose_folder", None
    if not os.path.isdir(path):
        obj = pose_estimators.load_json(path)
        kind = pose_estimators.json_format(obj)
    if kind == "kinetics":
        return _read_kinetics_json(path, layout)
    if kind == "mmpose":
        return pose_estimators.read_mmpose(path, layout, img_shape=img_shape, max_persons=max_persons, obj=obj)
    if kind in ("openpose", "openpose_folder"):
        return pose_estimators.read_openpose(path, layout, img_shape=img_shape, max_persons=max_persons)
    raise PredictError(
        f"{path}: unknown JSON content; expected MMPose's saved predictions ({{'meta_info', 'instance_info'}} or "
        "a list of {'frame_id', 'instances'}), an OpenPose keypoints file ({'people'}) or a Kinetics-skeleton "
        "video ({'data'})"
    )


def _read_kinetics_json(path: str, layout: layouts.LayoutArg) -> dict:
    from skeljax.data.kinetics import read_kinetics_skeleton

    layout = layouts.get(layout)
    if layout != layouts.BUILTIN["openpose"]:
        raise PredictError(
            f"{path}: a Kinetics-skeleton .json file holds OpenPose-18 2D joints but the checkpoint "
            f"takes {layout.expected()} (layout {layout.name!r})"
        )
    anno = read_kinetics_skeleton(path)
    if anno["label"] < 0:  # the demo writes label_index -1: no ground truth
        del anno["label"]
    return anno


def read_inputs(
    inputs,
    *,
    layout: layouts.LayoutArg,
    conversion: str = "pyskl",
    sample: str | None = None,
    img_shape=None,
    max_persons: int = pose_estimators.MAX_PERSONS,
) -> list[tuple[str, list[dict]]]:
    """(where, annotation dicts) per input item (a path, an array (M, T, V, C) or an annotation dict, or a list of
    these), read for a model of `layout` whose `.skeleton` files are converted the `conversion` way."""
    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    out = []
    for k, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            out.append(
                (
                    os.fspath(item),
                    read_input(
                        item,
                        layout=layout,
                        conversion=conversion,
                        sample=sample,
                        img_shape=img_shape,
                        max_persons=max_persons,
                    ),
                )
            )
        elif isinstance(item, np.ndarray):
            where = f"<array {k}>"
            shape = img_shape or DEFAULT_IMG_SHAPE
            out.append((where, [array_annotation(item, f"array{k}", layout, where, shape)]))
        elif isinstance(item, Mapping):
            out.append((f"<annotation {item.get('frame_dir', k)}>", [dict(item)]))
        else:
            raise PredictError(
                f"input {k}: expected a file path, an array (M, T, V, C) or an annotation dict, got "
                f"{type(item).__name__}"
            )
    return out
