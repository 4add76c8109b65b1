"""Offline test fixtures for the video path: a mediapipe PoseLandmarker `.task` bundle built from the Apache-2.0
model files inside the mediapipe 0.10.21 wheel, and short clips made from a real photograph.

The `.task` Google publishes is a zip of `pose_detector.tflite` and `pose_landmarks_detector.tflite`. The 0.10.21
wheel (the last to ship the legacy solutions' models) holds the same two networks as
`modules/pose_detection/pose_detection.tflite` and `modules/pose_landmark/pose_landmark_full.tflite`. The detector
already carries the TFLite metadata the Tasks API reads; the landmark model has none, and the Tasks API refuses a
float input without its normalisation, so `landmark_model_with_metadata` adds the one entry it needs: an RGB image
input normalised as (x - 0) / 255 (the legacy graph's own [0, 1] input range).

The photograph is scikit-image's `astronaut()` (NASA, public domain; 512 x 512): Eileen Collins, upper body.
`ASTRONAUT_JOINTS` are marked by hand on it (docs/video.md): looking at zoomed crops with a pixel grid, the pupils,
the tip of the nose, the shoulder joints between the suit's neck ring and its outline, and the right elbow at the
bend of the arm. Her left elbow is hidden behind the helmet she holds, so it is not marked.

`python scripts/make_pose_fixtures.py DIR` writes the same files for a person to look at. Needs the video extra
(mediapipe, OpenCV) and scikit-image (the test extra).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

WHEEL_SPEC = "mediapipe==0.10.21"
WHEEL_NAME = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
DETECTOR_MEMBER = "mediapipe/modules/pose_detection/pose_detection.tflite"
LANDMARK_MEMBER = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
MEMBER_SHA256 = {
    DETECTOR_MEMBER: "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    LANDMARK_MEMBER: "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
}

# COCO-17 index -> (x, y) in pixels of skimage.data.astronaut(), marked by hand. COCO's left is the person's left
# (the right of the image).
ASTRONAUT_JOINTS = {
    0: (223, 126),  # nose (tip)
    1: (244, 103),  # left eye (pupil)
    2: (204, 101),  # right eye (pupil)
    5: (320, 256),  # left shoulder
    6: (100, 248),  # right shoulder
    8: (58, 435),  # right elbow
}

# The clips: frames of FRAME_W x FRAME_H; the photograph scaled by SCALE and moved by the offsets below.
FRAME_W, FRAME_H = 640, 360
SCALE = 0.75  # 512 -> 384 px, so that the elbow (y 435 -> 326) stays in a 360-row frame
PAN_FRAMES, PAN_STEP, PAN_X0 = 36, 6, 20  # one person: x offset 20, 26, ..., 230
TWO_FRAMES = 24  # two people: the photograph and its mirror image side by side


def cache_dir() -> Path:
    """Where built fixtures are kept between runs: $SKELJAX_TEST_CACHE, else ~/.cache/skeljax-test-fixtures."""
    return Path(os.environ.get("SKELJAX_TEST_CACHE") or os.path.expanduser("~/.cache/skeljax-test-fixtures"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _publish(path: Path, data: bytes) -> Path:
    """Write `data` to `path` under a temporary name first, so a cut run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def wheel_path(folder: Path) -> Path:
    """The mediapipe 0.10.21 wheel (for CPython 3.11 on Linux, whatever Python runs this), fetched with pip."""
    wheel = folder / WHEEL_NAME
    if not wheel.is_file():  # into a folder of this process's own, then renamed: test workers may race
        own = folder / f".download-{os.getpid()}"
        cmd = [sys.executable, "-m", "pip", "download", WHEEL_SPEC, "--no-deps", "--only-binary=:all:"]
        cmd += ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "-d", str(own), "-q"]
        subprocess.run(cmd, check=True)
        os.replace(own / WHEEL_NAME, wheel)
        own.rmdir()
    if _sha256(wheel.read_bytes()) != WHEEL_SHA256:
        wheel.unlink()
        raise RuntimeError(f"{wheel}: not the mediapipe 0.10.21 wheel this fixture was made from (sha256 differs)")
    return wheel


def landmark_model_with_metadata(tflite: bytes) -> bytes:
    """The legacy landmark model with TFLite metadata for an RGB image input normalised to [0, 1]."""
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as meta_fb
    from mediapipe.tasks.metadata import schema_py_generated as tflite_fb

    model = tflite_fb.ModelT.InitFromObj(tflite_fb.Model.GetRootAsModel(tflite, 0))
    norm = meta_fb.NormalizationOptionsT()
    norm.mean, norm.std = [0.0], [255.0]
    unit = meta_fb.ProcessUnitT()
    unit.optionsType, unit.options = meta_fb.ProcessUnitOptions.NormalizationOptions, norm
    props = meta_fb.ImagePropertiesT()
    props.colorSpace = meta_fb.ColorSpaceType.RGB
    content = meta_fb.ContentT()
    content.contentPropertiesType, content.contentProperties = meta_fb.ContentProperties.ImageProperties, props
    image = meta_fb.TensorMetadataT()
    image.name, image.content, image.processUnits = "image", content, [unit]
    subgraph = meta_fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [image]
    subgraph.outputTensorMetadata = [meta_fb.TensorMetadataT() for _ in model.subgraphs[0].outputs]
    metadata = meta_fb.ModelMetadataT()
    metadata.name, metadata.minParserVersion, metadata.subgraphMetadata = "pose_landmarks_detector", "1.0.0", [subgraph]
    builder = flatbuffers.Builder(0)
    builder.Finish(metadata.Pack(builder), b"M001")  # the metadata schema's file identifier
    buffer = tflite_fb.BufferT()
    buffer.data = np.frombuffer(bytes(builder.Output()), np.uint8)
    model.buffers.append(buffer)
    entry = tflite_fb.MetadataT()
    entry.name, entry.buffer = "TFLITE_METADATA", len(model.buffers) - 1  # the name the Tasks API looks up
    model.metadata.append(entry)
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def build_task(folder: Path) -> Path:
    """`folder/pose_landmarker_full_0.10.21.task`, built once from the wheel's two models."""
    task = folder / "pose_landmarker_full_0.10.21.task"
    if task.is_file():
        return task
    with zipfile.ZipFile(wheel_path(folder)) as wheel:
        models = {m: wheel.read(m) for m in MEMBER_SHA256}
    for member, data in models.items():
        if _sha256(data) != MEMBER_SHA256[member]:
            raise RuntimeError(f"{member}: sha256 differs from the file this fixture was made from")
    bundle = folder / f".bundle-{os.getpid()}.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_STORED) as z:  # stored: the Tasks API maps the models in place
        z.writestr("pose_detector.tflite", models[DETECTOR_MEMBER])
        z.writestr("pose_landmarks_detector.tflite", landmark_model_with_metadata(models[LANDMARK_MEMBER]))
    os.replace(bundle, task)
    return task


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def _scaled_photo(mirror: bool = False) -> np.ndarray:
    from PIL import Image

    photo = astronaut()[:, ::-1] if mirror else astronaut()
    size = round(photo.shape[0] * SCALE)
    return np.asarray(Image.fromarray(np.ascontiguousarray(photo)).resize((size, size), Image.BILINEAR))


def _background() -> np.ndarray:
    return np.full((FRAME_H, FRAME_W, 3), 200, np.uint8)


def one_person_frames() -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """The photograph scaled, cropped to the frame's height and panned right: frames and each frame's (dx, dy)."""
    photo = _scaled_photo()[:FRAME_H]
    frames, offsets = [], []
    for i in range(PAN_FRAMES):
        dx = PAN_X0 + PAN_STEP * i
        frame = _background()
        frame[:, dx : dx + photo.shape[1]] = photo[:, : FRAME_W - dx]
        frames.append(frame)
        offsets.append((dx, 0))
    return frames, offsets


def two_people_frames() -> list[np.ndarray]:
    """The photograph and its mirror image side by side: two people, the same pose mirrored."""
    left, right = _scaled_photo()[:FRAME_H], _scaled_photo(mirror=True)[:FRAME_H]
    frame = _background()
    frame[:, : left.shape[1]] = left
    frame[:, FRAME_W - right.shape[1] :] = right[:, : right.shape[1]]
    return [frame.copy() for _ in range(TWO_FRAMES)]


def empty_frames(n: int = 12) -> list[np.ndarray]:
    """A grey gradient, no person in it."""
    ramp = np.linspace(60, 220, FRAME_W, dtype=np.float32)[None, :, None]
    return [np.broadcast_to(ramp, (FRAME_H, FRAME_W, 3)).astype(np.uint8) for _ in range(n)]


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """An MPEG-4 (mp4v) file of RGB frames, through OpenCV; no frames gives a file with no video frame."""
    import cv2

    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (FRAME_W, FRAME_H))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {tmp} with the mp4v codec")
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    os.replace(tmp, path)
    return path


def expected_joints(offset: tuple[int, int]) -> dict[int, np.ndarray]:
    """The hand-marked joints in a clip frame whose photograph was moved by `offset`."""
    return {j: np.asarray(xy, np.float64) * SCALE + offset for j, xy in ASTRONAUT_JOINTS.items()}


def build_all(folder: Path) -> dict[str, Path]:
    """The `.task` and the clips in `folder` (clips are cheap and rewritten; the `.task` is built once)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "task": build_task(folder),
        "one_person": write_video(folder / "one_person.mp4", one_person_frames()[0]),
        "two_people": write_video(folder / "two_people.mp4", two_people_frames()),
        "no_person": write_video(folder / "no_person.mp4", empty_frames()),
        "no_frames": write_video(folder / "no_frames.mp4", []),
    }
