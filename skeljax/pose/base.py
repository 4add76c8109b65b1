"""The one small interface every pose backend implements: what it is called with and what it returns.

A backend is called once per video frame with the frame as RGB uint8 (H, W, 3) and its time in milliseconds
(mediapipe's VIDEO mode needs increasing timestamps; the others ignore them) and returns the people it found, each
as COCO-17 joints in PIXELS of that frame with a score per joint. COCO-17 is the layout of PYSKL's 2D models
(`skeljax.layouts.BUILTIN['coco']`): nose, left/right eye, left/right ear, shoulders, elbows, wrists, hips, knees,
ankles, left before right. A backend that tracks people itself gives `track_id`; the others leave it None and
`skeljax.data.pose_estimators.link_tracks` links people by box IoU.

Spec strings (`--pose`): `mediapipe-lite|mediapipe-full|mediapipe-heavy` (mediapipe's PoseLandmarker, the model
file a zoo row of kind 'pose'), `rtmpose` (rtmlib: YOLOX person detector + RTMPose), `rtmo` (rtmlib: the one-stage
RTMO), or a path to a model file: `.task` is a mediapipe PoseLandmarker bundle, `.onnx` an rtmlib RTMO model
(`rtmpose:DET.onnx,POSE.onnx` names a detector and a pose model). Each backend lives in its own module and imports
its extra (mediapipe, rtmlib) only when made, so the base install needs neither. `skeljax.pose.estimators`
holds the factory; this module only the shared types, so that the backends import it and nothing imports back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
from typing import Protocol, runtime_checkable

import numpy as np

NUM_JOINTS = 17  # COCO-17
DEFAULT_POSE = "mediapipe-full"
MEDIAPIPE_SPECS = ("mediapipe-lite", "mediapipe-full", "mediapipe-heavy")
RTM_SPECS = ("rtmpose", "rtmo")
POSE_SPECS = MEDIAPIPE_SPECS + RTM_SPECS
EXTRAS = {"mediapipe": "video", "rtmlib": "rtm"}  # import name -> skeljax extra that installs it
NATIVE_LOGS_ENV = "SKELJAX_POSE_LOGS"  # set to 1 to keep native libraries' log lines on stderr


class PoseError(ValueError):
    """A pose model, video or backend that cannot be used; the message names the file or spec and the problem."""

    def __init__(self, where, problem: str):
        self.where, self.problem = os.fspath(where), problem
        super().__init__(f"{self.where}: {problem}")


class MissingExtraError(PoseError):
    """The optional package a backend needs is not installed; the message is the pip command that installs it."""

    def __init__(self, module: str, what: str):
        extra = EXTRAS.get(module, "video")
        super().__init__(what, f'needs {module}, which is not installed: pip install "skeljax[{extra}]"')


@dataclasses.dataclass(frozen=True)
class PersonPose:
    """One person in one frame: COCO-17 `keypoints` float32 (17, 2) as (x, y) pixels of the frame, `scores` float32
    (17,) in [0, 1], and the backend's own `track_id` when it tracks people (None otherwise)."""

    keypoints: np.ndarray
    scores: np.ndarray
    track_id: int | None = None

    def __post_init__(self):
        kp = np.asarray(self.keypoints, np.float32)
        sc = np.asarray(self.scores, np.float32)
        if kp.shape != (NUM_JOINTS, 2) or sc.shape != (NUM_JOINTS,):
            raise ValueError(f"a COCO-17 pose needs keypoints (17, 2) and scores (17,), got {kp.shape}, {sc.shape}")
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "scores", sc)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2) spanning the joints with a positive score (all joints when none has one)."""
        seen = self.keypoints[self.scores > 0]
        seen = seen if len(seen) else self.keypoints
        (x1, y1), (x2, y2) = seen.min(0), seen.max(0)
        return float(x1), float(y1), float(x2), float(y2)


@runtime_checkable
class PoseEstimator(Protocol):
    """What every backend is: called per frame, closed once (it may hold native resources)."""

    name: str  # the spec or model file it was made from, for messages

    def __call__(self, rgb: np.ndarray, timestamp_ms: int) -> list[PersonPose]:
        """The people in one RGB uint8 (H, W, 3) frame; timestamps must increase from call to call."""
        ...

    def close(self) -> None: ...


def check_frame(rgb: np.ndarray, where: str) -> np.ndarray:
    """`rgb` as a C-contiguous uint8 (H, W, 3) array, or a PoseError naming `where`."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise PoseError(where, f"a frame must be RGB uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb)


def backend_of(spec: str) -> str:
    """'mediapipe' or 'rtm' for a spec string or model path; a PoseError for anything else."""
    spec = os.fspath(spec)
    if spec in MEDIAPIPE_SPECS or spec.lower().endswith(".task"):
        return "mediapipe"
    if spec in RTM_SPECS or spec.startswith("rtmpose:") or spec.lower().endswith(".onnx"):
        return "rtm"
    raise PoseError(
        spec,
        f"unknown pose backend; expected one of {', '.join(POSE_SPECS)}, a mediapipe .task file or an rtmlib .onnx "
        "file",
    )


_silenced_lock = threading.Lock()
_silenced = {"depth": 0, "saved": -1}  # how many threads are inside native_stderr_silenced; the real fd 2


@contextlib.contextmanager
def native_stderr_silenced():
    """Send file descriptor 2 to /dev/null while native code runs: mediapipe's C++ logs INFO and WARNING lines per
    frame ("Sparsity tensors may not yet be fully supported", ...) and FFmpeg its complaints about a broken file
    ("moov atom not found"), which no Python setting turns off and which would bury the progress bar and the one
    `error:` line. Python's own stderr is flushed first; errors still come back as exceptions.
    `$SKELJAX_POSE_LOGS=1` keeps them.

    Threads may overlap (live prediction decodes in one thread while the pose model runs in another): fd 2 is one
    for the process, so the first to enter saves it and the last to leave restores it; a per-thread save and restore
    would leave it on /dev/null when the two interleave."""
    if os.environ.get(NATIVE_LOGS_ENV, "") not in ("", "0"):
        yield
        return
    with _silenced_lock:
        if _silenced["depth"] == 0:
            sys.stderr.flush()
            _silenced["saved"] = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _silenced["depth"] += 1
    try:
        yield
    finally:
        with _silenced_lock:
            _silenced["depth"] -= 1
            if _silenced["depth"] == 0:
                os.dup2(_silenced["saved"], 2)
                os.close(_silenced["saved"])
