"""Pose estimation from video frames: one small interface (`base`), the mediapipe and rtmlib backends and the factory
that picks one (`estimators.make_estimator`), the pose models the zoo lists (`models`) and video decoding
(`video_io`). Backends and OpenCV are optional extras
(`pip install "skeljax[video]"`, `"skeljax[rtm]"`), imported only when used. docs/video.md describes them."""

from skeljax.pose.base import (
    DEFAULT_POSE,
    POSE_SPECS,
    MissingExtraError,
    PersonPose,
    PoseError,
    PoseEstimator,
)
from skeljax.pose.estimators import make_estimator

__all__ = [
    "DEFAULT_POSE",
    "POSE_SPECS",
    "MissingExtraError",
    "PersonPose",
    "PoseError",
    "PoseEstimator",
    "make_estimator",
]
