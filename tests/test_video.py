"""skeljax-predict --video and skeljax.predict.video: frames decoded, people tracked, COCO-17 pixels predicted,
--save-pose round trips, --per-person, and every bad input gives one error line and writes nothing.

The clips are made from scikit-image's astronaut photograph (skeljax.testing.pose_fixtures) and the pose model is
mediapipe's PoseLandmarker rebuilt offline from the mediapipe 0.10.21 wheel; the action models are small random ones
(the zoo is offline here)."""

import json
import sys

import numpy as np
import pytest
from flax import nnx

from skeljax.data import pose_estimators
from skeljax.models.model_dir import save_model
from skeljax.models.stgcn import Recognizer, stgcnpp_spec
from skeljax.pose import PoseError, video_io
from skeljax.predict import cli, predict, window_annotation, window_spans
from skeljax.predict import video as V
from skeljax.testing import pose_fixtures as pf

NO_VIDEO_EXTRA = 'the video extra (mediapipe, OpenCV) is not installed: pip install "skeljax[video]"'
SMALL = {"base_channels": 8, "num_stages": 4, "inflate_stages": (3,), "down_stages": (3,)}
FACE = (0, 1, 2)  # nose, left eye, right eye: BlazePose finds them within 15 px in every framing tried


@pytest.fixture(scope="module")
def fx():
    pytest.importorskip("mediapipe", reason=NO_VIDEO_EXTRA)
    pytest.importorskip("cv2", reason=NO_VIDEO_EXTRA)
    files = pf.build_all(pf.cache_dir())
    return {k: str(v) for k, v in files.items()}


def small_model(layout: str, seed: int) -> Recognizer:
    m = Recognizer(stgcnpp_spec(60, layout, **SMALL), rngs=nnx.Rngs(seed))
    m.head.fc.weight[...] = m.head.fc.weight[...] * 200.0  # probabilities far from uniform
    m.eval()
    return m


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("video_models")
    return {
        "coco": save_model(str(d / "coco_2d"), small_model("coco", 0)),
        "ntu": save_model(str(d / "ntu_3d"), small_model("nturgb+d", 1)),
    }


@pytest.fixture(scope="module")
def poses(fx):
    """The tracked annotation of each clip (estimated once per module)."""
    return {
        name: V.estimate_video(fx[name], pose=fx["task"], max_persons=2, progress=False)
        for name in ("one_person", "two_people")
    }


def run_cli(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


# ----------------------------------------------------------------------------------------------------------------
# Decoding.
# ----------------------------------------------------------------------------------------------------------------


def test_frames_come_back_as_rgb_with_the_container_rate_and_size(fx):
    source, _ = pf.one_person_frames()
    with video_io.open_video(fx["one_person"]) as video:
        info = video.info
        frames = list(video)
    assert (info.fps, info.width, info.height, info.frame_count, info.live) == (25.0, 640, 360, 36, False)
    assert info.img_shape == (360, 640) and len(frames) == 36
    assert [f.timestamp_ms for f in frames[:4]] == [0, 40, 80, 120] and [f.index for f in frames] == list(range(36))
    got = frames[5].rgb.astype(np.int32)
    assert got.shape == (360, 640, 3) and got.dtype == np.int32
    as_written = np.abs(got - source[5]).mean()
    channels_swapped = np.abs(got - source[5][..., ::-1]).mean()
    assert as_written < 6 and channels_swapped > 3 * as_written  # lossy MPEG-4, but RGB in RGB order


def test_what_is_no_video_is_one_named_error(fx, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cases = {
        str(tmp_path / "missing.mp4"): "no such file",
        str(tmp_path): "is a folder, not a video file",
        str(empty): r"is empty \(0 bytes\), not a video",
        str(text): "OpenCV cannot read it as a video",
        fx["no_frames"]: "OpenCV cannot read it as a video .* zero-length recording",
        "99": "camera 99: cannot open the camera",
    }
    for source, problem in cases.items():
        with pytest.raises(PoseError, match=problem):
            video_io.open_video(source)


# ----------------------------------------------------------------------------------------------------------------
# Poses and tracks.
# ----------------------------------------------------------------------------------------------------------------


def test_one_person_is_one_track_with_the_face_within_15_px_in_every_frame(poses):
    anno = poses["one_person"]
    _, offsets = pf.one_person_frames()
    assert anno["keypoint"].shape == (1, 36, 17, 2) and anno["keypoint_score"].shape == (1, 36, 17)
    assert (anno["track_ids"], anno["num_tracks"], anno["img_shape"], anno["fps"]) == ([0], 1, (360, 640), 25.0)
    for t, offset in enumerate(offsets):
        marks = pf.expected_joints(offset)
        for j in FACE:
            dist = float(np.linalg.norm(anno["keypoint"][0, t, j] - marks[j]))
            assert dist <= 15.0, (t, j, dist)
            assert anno["keypoint_score"][0, t, j] > 0.5


def test_two_people_are_two_tracks_each_on_its_own_side(poses):
    anno = poses["two_people"]
    assert (anno["track_ids"], anno["num_tracks"]) == ([0, 1], 2)
    nose_x = anno["keypoint"][:, :, 0, 0]  # (track, frame)
    assert (anno["keypoint_score"][:, :, 0] > 0.5).all()
    assert (nose_x[0] < pf.FRAME_W / 2).all() and (nose_x[1] > pf.FRAME_W / 2).all()
    # the frame is the photograph and its mirror image: the noses mirror each other about the centre column
    np.testing.assert_allclose(nose_x[0] + nose_x[1], pf.FRAME_W - 1, atol=15)


def test_max_persons_one_follows_one_of_two_people_throughout(fx, poses):
    """The backend looks for --max-persons people per frame; mediapipe's VIDEO mode keeps following the one it
    found, so one person of the two is one track on one side of the frame in every frame."""
    one = V.estimate_video(fx["two_people"], pose=fx["task"], max_persons=1, progress=False)
    assert (one["track_ids"], one["num_tracks"], one["keypoint"].shape) == ([0], 1, (1, 24, 17, 2))
    nose_x = one["keypoint"][0, :, 0, 0]
    assert (one["keypoint_score"][0, :, 0] > 0.5).all()
    assert (nose_x < pf.FRAME_W / 2).all() or (nose_x > pf.FRAME_W / 2).all()


# ----------------------------------------------------------------------------------------------------------------
# Prediction.
# ----------------------------------------------------------------------------------------------------------------


def test_windows_predict_the_tracked_pixels_of_the_video(fx, models, poses):
    result = V.predict_video(fx["one_person"], models["coco"], pose=fx["task"], window=16, stride=8, progress=False)
    anno = result.annotation
    np.testing.assert_array_equal(anno["keypoint"], poses["one_person"]["keypoint"])
    spans = window_spans(36, 16, 8)
    assert [(w.start, w.end) for w in result.windows] == spans == [(0, 16), (8, 24), (16, 32), (20, 36)]
    expected = predict(models["coco"], [window_annotation(anno, s, e) for s, e in spans])
    for i, w in enumerate(result.windows):
        np.testing.assert_allclose(w.probs, expected.probs[i], rtol=1e-6)
        assert w.top5 == expected.top_k(i, 5)


def test_save_pose_reads_back_to_the_same_prediction(fx, models, tmp_path, capsys):
    saved = tmp_path / "clip_pose.json"
    common = ["--checkpoint", models["coco"], "--json"]
    status, from_video, err = run_cli(
        ["--video", fx["two_people"], "--pose", fx["task"], "--save-pose", str(saved)] + common, capsys
    )
    assert status == 0, err
    assert "kept tracks [0, 1] of 2" in err
    status, from_file, err = run_cli(["--input", str(saved)] + common, capsys)
    assert status == 0, err
    assert json.loads(from_video) == json.loads(from_file)
    assert set(json.loads(from_video)) == {"top5", "tracks"}
    anno = pose_estimators.read_mmpose(saved)
    video_anno = V.estimate_video(fx["two_people"], pose=fx["task"], progress=False)
    for key in ("keypoint", "keypoint_score"):
        np.testing.assert_array_equal(anno[key], video_anno[key])
    assert anno["img_shape"] == (360, 640) and anno["track_ids"] == [0, 1]
    meta = json.loads(saved.read_text())["meta_info"]
    assert meta["num_keypoints"] == 17 and meta["fps"] == 25.0


def test_per_person_predicts_each_track_alone(fx, models, poses, capsys):
    result = V.predict_video(
        fx["two_people"], models["coco"], pose=fx["task"], window=12, per_person=True, progress=False
    )
    anno = result.annotation
    assert [(w.track, w.start, w.end) for w in result.windows] == [(0, 0, 12), (1, 0, 12), (0, 12, 24), (1, 12, 24)]
    for w in result.windows:
        alone = {  # the track's own arrays, written out: one person, the second left to the pipeline's zeros
            "frame_dir": "alone",
            "keypoint": anno["keypoint"][w.track : w.track + 1, w.start : w.end],
            "keypoint_score": anno["keypoint_score"][w.track : w.track + 1, w.start : w.end],
            "img_shape": (360, 640),
            "total_frames": w.end - w.start,
        }
        expected = predict(models["coco"], alone)
        np.testing.assert_allclose(w.probs, expected.probs[0], rtol=1e-6)
    assert not np.allclose(result.windows[0].probs, result.windows[1].probs)  # two poses, two predictions

    argv = ["--video", fx["two_people"], "--pose", fx["task"], "--checkpoint", models["coco"], "--per-person", "--json"]
    status, out, err = run_cli(argv, capsys)
    assert status == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["track"] for r in records] == [0, 1] and all(set(r) == {"track", "start", "end", "top5"} for r in records)
    assert [(r["start"], r["end"]) for r in records] == [(0, 24), (0, 24)]


# ----------------------------------------------------------------------------------------------------------------
# Bad input: one error line, nothing written.
# ----------------------------------------------------------------------------------------------------------------


def assert_one_error(argv, capsys, saved, *fragments):
    status, out, err = run_cli(argv + ["--save-pose", str(saved)], capsys)
    lines = error_lines(err)
    assert status == 1 and len(lines) == 1 and out == "", err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not saved.exists() and not list(saved.parent.glob(f".{saved.name}*"))


def test_a_3d_model_is_refused_naming_the_models_that_fit(fx, models, tmp_path, capsys):
    argv = ["--video", fx["one_person"], "--pose", fx["task"], "--checkpoint", models["ntu"]]
    assert_one_error(argv, capsys, tmp_path / "p.json", models["ntu"], "2D COCO-17", "zoo:stgcnpp_ntu60_xsub_2d_j")


def test_bad_videos_and_pose_models_are_one_error_line(fx, models, tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 20)
    broken = tmp_path / "broken.task"
    broken.write_bytes(b"\x00" * 1000)
    cases = [
        (fx["no_person"], fx["task"], (fx["no_person"], "no person detected in any of its 12 frames")),
        (fx["no_frames"], fx["task"], (fx["no_frames"], "zero-length recording")),
        (str(text), fx["task"], (str(text),)),
        (fx["one_person"], str(broken), (str(broken), "not a mediapipe .task model bundle")),
    ]
    for video, pose, fragments in cases:
        argv = ["--video", video, "--pose", pose, "--checkpoint", models["coco"]]
        assert_one_error(argv, capsys, tmp_path / "p.json", *fragments)


def test_video_flags_are_checked_before_anything_runs(capsys):
    for argv, message in [
        (["--input", "x.npy", "--per-person", "--checkpoint", "m"], "--per-person needs --video"),
        (["--input", "x.npy", "--video", "v.mp4"], "give one of --input, --video"),
        (["--video", "v.mp4", "--img-shape", "10", "10"], "--img-shape does not apply to --video"),
        (["--input", "x.npy"], "--checkpoint is required"),
    ]:
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_a_missing_extra_fails_before_the_default_checkpoint_downloads(fx, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # as if `skeljax[video]` were not installed
    monkeypatch.setenv("SKELJAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SKELJAX_ZOO_MIRROR", "http://127.0.0.1:9")  # a download would fail differently
    assert_one_error(["--video", fx["one_person"]], capsys, tmp_path / "p.json", 'pip install "skeljax[video]"')
    assert not (tmp_path / "cache").exists()


def test_an_openpose_18_model_is_refused_too():
    from skeljax.models.stgcn import stgcn_original_spec
    from skeljax.predict import PredictError, as_predictors

    kinetics = Recognizer(stgcn_original_spec(400, "openpose"), rngs=nnx.Rngs(0))
    with pytest.raises(PredictError, match=r"takes 18 joints .*layout 'openpose'.*only 2D COCO-17 models"):
        V.require_coco_2d(as_predictors(kinetics, None, None, False))
