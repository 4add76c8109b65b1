"""skeljax.pose: the BlazePose -> COCO-17 mapping, the interface's checks, backend errors, the pose rows of the
zoo, and mediapipe's joints on a real photograph against joints marked by hand."""

import io
import re
import sys
import types
import zipfile

import numpy as np
import pytest

from skeljax import layouts, zoo
from skeljax.pose import PersonPose, PoseError, base, estimators, make_estimator, mediapipe_backend, models, rtm_backend
from skeljax.testing import pose_fixtures as pf
from skeljax.zoo import __main__ as zoo_cli
from skeljax.zoo import download
from tests.http_server import Server

NO_VIDEO_EXTRA = 'the video extra (mediapipe, OpenCV) is not installed: pip install "skeljax[video]"'
NO_RTM_EXTRA = 'the rtm extra (rtmlib, onnxruntime) is not installed: pip install "skeljax[rtm]"'

# BlazePose's 33 landmark names (mediapipe's pose landmark model card), written out to check the index table by name.
BLAZEPOSE = (
    "nose left_eye_inner left_eye left_eye_outer right_eye_inner right_eye right_eye_outer left_ear right_ear "
    "mouth_left mouth_right left_shoulder right_shoulder left_elbow right_elbow left_wrist right_wrist left_pinky "
    "right_pinky left_index right_index left_thumb right_thumb left_hip right_hip left_knee right_knee left_ankle "
    "right_ankle left_heel right_heel left_foot_index right_foot_index"
).split()
# COCO's 17 keypoint names (the COCO keypoints task), written out.
COCO17 = (
    "nose left_eye right_eye left_ear right_ear left_shoulder right_shoulder left_elbow right_elbow left_wrist "
    "right_wrist left_hip right_hip left_knee right_knee left_ankle right_ankle"
).split()


def landmark(x, y, visibility):
    return types.SimpleNamespace(x=x, y=y, z=0.0, visibility=visibility, presence=1.0)


# ----------------------------------------------------------------------------------------------------------------
# The mapping and the interface (no extra needed).
# ----------------------------------------------------------------------------------------------------------------


def test_blazepose_indices_pick_the_coco_joints_by_name():
    assert [BLAZEPOSE[i] for i in mediapipe_backend.COCO17_FROM_BLAZEPOSE] == COCO17
    assert layouts.BUILTIN["coco"].num_joints == len(COCO17)


def test_landmarks_become_pixels_and_joints_outside_the_frame_score_zero():
    width, height = 640, 360
    lms = [landmark(0.01 * i, 0.02 * i, 0.5 + 0.01 * i) for i in range(33)]
    lms[27] = landmark(0.5, 1.3, 0.9)  # left ankle below the bottom edge, guessed with a high visibility
    lms[16] = landmark(-0.1, 0.5, 0.8)  # right wrist left of the frame
    p = mediapipe_backend.blazepose_to_coco(lms, width, height)
    assert p.keypoints.dtype == np.float32 and p.keypoints.shape == (17, 2) and p.scores.shape == (17,)
    for j, i in enumerate(mediapipe_backend.COCO17_FROM_BLAZEPOSE):
        if i in (27, 16):
            continue
        np.testing.assert_allclose(p.keypoints[j], [0.01 * i * width, 0.02 * i * height], rtol=1e-6)
        assert p.scores[j] == pytest.approx(0.5 + 0.01 * i)
    ankle, wrist = 15, 10  # COCO left ankle, right wrist
    assert p.scores[ankle] == 0 and p.scores[wrist] == 0
    np.testing.assert_allclose(p.keypoints[ankle], [320, height - 1])  # clipped to the frame
    np.testing.assert_allclose(p.keypoints[wrist], [0, 180])
    assert p.box[3] < height - 1  # the box spans only the joints found


def test_person_pose_checks_shapes_and_boxes_found_joints():
    kp = np.arange(34, dtype=np.float64).reshape(17, 2)
    scores = np.zeros(17)
    scores[[3, 5]] = 0.7
    p = PersonPose(kp, scores)
    assert p.keypoints.dtype == np.float32 and p.track_id is None
    assert p.box == (6.0, 7.0, 10.0, 11.0)
    assert PersonPose(kp, np.zeros(17)).box == (0.0, 1.0, 32.0, 33.0)  # nothing found: all joints
    with pytest.raises(ValueError, match=r"keypoints \(17, 2\)"):
        PersonPose(np.zeros((18, 2)), np.zeros(18))


def test_unknown_backend_and_bad_max_persons_are_errors():
    with pytest.raises(PoseError, match="openpose: unknown pose backend; expected one of mediapipe-lite"):
        make_estimator("openpose")
    with pytest.raises(PoseError, match="max_persons must be a positive integer"):
        make_estimator("mediapipe-full", max_persons=0)
    assert base.backend_of("x/model.TASK") == "mediapipe" and base.backend_of("rtmpose:a.onnx,b.onnx") == "rtm"


@pytest.mark.parametrize(
    "module, spec, extra",
    [("mediapipe", "mediapipe-full", "video"), ("rtmlib", "rtmo", "rtm"), ("rtmlib", "x.onnx", "rtm")],
)
def test_a_missing_extra_names_the_pip_command(monkeypatch, module, spec, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    message = rf'^{re.escape(spec)}: needs {module}, which is not installed: pip install "skeljax\[{extra}\]"$'
    with pytest.raises(base.MissingExtraError, match=message):
        make_estimator(spec)
    with pytest.raises(base.MissingExtraError, match=message):
        estimators.require_extra(spec)


def test_corrupt_model_files_are_named(tmp_path):
    junk = tmp_path / "junk.task"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(PoseError, match=f"{junk}: not a mediapipe .task model bundle"):
        mediapipe_backend.check_task_file(str(junk))
    other = tmp_path / "other.task"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("hand_detector.tflite", b"x")
    with pytest.raises(PoseError, match=f"{other}: not a mediapipe PoseLandmarker bundle: lacks pose_detector"):
        mediapipe_backend.check_task_file(str(other))
    bad_onnx = tmp_path / "rtmo.onnx"
    bad_onnx.write_bytes(b"<html>404</html>")
    with pytest.raises(PoseError, match=f"{bad_onnx}: not an ONNX model file"):
        rtm_backend.check_onnx_file(str(bad_onnx))
    with pytest.raises(PoseError, match="no such pose model file"):
        rtm_backend.check_onnx_file(str(tmp_path / "missing.onnx"))


# ----------------------------------------------------------------------------------------------------------------
# Pose models in the zoo.
# ----------------------------------------------------------------------------------------------------------------


def test_zoo_lists_the_pose_rows_after_the_action_models(capsys):
    assert zoo_cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    pose = [line.split() for line in lines if line.split()[1] == "pose"]
    assert [p[0] for p in pose] == [r.name for r in models.POSE_MODELS] and lines[-len(pose) :]
    assert pose[1] == [
        "pose_mediapipe_full",
        "pose",
        "https://storage.googleapis.com/mediapipe-models/pose_landmarker/pose_landmarker_full/float16/1/"
        "pose_landmarker_full.task",
    ]
    assert len(lines) == len(zoo.zoo_rows()) + len(models.POSE_MODELS)
    for spec, names in models.SPEC_MODELS.items():
        assert spec in base.POSE_SPECS and all(zoo.find_row(n).kind == "pose" for n in names)


@pytest.fixture
def server(monkeypatch, tmp_path):
    s = Server()
    monkeypatch.setenv("SKELJAX_ZOO_MIRROR", s.url)
    monkeypatch.setenv("SKELJAX_CACHE", str(tmp_path / "cache"))
    yield s
    s.close()


def _path_of(name: str) -> str:
    return "/" + zoo.find_row(name).url.split("/", 3)[3]


def test_pose_rows_download_through_the_mirror_and_unzip_onnx(server, tmp_path, capsys):
    task = b"PK-task-bytes" * 100
    onnx = b"\x08\x07onnx-model" * 50
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("rtmo-m_16xb16-600e_body7-640x640-39e78cc4_20231211/end2end.onnx", onnx)
        z.writestr("rtmo-m_16xb16-600e_body7-640x640-39e78cc4_20231211/pipeline.json", b"{}")
    server.files[_path_of("pose_mediapipe_full")] = task
    server.files[_path_of("pose_rtmo_m")] = buf.getvalue()

    assert zoo_cli.main(["get", "pose_mediapipe_full"]) == 0
    out, err = capsys.readouterr()
    path = tmp_path / "cache" / "pose_mediapipe_full" / "pose_landmarker_full.task"
    assert out.strip() == str(path) and path.read_bytes() == task
    assert "no published checksum; downloaded sha256" in err

    onnx_path = download.get("pose_rtmo_m", quiet=True)
    assert onnx_path == str(tmp_path / "cache" / "pose_rtmo_m" / download.POSE_ONNX)
    with open(onnx_path, "rb") as f:
        assert f.read() == onnx
    assert estimators.model_files("rtmo") == [onnx_path]  # cached: no second request
    assert sorted(server.requests) == sorted([_path_of("pose_mediapipe_full"), _path_of("pose_rtmo_m")])


def test_a_pose_zip_that_is_no_zip_is_deleted(server, tmp_path):
    server.files[_path_of("pose_rtmpose_m")] = b"<html>gateway error</html>"
    with pytest.raises(ValueError, match="not a zip file"):
        download.get("pose_rtmpose_m", quiet=True)
    folder = tmp_path / "cache" / "pose_rtmpose_m"
    assert not folder.exists() or not any(folder.iterdir())


# ----------------------------------------------------------------------------------------------------------------
# mediapipe on the photograph (the video extra).
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def task_file():
    pytest.importorskip("mediapipe", reason=NO_VIDEO_EXTRA)
    folder = pf.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return str(pf.build_task(folder))


# Pixels the estimate may be from the hand mark: 15 for the face and the shoulders. BlazePose puts the right elbow,
# inside a bulky suit sleeve, 25 px above the bend of the arm (the legacy 0.10.21 solution, run on the same photograph
# outside this suite, 22 px: the model, not the rebuilt bundle); 30 px still tells it from the wrist or shoulder.
TOLERANCE_PX = {0: 15.0, 1: 15.0, 2: 15.0, 5: 15.0, 6: 15.0, 8: 30.0}


def test_joints_on_the_photograph_are_near_the_hand_marks(task_file):
    est = make_estimator(task_file, max_persons=1)
    try:
        (person,) = est(pf.astronaut(), 0)
    finally:
        est.close()
    assert set(TOLERANCE_PX) == set(pf.ASTRONAUT_JOINTS)
    for joint, xy in pf.ASTRONAUT_JOINTS.items():
        dist = float(np.linalg.norm(person.keypoints[joint] - xy))
        assert dist <= TOLERANCE_PX[joint], (COCO17[joint], person.keypoints[joint], xy, dist)
        assert person.scores[joint] > 0.5


def test_a_task_file_with_broken_models_is_named(task_file, tmp_path):
    broken = tmp_path / "broken.task"
    with zipfile.ZipFile(broken, "w") as z:
        for member in mediapipe_backend.TASK_MEMBERS:
            z.writestr(member, b"\x00" * 64)
    with pytest.raises(PoseError, match=f"{broken}: mediapipe cannot load this pose model"):
        make_estimator(str(broken))


# ----------------------------------------------------------------------------------------------------------------
# rtmlib through onnxruntime, with ONNX models whose outputs are constants (the rtm extra).
# ----------------------------------------------------------------------------------------------------------------


def constant_onnx(path, input_shape, outputs):
    """An ONNX model taking `input_shape` and returning the arrays of `outputs` {name: array} whatever the input."""
    onnx = pytest.importorskip("onnx", reason="onnx (the test extra) writes the stand-in models")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),  # the input feeds every output, times zero
    ]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for name, value in outputs.items():
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), f"{name}_value"))
        nodes.append(helper.make_node("Add", [f"{name}_value", "nothing"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, np.shape(value)))
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)
    model = helper.make_model(
        helper.make_graph(nodes, "constant", [inp], outs, inits), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def simcc(peaks_x, peaks_y, value):
    """SimCC outputs (1, 17, 384) and (1, 17, 512) peaking at the given input pixels (split ratio 2)."""
    sx, sy = np.zeros((1, 17, 384)), np.zeros((1, 17, 512))
    for j in range(17):
        sx[0, j, int(2 * peaks_x[j])] = sy[0, j, int(2 * peaks_y[j])] = value[j]
    return {"simcc_x": sx, "simcc_y": sy}


def test_rtmpose_reads_the_detector_boxes_and_maps_back_to_pixels(tmp_path, capsys):
    pytest.importorskip("rtmlib", reason=NO_RTM_EXTRA)
    # YOLOX with NMS inside: (1, N, 5) boxes in the 640 x 640 input; a 360 x 640 frame is not rescaled (ratio 1).
    dets = [[[100, 50, 200, 300, 0.9], [300, 60, 420, 340, 0.8], [10, 10, 20, 20, 0.2]]]
    detector = constant_onnx(tmp_path / "yolox.onnx", [1, 3, 640, 640], {"dets": dets})
    peaks_x = [96 if j % 2 == 0 else 0 for j in range(17)]  # the centre column or the left edge of the input
    peaks_y = [128 if j % 3 else 64 for j in range(17)]
    values = [1.7] + [0.8] * 16  # SimCC maxima above 1 are clipped
    pose = constant_onnx(tmp_path / "rtmpose.onnx", [1, 3, 256, 192], simcc(peaks_x, peaks_y, values))
    est = make_estimator(f"rtmpose:{detector},{pose}", max_persons=2)
    assert capsys.readouterr().out == ""  # rtmlib's "load ... backend" lines stay off stdout
    people = est(np.zeros((360, 640, 3), np.uint8), 0)
    assert len(people) == 2  # the third box scores below YOLOX's 0.3
    for person, (x1, y1, x2, y2) in zip(people, [b[:4] for b in dets[0][:2]]):
        # MMPose's top-down box: centre, size x 1.25, widened or heightened to the input's 192:256
        w, h = (x2 - x1) * 1.25, (y2 - y1) * 1.25
        w, h = (w, w / 0.75) if w > h * 0.75 else (h * 0.75, h)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        expected = np.stack([np.asarray(peaks_x) / 192 * w + cx - w / 2, np.asarray(peaks_y) / 256 * h + cy - h / 2], 1)
        np.testing.assert_allclose(person.keypoints, expected, atol=1e-3)
        np.testing.assert_allclose(person.scores, [1.0] + [0.8] * 16, rtol=1e-6)
    assert len(make_estimator(f"rtmpose:{detector},{pose}", max_persons=1)(np.zeros((360, 640, 3), np.uint8), 0)) == 1
    est.close()


def test_rtmo_keeps_confident_people_and_finds_nobody_in_an_empty_result(tmp_path):
    pytest.importorskip("rtmlib", reason=NO_RTM_EXTRA)
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 600, size=(1, 2, 17, 2))
    scores = np.full((1, 2, 17, 1), 0.6)
    dets = [[[10, 10, 200, 300, 0.9], [300, 20, 500, 340, 0.85]]]
    model = constant_onnx(
        tmp_path / "rtmo.onnx", [1, 3, 640, 640], {"dets": dets, "poses": np.concatenate([kp, scores], -1)}
    )
    people = make_estimator(model, max_persons=2)(np.zeros((640, 640, 3), np.uint8), 0)
    assert len(people) == 2
    np.testing.assert_allclose(np.stack([p.keypoints for p in people]), kp[0], rtol=1e-5)
    np.testing.assert_allclose(people[0].scores, np.full(17, 0.6), rtol=1e-6)
    unsure = [[[10, 10, 200, 300, 0.5]]]  # below RTMO's 0.7: rtmlib returns one all-zero person
    model = constant_onnx(
        tmp_path / "rtmo_none.onnx", [1, 3, 640, 640], {"dets": unsure, "poses": np.ones((1, 1, 17, 3))}
    )
    assert make_estimator(model, max_persons=2)(np.zeros((640, 640, 3), np.uint8), 0) == []


def test_a_corrupt_onnx_model_is_named(tmp_path):
    pytest.importorskip("rtmlib", reason=NO_RTM_EXTRA)
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(b"\x08\x08" + b"\xff" * 100)  # starts like an ONNX file, then garbage
    with pytest.raises(PoseError, match=f"{bad}: onnxruntime cannot load this pose model"):
        make_estimator(str(bad))
