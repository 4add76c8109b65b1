"""`make_estimator`: a pose backend by name or model file (skeljax.pose.base describes the spec strings).

Named models are fetched into the zoo cache on first use (`skeljax.zoo.download.get`); the backend's extra is
checked first, so a missing mediapipe or rtmlib is one error naming the pip command, before any download.
"""

from __future__ import annotations

import os

from skeljax.pose import mediapipe_backend, rtm_backend
from skeljax.pose.base import DEFAULT_POSE, MEDIAPIPE_SPECS, PoseError, PoseEstimator, backend_of
from skeljax.pose.models import SPEC_MODELS


def model_files(spec: str, *, mirror: str | None = None, quiet: bool = False) -> list[str]:
    """The local model files of a named backend ('mediapipe-full', 'rtmpose', ...), fetched on first use."""
    from skeljax.zoo import download

    return [download.get(name, mirror=mirror, quiet=quiet) for name in SPEC_MODELS[spec]]


def require_extra(spec: str | os.PathLike) -> None:
    """One MissingExtraError naming the pip command when `spec`'s backend, or OpenCV, is not installed; cheap, so
    that callers can check before loading action models or downloading anything."""
    from skeljax.pose import video_io

    spec = os.fspath(spec)
    if backend_of(spec) == "mediapipe":
        mediapipe_backend.import_mediapipe(spec)
    else:
        rtm_backend.import_rtmlib(spec)
    video_io.import_cv2()


def make_estimator(
    spec: str | os.PathLike = DEFAULT_POSE,
    *,
    max_persons: int = 2,
    mirror: str | None = None,
    quiet: bool = False,
) -> PoseEstimator:
    """A pose estimator for `spec` that finds up to `max_persons` people per frame; named models come through
    `mirror` (default `$SKELJAX_ZOO_MIRROR`), with a progress bar unless `quiet`."""
    spec = os.fspath(spec)
    if isinstance(max_persons, bool) or not isinstance(max_persons, int) or max_persons < 1:
        raise PoseError(spec, f"max_persons must be a positive integer, got {max_persons!r}")
    if backend_of(spec) == "mediapipe":
        mediapipe_backend.import_mediapipe(spec)
        if spec in MEDIAPIPE_SPECS:
            (path,) = model_files(spec, mirror=mirror, quiet=quiet)
            return mediapipe_backend.MediapipePose(path, max_persons, name=spec)
        return mediapipe_backend.MediapipePose(spec, max_persons)
    rtm_backend.import_rtmlib(spec)
    if spec == "rtmpose":
        detector, pose = model_files(spec, mirror=mirror, quiet=quiet)
        return rtm_backend.RTMPoseTopDown(detector, pose, max_persons, name=spec)
    if spec == "rtmo":
        return rtm_backend.RTMOPose(model_files(spec, mirror=mirror, quiet=quiet)[0], max_persons, name=spec)
    if spec.startswith("rtmpose:"):
        paths = spec[len("rtmpose:") :].split(",")
        if len(paths) != 2:
            raise PoseError(spec, "expected rtmpose:DETECTOR.onnx,POSE.onnx")
        return rtm_backend.RTMPoseTopDown(paths[0], paths[1], max_persons)
    return rtm_backend.RTMOPose(spec, max_persons)
