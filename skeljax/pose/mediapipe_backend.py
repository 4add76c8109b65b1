"""mediapipe's PoseLandmarker (Tasks API, VIDEO running mode) as a COCO-17 pose backend.

BlazePose gives 33 landmarks per person, x and y as fractions of the image width and height, with a visibility
(the chance the joint is in view and not occluded). COCO-17 takes landmarks
`COCO17_FROM_BLAZEPOSE = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]`: nose, left/right eye
(BlazePose's eye centres, not the inner or outer corners), ears, shoulders, elbows, wrists, hips, knees, ankles.
Coordinates become pixels of the frame; the visibility is the score. BlazePose also guesses joints outside the image
(a knee below the bottom edge), sometimes with a high visibility: such a joint gets score 0, as a joint the detector
did not find, and its coordinates are clipped to the frame. The VIDEO mode tracks people from frame to frame, but
gives no ids, so people are linked by `skeljax.data.pose_estimators.link_tracks`.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from skeljax.pose.base import MissingExtraError, PersonPose, PoseError, check_frame, native_stderr_silenced

COCO17_FROM_BLAZEPOSE = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
TASK_MEMBERS = ("pose_detector.tflite", "pose_landmarks_detector.tflite")  # what a PoseLandmarker bundle holds
MIN_CONFIDENCE = 0.5  # mediapipe's defaults for detection, presence and tracking


def import_mediapipe(what: str = "the mediapipe pose backend"):
    """mediapipe's Image class and vision tasks, or one MissingExtraError naming the pip command."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ INFO lines would bury the one error line
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError:
        raise MissingExtraError("mediapipe", what) from None
    return mp, BaseOptions, vision


def check_task_file(path: str) -> None:
    """A PoseError unless `path` is a zip holding the two models of a PoseLandmarker bundle."""
    if not os.path.isfile(path):
        raise PoseError(path, "no such pose model file")
    if not zipfile.is_zipfile(path):
        raise PoseError(path, "not a mediapipe .task model bundle (not a zip file; corrupt or truncated?)")
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError) as e:
        raise PoseError(path, f"corrupt mediapipe .task model bundle ({e})") from None
    missing = [m for m in TASK_MEMBERS if m not in names]
    if missing or bad is not None:
        problem = f"lacks {', '.join(missing)}" if missing else f"member {bad} is corrupt"
        raise PoseError(path, f"not a mediapipe PoseLandmarker bundle: {problem}")


def blazepose_to_coco(landmarks, width: int, height: int) -> PersonPose:
    """One person's 33 normalised BlazePose landmarks -> COCO-17 pixels and scores (module docstring)."""
    picked = [landmarks[i] for i in COCO17_FROM_BLAZEPOSE]
    xy = np.array([(lm.x * width, lm.y * height) for lm in picked], np.float32)
    scores = np.array([lm.visibility if lm.visibility is not None else 1.0 for lm in picked], np.float32)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= width - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= height - 1)
    scores = np.where(inside, np.clip(scores, 0.0, 1.0), 0.0).astype(np.float32)
    xy = np.clip(xy, 0.0, np.array([width - 1, height - 1], np.float32))
    return PersonPose(xy, scores)


class MediapipePose:
    """PoseLandmarker in VIDEO mode; one instance per video (its timestamps must increase)."""

    def __init__(self, model_path: str, max_persons: int = 2, name: str | None = None):
        self.name = name or model_path
        check_task_file(model_path)
        mp, BaseOptions, vision = import_mediapipe()
        self._image = lambda rgb: mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=os.path.abspath(model_path)),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=max_persons,
            min_pose_detection_confidence=MIN_CONFIDENCE,
            min_pose_presence_confidence=MIN_CONFIDENCE,
            min_tracking_confidence=MIN_CONFIDENCE,
            output_segmentation_masks=False,
        )
        try:
            with native_stderr_silenced():
                self._landmarker = vision.PoseLandmarker.create_from_options(options)
        except Exception as e:  # mediapipe raises RuntimeError / ValueError / FileNotFoundError for a bad model
            raise PoseError(model_path, f"mediapipe cannot load this pose model ({e})") from None

    def __call__(self, rgb: np.ndarray, timestamp_ms: int) -> list[PersonPose]:
        rgb = check_frame(rgb, self.name)
        with native_stderr_silenced():
            result = self._landmarker.detect_for_video(self._image(rgb), int(timestamp_ms))
        height, width = rgb.shape[:2]
        return [blazepose_to_coco(person, width, height) for person in result.pose_landmarks]

    def close(self) -> None:
        if getattr(self, "_landmarker", None) is not None:
            with native_stderr_silenced():
                self._landmarker.close()
            self._landmarker = None

    def __del__(self):  # mediapipe's own finaliser fails at interpreter exit; close while the bindings exist
        try:
            self.close()
        except Exception:
            pass
