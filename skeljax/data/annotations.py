"""PYSKL / MMAction2 0.x annotation pickles: restricted loading, validation and atomic saving."""

from __future__ import annotations

import numbers
import os
import pickle

import numpy as np

from skeljax import layouts
from skeljax.io.atomic import atomic_file
from skeljax.io.unpickle import AllowList, UnsafePickleError, numpy_globals

MAX_PERSONS = 2


class AnnotationError(ValueError):
    """An annotation file that cannot be used: unreadable, unsafe, or with an invalid sample."""


class UnsafeAnnotationError(AnnotationError, UnsafePickleError):
    """An annotation pickle names a global outside the annotation allow-list."""


# Containers, builtin scalars/strings and NumPy arrays/dtypes/scalars (both NumPy 1.x and 2.x module paths).
_SAFE_GLOBALS = AllowList(
    {**numpy_globals(), "builtins.slice": slice},
    "{path}: refusing to unpickle global {name}: annotation files may only hold dicts, lists, tuples, strings, "
    "numbers and NumPy arrays. If you trust this file, load it with load_annotations(path, trusted=True)",
    UnsafeAnnotationError,
)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves allow-listed globals, so loading cannot run arbitrary code."""

    def __init__(self, file, path: str):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        # The C unpickler does not expose the protocol: Python 2 names ('__builtin__') are mapped always.
        return _SAFE_GLOBALS.resolve(module, name, self._path)

    def persistent_load(self, pid):
        raise AnnotationError(f"{self._path}: refusing persistent id {pid!r} in an annotation pickle")


def load_annotations(path: str | os.PathLike, *, trusted: bool = False):
    """Reads a PYSKL ({'split', 'annotations'}) or MMAction2 0.x (list of dicts) annotation pickle.

    Only containers, builtin scalars/strings and NumPy arrays/dtypes/scalars are admitted unless
    `trusted=True`, which runs the full (code-executing) unpickler and must only be used for files you trust.
    """
    path = str(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below; streamed because NTU-120 pickles are large)
    except OSError as e:
        raise AnnotationError(f"{path}: cannot read annotation file: {e}") from e
    try:
        with f:
            obj = pickle.load(f) if trusted else _RestrictedUnpickler(f, path).load()
    except AnnotationError:
        raise
    except Exception as e:  # pickle raises many types on corrupt input
        raise AnnotationError(f"{path}: not a readable annotation pickle ({type(e).__name__}: {e})") from e
    if isinstance(obj, dict):
        if not isinstance(obj.get("annotations"), list):
            raise AnnotationError(
                f"{path}: a dict annotation file needs an 'annotations' list, got keys {sorted(map(str, obj))}"
            )
        if "split" in obj and not isinstance(obj["split"], dict):
            raise AnnotationError(f"{path}: 'split' must be a dict of name -> list of frame_dir")
    elif not isinstance(obj, list):
        raise AnnotationError(
            f"{path}: expected a dict with split/annotations or a list of samples, got {type(obj).__name__}"
        )
    return obj


def save_annotations(path: str | os.PathLike, data) -> None:
    """Writes a pickle atomically: a temporary file in the same folder renamed over `path`."""
    with atomic_file(path) as f:
        pickle.dump(data, f, protocol=4)


def _expected_layout(layout) -> tuple[int, int] | None:
    """(joints, channels) of the `keypoint` arrays: from a layout (name or SkeletonLayout) or given as a pair."""
    if layout is None:
        return None
    if isinstance(layout, (str, layouts.SkeletonLayout)):
        try:
            lay = layouts.get(layout)
        except ValueError:
            raise ValueError(
                f"unknown skeleton layout {layout!r}; expected one of "
                f"{sorted(layouts.BUILTIN) + sorted(layouts.ALIASES)} or (joints, channels)"
            ) from None
        return lay.num_joints, lay.keypoint_channels
    joints, channels = layout
    return int(joints), int(channels)


def _check_sample(anno, num_classes, expect) -> str | None:
    """The first problem of one sample, or None."""
    for key in ("frame_dir", "label", "keypoint", "total_frames"):
        if key not in anno:
            return f"missing field '{key}'"
    label = anno["label"]
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, numbers.Integral):
        return f"label must be an integer, got {label!r}"
    if label < 0 or (num_classes is not None and label >= num_classes):
        limit = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        return f"label {int(label)} out of range {limit}"
    kp = anno["keypoint"]
    if not isinstance(kp, np.ndarray) or not np.issubdtype(kp.dtype, np.floating):
        return f"keypoint must be a floating-point numpy array, got {type(kp).__name__} {getattr(kp, 'dtype', '')}"
    if kp.ndim != 4:
        return f"keypoint must have rank 4 (persons, frames, joints, channels), got shape {kp.shape}"
    m, t, v, c = kp.shape
    if m < 1:
        return f"keypoint has no person (shape {kp.shape})"
    if m > MAX_PERSONS:
        return f"keypoint has {m} persons, at most {MAX_PERSONS} are allowed (shape {kp.shape})"
    if t == 0:
        return f"zero-length sequence (keypoint shape {kp.shape})"
    if expect is not None and (v, c) != expect:
        return f"expected {expect[0]} joints x {expect[1]} channels, got {v} x {c}"
    if c not in (2, 3):
        return f"keypoint must have 2 or 3 channels, got {c} (shape {kp.shape})"
    total = anno["total_frames"]
    if not isinstance(total, numbers.Integral) or int(total) != t:
        return f"total_frames {total!r} does not match the keypoint's {t} frames (shape {kp.shape})"
    if not np.isfinite(kp).all():
        return f"keypoint contains NaN or inf ({int((~np.isfinite(kp)).sum())} values)"
    if "keypoint_score" in anno:
        score = anno["keypoint_score"]
        if not isinstance(score, np.ndarray) or score.shape != kp.shape[:3]:
            return f"keypoint_score shape {getattr(score, 'shape', type(score).__name__)} does not match keypoint {kp.shape[:3]}"
        if not np.isfinite(score).all():
            return "keypoint_score contains NaN or inf"
    return None


def validate_annotations(
    annos, path: str | os.PathLike = "<annotations>", *, layout=None, num_classes: int | None = None
) -> None:
    """Checks every sample and the split dict; raises AnnotationError naming the file, sample and problem.

    `annos` is what load_annotations returns; `layout` is a `skeljax.layouts` layout (or its name) or
    (joints, channels).
    """
    path = str(path)
    expect = _expected_layout(layout)
    if isinstance(annos, dict):
        samples, split = annos.get("annotations"), annos.get("split", {})
    else:
        samples, split = annos, {}
    if not isinstance(samples, list):
        raise AnnotationError(f"{path}: annotations must be a list of dicts, got {type(samples).__name__}")
    if not isinstance(split, dict):
        raise AnnotationError(f"{path}: split must be a dict, got {type(split).__name__}")
    seen: set[str] = set()
    for i, anno in enumerate(samples):
        if not isinstance(anno, dict):
            raise AnnotationError(f"{path}: sample #{i} is a {type(anno).__name__}, expected a dict")
        name = anno.get("frame_dir", f"#{i} (no frame_dir)")
        if "frame_dir" in anno and not isinstance(name, str):
            raise AnnotationError(f"{path}: sample #{i}: frame_dir must be a string, got {name!r}")
        problem = _check_sample(anno, num_classes, expect)
        if problem:
            raise AnnotationError(f"{path}: sample {name}: {problem}")
        if name in seen:
            raise AnnotationError(f"{path}: sample {name}: duplicate frame_dir")
        seen.add(name)
    for split_name, names in split.items():
        if not isinstance(names, (list, tuple)):
            raise AnnotationError(
                f"{path}: split {split_name!r} must be a list of frame_dir, got {type(names).__name__}"
            )
        unknown = [n for n in names if n not in seen]
        if unknown:
            shown = ", ".join(map(str, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
            raise AnnotationError(f"{path}: split {split_name!r} names {len(unknown)} unknown sample(s): {shown}")
