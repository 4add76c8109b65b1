"""rtmlib's RTMPose (with a YOLOX person detector) and RTMO as COCO-17 pose backends, through onnxruntime.

RTMPose is a top-down model like the HRNet whose keypoints PYSKL's 2D models were trained on: the detector finds
people, the pose model reads each box, COCO-17 natively. RTMO finds people and joints in one pass. The models are
rtmlib's classes fed local ONNX files (its `Body` solution would swap a local path for its download URL), with frames
in BGR order as rtmlib's own examples pass OpenCV images. The most confident `max_persons` detections are kept per
frame; scores (SimCC maxima) are clipped to [0, 1]. rtmlib tracks nothing here: people are linked by box IoU.
"""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np

from skeljax.pose.base import MissingExtraError, PersonPose, PoseError, check_frame

RTMPOSE_INPUT = (192, 256)  # (width, height) of RTMPose-m body7
DETECTOR_INPUT = (640, 640)
RTMO_INPUT = (640, 640)


def import_rtmlib(what: str = "the rtmlib pose backend"):
    try:
        import rtmlib
    except ImportError:
        raise MissingExtraError("rtmlib", what) from None
    return rtmlib


def check_onnx_file(path: str) -> str:
    if not os.path.isfile(path):
        raise PoseError(path, "no such pose model file")
    with open(path, "rb") as f:
        head = f.read(64)
    if not head or head[0] != 0x08:  # an ONNX ModelProto starts with field 1 (ir_version), a varint: tag byte 0x08
        raise PoseError(path, "not an ONNX model file (corrupt or truncated?)")
    return path


def _load(path: str, make):
    """`make(path)`, with onnxruntime's failure on a corrupt file as a PoseError naming it. rtmlib prints a line
    per model loaded on stdout, where skeljax-predict writes its results: it goes nowhere."""
    check_onnx_file(path)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return make(path)
    except Exception as e:  # onnxruntime raises its own Fail / InvalidProtobuf / RuntimeError types
        raise PoseError(path, f"onnxruntime cannot load this pose model ({e})") from None


def _people(keypoints: np.ndarray, scores: np.ndarray, max_persons: int) -> list[PersonPose]:
    """The first `max_persons` people (rtmlib lists them most confident first) with a found joint; RTMO stands in
    an all-zero person when it finds nobody."""
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, 17, 2)
    scores = np.clip(np.asarray(scores, np.float32).reshape(-1, 17), 0.0, 1.0)
    found = [PersonPose(k, s) for k, s in zip(keypoints, scores) if s.max() > 0]
    return found[:max_persons]


class RTMPoseTopDown:
    """YOLOX person boxes, then RTMPose on each of the `max_persons` most confident."""

    def __init__(self, detector_path: str, pose_path: str, max_persons: int = 2, name: str | None = None):
        rtmlib = import_rtmlib()
        self.name = name or f"rtmpose:{detector_path},{pose_path}"
        self.max_persons = max_persons
        self._detector = _load(
            detector_path, lambda p: rtmlib.YOLOX(p, model_input_size=DETECTOR_INPUT, backend="onnxruntime")
        )
        self._pose = _load(
            pose_path, lambda p: rtmlib.RTMPose(p, model_input_size=RTMPOSE_INPUT, backend="onnxruntime")
        )

    def __call__(self, rgb: np.ndarray, timestamp_ms: int) -> list[PersonPose]:
        bgr = np.ascontiguousarray(check_frame(rgb, self.name)[..., ::-1])
        boxes = np.asarray(self._detector(bgr), np.float32).reshape(-1, 4)[: self.max_persons]
        if not len(boxes):  # RTMPose would read the whole frame as one box
            return []
        keypoints, scores = self._pose(bgr, bboxes=[list(map(float, b)) for b in boxes])
        return _people(keypoints, scores, self.max_persons)

    def close(self) -> None:
        self._detector = self._pose = None


class RTMOPose:
    """RTMO: people and their joints in one pass."""

    def __init__(self, path: str, max_persons: int = 2, name: str | None = None):
        rtmlib = import_rtmlib()
        self.name = name or path
        self.max_persons = max_persons
        self._model = _load(path, lambda p: rtmlib.RTMO(p, model_input_size=RTMO_INPUT, backend="onnxruntime"))

    def __call__(self, rgb: np.ndarray, timestamp_ms: int) -> list[PersonPose]:
        bgr = np.ascontiguousarray(check_frame(rgb, self.name)[..., ::-1])
        keypoints, scores = self._model(bgr)
        return _people(keypoints, scores, self.max_persons)

    def close(self) -> None:
        self._model = None
