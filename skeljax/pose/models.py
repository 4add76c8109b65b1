"""The pose models `--pose NAME` uses, as zoo rows of kind 'pose' (`skeljax-zoo list` shows them, `get` fetches
them into the zoo cache with the same mirror, progress bar, checksum and atomic rename as the action models).

mediapipe: Google's published PoseLandmarker bundles (a `.task` zip of the BlazePose detector and the BlazePose
GHUM landmark model; Apache-2.0), versioned URLs (`float16/1/`) so a row always means the same bytes. rtmlib:
OpenMMLab's RTMPose / RTMO / YOLOX ONNX exports (Apache-2.0), the files rtmlib's `Body` solution uses in its
'balanced' mode; each is a zip holding `end2end.onnx`, which `get` unpacks next to it. Neither host publishes a
digest, so `get` prints the sha256 of what it downloaded.
"""

from __future__ import annotations

from skeljax.zoo import ZooRow

KIND = "pose"
MEDIAPIPE_URL = "https://storage.googleapis.com/mediapipe-models/pose_landmarker"
RTM_URL = "https://download.openmmlab.com/mmpose/v1/projects"


def _mediapipe(variant: str) -> ZooRow:
    return ZooRow(
        config="",
        reference=f"mediapipe PoseLandmarker {variant} (BlazePose GHUM, 33 landmarks)",
        top1=0.0,
        url=f"{MEDIAPIPE_URL}/pose_landmarker_{variant}/float16/1/pose_landmarker_{variant}.task",
        name=f"pose_mediapipe_{variant}",
        kind=KIND,
    )


POSE_ROWS = (
    _mediapipe("lite"),
    _mediapipe("full"),
    _mediapipe("heavy"),
    ZooRow(
        config="",
        reference="YOLOX-m person detector (HumanArt), rtmlib Body 'balanced'",
        top1=0.0,
        url=f"{RTM_URL}/rtmposev1/onnx_sdk/yolox_m_8xb8-300e_humanart-c2c7a14a.zip",
        name="pose_yolox_m",
        kind=KIND,
    ),
    ZooRow(
        config="",
        reference="RTMPose-m 256x192 (Body7), COCO-17, rtmlib Body 'balanced'",
        top1=0.0,
        url=f"{RTM_URL}/rtmposev1/onnx_sdk/rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.zip",
        name="pose_rtmpose_m",
        kind=KIND,
    ),
    ZooRow(
        config="",
        reference="RTMO-m 640x640 (Body7), COCO-17, one-stage multi-person",
        top1=0.0,
        url=f"{RTM_URL}/rtmo/onnx_sdk/rtmo-m_16xb16-600e_body7-640x640-39e78cc4_20231211.zip",
        name="pose_rtmo_m",
        kind=KIND,
    ),
)

# --pose NAME -> the zoo rows it needs, in the order the backend takes them.
SPEC_ROWS = {
    "mediapipe-lite": ("pose_mediapipe_lite",),
    "mediapipe-full": ("pose_mediapipe_full",),
    "mediapipe-heavy": ("pose_mediapipe_heavy",),
    "rtmpose": ("pose_yolox_m", "pose_rtmpose_m"),
    "rtmo": ("pose_rtmo_m",),
}


def pose_rows() -> list[ZooRow]:
    return list(POSE_ROWS)


def model_files(spec: str, *, mirror: str | None = None, quiet: bool = False) -> list[str]:
    """The local model files of a named backend, fetched into the zoo cache on first use."""
    from skeljax.zoo import download

    return [download.get(name, mirror=mirror, quiet=quiet) for name in SPEC_ROWS[spec]]
