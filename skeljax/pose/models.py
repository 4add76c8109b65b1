"""The pose models `--pose NAME` uses. `skeljax.zoo` lists them as rows of kind 'pose' (`skeljax-zoo list` shows
them, `get` fetches them into the zoo cache with the same mirror, progress bar, checksum and atomic rename as the
action models); this module is plain data, so the zoo can read it without importing the backends.

mediapipe: Google's published PoseLandmarker bundles (a `.task` zip of the BlazePose detector and the BlazePose
GHUM landmark model; Apache-2.0), versioned URLs (`float16/1/`) so a row always means the same bytes. rtmlib:
OpenMMLab's RTMPose / RTMO / YOLOX ONNX exports (Apache-2.0), the files rtmlib's `Body` solution uses in its
'balanced' mode; each is a zip holding `end2end.onnx`, which `get` unpacks next to it. Neither host publishes a
digest, so `get` prints the sha256 of what it downloaded.
"""

from __future__ import annotations

import dataclasses

MEDIAPIPE_URL = "https://storage.googleapis.com/mediapipe-models/pose_landmarker"
RTM_URL = "https://download.openmmlab.com/mmpose/v1/projects"


@dataclasses.dataclass(frozen=True)
class PoseModel:
    name: str  # the zoo name, 'pose_mediapipe_full'
    url: str
    description: str


def _mediapipe(variant: str) -> PoseModel:
    return PoseModel(
        f"pose_mediapipe_{variant}",
        f"{MEDIAPIPE_URL}/pose_landmarker_{variant}/float16/1/pose_landmarker_{variant}.task",
        f"mediapipe PoseLandmarker {variant} (BlazePose GHUM, 33 landmarks)",
    )


POSE_MODELS = (
    _mediapipe("lite"),
    _mediapipe("full"),
    _mediapipe("heavy"),
    PoseModel(
        "pose_yolox_m",
        f"{RTM_URL}/rtmposev1/onnx_sdk/yolox_m_8xb8-300e_humanart-c2c7a14a.zip",
        "YOLOX-m person detector (HumanArt), rtmlib Body 'balanced'",
    ),
    PoseModel(
        "pose_rtmpose_m",
        f"{RTM_URL}/rtmposev1/onnx_sdk/rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.zip",
        "RTMPose-m 256x192 (Body7), COCO-17, rtmlib Body 'balanced'",
    ),
    PoseModel(
        "pose_rtmo_m",
        f"{RTM_URL}/rtmo/onnx_sdk/rtmo-m_16xb16-600e_body7-640x640-39e78cc4_20231211.zip",
        "RTMO-m 640x640 (Body7), COCO-17, one-stage multi-person",
    ),
)

# --pose NAME -> the zoo names of the files it needs, in the order its backend takes them.
SPEC_MODELS = {
    "mediapipe-lite": ("pose_mediapipe_lite",),
    "mediapipe-full": ("pose_mediapipe_full",),
    "mediapipe-heavy": ("pose_mediapipe_heavy",),
    "rtmpose": ("pose_yolox_m", "pose_rtmpose_m"),
    "rtmo": ("pose_rtmo_m",),
}
