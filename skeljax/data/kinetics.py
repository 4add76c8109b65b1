"""Kinetics-skeleton (the ST-GCN paper's release): per-video JSON files, per-split label files, 400 class names.

A video file is `{"data": [{"frame_index": i, "skeleton": [{"pose": [x0, y0, x1, y1, ...], "score": [s0, ...]},
...]}, ...], "label": str, "label_index": int}` with OpenPose-18 joints in image fractions ([0, 1]); the demo of
`st-gcn` (`tools/utils/openpose.py`) writes the same format from OpenPose output. A label file maps a video id (the
file name up to its first '.') to `{"has_skeleton": bool, "label": str, "label_index": int}`.

`read_kinetics_skeleton` returns a PYSKL-style annotation dict that keeps the file's content as it is: frame `t` of
`keypoint` holds the entry whose frame_index is `t` (frames the file does not list stay zero, so a file counting
from 1 has an empty frame 0, exactly as the original feeder `feeder/feeder_kinetics.py` fills its array), person `m`
is the m-th skeleton listed in that frame (no tracking), and coordinates stay image fractions with
`img_shape = (1, 1)`, so PYSKL's PreNormalize2D maps them to [-1, 1] and the `stgcn_original` recipe centres them by
-0.5 as the original does.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

NUM_JOINTS = 18
# The image shape recorded for coordinates that are fractions of the image width and height.
FRACTION_SHAPE = (1, 1)


class KineticsSkeletonError(ValueError):
    """A Kinetics-skeleton video or label file that does not have the released format; the message names the file."""

    def __init__(self, path, problem: str):
        self.path, self.problem = os.fspath(path), problem
        super().__init__(f"{self.path}: {problem}")


def _load_class_names() -> tuple[str, ...]:
    text = resources.files("skeljax.data").joinpath("kinetics400_classes.txt").read_text(encoding="utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    assert len(names) == 400 and len(set(names)) == 400, "kinetics400_classes.txt must list 400 distinct names"
    return names


# The 400 Kinetics classes in label_index order (`resource/kinetics_skeleton/label_name.txt` of st-gcn).
KINETICS400_CLASSES = _load_class_names()


def video_id(path: str | os.PathLike) -> str:
    """The id a label file uses for a video file: its name up to the first '.', as the original feeder takes it."""
    return Path(path).name.split(".")[0]


def _load_json(path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise KineticsSkeletonError(path, f"not valid JSON ({e})") from e
    except UnicodeDecodeError as e:
        raise KineticsSkeletonError(path, f"not UTF-8 text ({e})") from e


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _numbers(values, n: int, what: str, path) -> list[float]:
    """`values` as n finite floats, or an error naming the file and `what`."""
    if not isinstance(values, list) or len(values) != n:
        got = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
        raise KineticsSkeletonError(path, f"{what} must be a list of {n} numbers, got {got}")
    for x in values:
        if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
            raise KineticsSkeletonError(path, f"{what} holds {x!r}, not a finite number")
    return values


def _frames(data, path) -> dict[int, list]:
    """frame_index -> that frame's skeleton list, with every key checked."""
    if not isinstance(data, list):
        raise KineticsSkeletonError(path, f"'data' must be a list of frames, got {type(data).__name__}")
    frames: dict[int, list] = {}
    for k, frame in enumerate(data):
        where = f"data[{k}]"
        if not isinstance(frame, dict):
            raise KineticsSkeletonError(path, f"{where} must be an object, got {type(frame).__name__}")
        missing = [key for key in ("frame_index", "skeleton") if key not in frame]
        if missing:
            raise KineticsSkeletonError(path, f"{where} has no {' or '.join(repr(m) for m in missing)}")
        t, people = frame["frame_index"], frame["skeleton"]
        if not _is_int(t) or t < 0:
            raise KineticsSkeletonError(path, f"{where}: frame_index must be a non-negative integer, got {t!r}")
        if t in frames:
            raise KineticsSkeletonError(path, f"{where}: frame_index {t} appears twice")
        if not isinstance(people, list):
            raise KineticsSkeletonError(path, f"{where}: 'skeleton' must be a list, got {type(people).__name__}")
        frames[int(t)] = people
    return frames


def _person(skeleton, where: str, path) -> tuple[list[float], list[float]]:
    if not isinstance(skeleton, dict):
        raise KineticsSkeletonError(path, f"{where} must be an object, got {type(skeleton).__name__}")
    missing = [key for key in ("pose", "score") if key not in skeleton]
    if missing:
        raise KineticsSkeletonError(path, f"{where} has no {' or '.join(repr(m) for m in missing)}")
    return (
        _numbers(skeleton["pose"], 2 * NUM_JOINTS, f"{where}.pose", path),
        _numbers(skeleton["score"], NUM_JOINTS, f"{where}.score", path),
    )


def read_kinetics_skeleton(path: str | os.PathLike, *, max_people: int | None = None) -> dict:
    """One Kinetics-skeleton JSON video -> PYSKL-style annotation dict (see the module docstring).

    keys: frame_dir (the video id), label (label_index; -1 when the file has none, as the demo writes), label_name,
    keypoint float32 (M, T, 18, 2) image fractions, keypoint_score float32 (M, T, 18), total_frames T (the largest
    frame_index + 1), img_shape and original_shape (1, 1). M is the most people any frame lists (at least 1), at most
    `max_people` (the first ones listed are kept; the original feeder reads 5).
    """
    if max_people is not None and (not _is_int(max_people) or max_people < 1):
        raise ValueError(f"max_people must be a positive integer or None, got {max_people!r}")
    video = _load_json(path)
    if not isinstance(video, dict):
        raise KineticsSkeletonError(path, f"expected a JSON object with 'data', got {type(video).__name__}")
    if "data" not in video:
        raise KineticsSkeletonError(path, f"no 'data' key (has {sorted(video)})")
    label = video.get("label_index", -1)
    if not _is_int(label) or label < -1:
        raise KineticsSkeletonError(path, f"label_index must be an integer >= -1, got {label!r}")
    name = video.get("label", "")
    if not isinstance(name, str):
        raise KineticsSkeletonError(path, f"label must be a string, got {name!r}")
    frames = _frames(video["data"], path)
    if not frames:
        raise KineticsSkeletonError(path, "'data' holds no frame")
    T = max(frames) + 1
    M = max(1, max(len(people) for people in frames.values()))
    if max_people is not None:
        M = min(M, max_people)
    keypoint = np.zeros((M, T, NUM_JOINTS, 2), np.float32)
    score = np.zeros((M, T, NUM_JOINTS), np.float32)
    for t, people in frames.items():
        for m, skeleton in enumerate(people):
            pose, s = _person(skeleton, f"frame_index {t}, skeleton[{m}]", path)  # every person is validated
            if m < M:
                keypoint[m, t] = np.asarray(pose, np.float64).reshape(NUM_JOINTS, 2)
                score[m, t] = s
    return {
        "frame_dir": video_id(path),
        "label": int(label),
        "label_name": name,
        "keypoint": keypoint,
        "keypoint_score": score,
        "total_frames": T,
        "img_shape": FRACTION_SHAPE,
        "original_shape": FRACTION_SHAPE,
    }


def read_label_file(path: str | os.PathLike) -> dict[str, dict]:
    """A split's label file -> {video_id: {"has_skeleton": bool, "label": str, "label_index": int}}, checked."""
    labels = _load_json(path)
    if not isinstance(labels, dict):
        raise KineticsSkeletonError(path, f"expected an object {{video_id: {{...}}}}, got {type(labels).__name__}")
    for vid, entry in labels.items():
        if not isinstance(entry, Mapping):
            raise KineticsSkeletonError(path, f"entry {vid!r} must be an object, got {type(entry).__name__}")
        missing = [k for k in ("has_skeleton", "label", "label_index") if k not in entry]
        if missing:
            raise KineticsSkeletonError(path, f"entry {vid!r} has no {', '.join(repr(m) for m in missing)}")
        if not isinstance(entry["has_skeleton"], bool):
            raise KineticsSkeletonError(
                path, f"entry {vid!r}: has_skeleton must be true or false, got {entry['has_skeleton']!r}"
            )
        if not _is_int(entry["label_index"]) or entry["label_index"] < 0:
            raise KineticsSkeletonError(
                path, f"entry {vid!r}: label_index must be a non-negative integer, got {entry['label_index']!r}"
            )
    return labels
