"""`--stream` and `--out` with the real pose backend (mediapipe, the `.task` built from the 0.10.21 wheel) on the clips
made from scikit-image's astronaut photograph (skeljax.testing.pose_fixtures): the file streamed as fast as it goes
gives the windows and top-5 that `--video` gives, whole and per person; the annotated video has the clip's frames
and size, with the bone from the right shoulder to the nose drawn in track 0's colour where the backend found it."""

import json

import numpy as np
import pytest
from flax import nnx

from skeljax.models.model_dir import save_model
from skeljax.models.stgcn import Recognizer, stgcnpp_spec
from skeljax.predict import annotate, cli
from skeljax.predict import video as V
from skeljax.testing import pose_fixtures as pf

NO_VIDEO_EXTRA = 'the video extra (mediapipe, OpenCV) is not installed: pip install "skeljax[video]"'
SMALL = {"base_channels": 8, "num_stages": 4, "inflate_stages": (3,), "down_stages": (3,)}
NOSE, R_SHOULDER = 0, 6  # a COCO-17 bone (edge (6, 0)) whose ends the backend finds with scores near 1


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    pytest.importorskip("mediapipe", reason=NO_VIDEO_EXTRA)
    pytest.importorskip("cv2", reason=NO_VIDEO_EXTRA)
    files = {k: str(v) for k, v in pf.build_all(pf.cache_dir()).items()}
    model = Recognizer(stgcnpp_spec(60, "coco", **SMALL), rngs=nnx.Rngs(0))
    model.head.fc.weight[...] = model.head.fc.weight[...] * 200.0  # probabilities far from uniform
    files["model"] = save_model(str(tmp_path_factory.mktemp("live") / "coco_2d"), model)
    return files


def json_lines(argv, capsys) -> list[dict]:
    status = cli.main(argv)
    out, err = capsys.readouterr()
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()]


def same_prediction(a, b):
    assert [t["index"] for t in a] == [t["index"] for t in b]
    np.testing.assert_allclose([t["prob"] for t in a], [t["prob"] for t in b], rtol=1e-5, atol=1e-6)


def test_stream_of_a_file_gives_the_windows_of_video(fx, capsys):
    common = ["--pose", fx["task"], "--checkpoint", fx["model"], "--window", "12", "--stride", "6"]
    video = json_lines(["--video", fx["one_person"], "--json", *common], capsys)
    live = json_lines(["--stream", fx["one_person"], "--no-realtime", *common], capsys)
    assert [(w["start"], w["end"]) for w in video] == [(s, s + 12) for s in range(0, 25, 6)]  # 36 frames
    assert [r["frame"] for r in live] == [w["end"] - 1 for w in video]
    assert [r["time_s"] for r in live] == [round(round(1000 * (w["end"] - 1) / 25) / 1000, 3) for w in video]
    for r, w in zip(live, video):
        same_prediction(r["top5"], w["top5"])
        assert r["dropped"] == 0


def test_stream_per_person_gives_the_tracks_of_video(fx, capsys):
    common = ["--pose", fx["task"], "--checkpoint", fx["model"], "--window", "12", "--stride", "12", "--per-person"]
    video = json_lines(["--video", fx["two_people"], "--json", *common], capsys)
    live = json_lines(["--stream", fx["two_people"], "--no-realtime", *common], capsys)
    assert [(w["track"], w["start"], w["end"]) for w in video] == [(0, 0, 12), (1, 0, 12), (0, 12, 24), (1, 12, 24)]
    assert [r["frame"] for r in live] == [11, 23]
    for r in live:
        windows = [w for w in video if w["end"] - 1 == r["frame"]]
        assert [t["track"] for t in r["tracks"]] == [w["track"] for w in windows]
        for t, w in zip(r["tracks"], windows):
            same_prediction(t["top5"], w["top5"])


def test_annotated_video_shows_the_tracked_bone(fx, tmp_path, capsys):
    import cv2

    out = tmp_path / "annotated.mp4"
    argv = ["--video", fx["one_person"], "--pose", fx["task"], "--checkpoint", fx["model"], "--window", "12"]
    assert cli.main([*argv, "--out", str(out)]) == 0, capsys.readouterr().err
    anno = V.estimate_video(fx["one_person"], pose=fx["task"], progress=False)  # the same poses, estimated again
    cap, frames = cv2.VideoCapture(str(out)), []
    while (read := cap.read())[0]:
        frames.append(read[1][..., ::-1])
    assert len(frames) == 36 and frames[0].shape == (360, 640, 3)
    blue_on_bone = []
    for t, frame in enumerate(frames):
        a, b = anno["keypoint"][0, t, R_SHOULDER], anno["keypoint"][0, t, NOSE]
        assert anno["keypoint_score"][0, t, [R_SHOULDER, NOSE]].min() >= annotate.MIN_SCORE  # both drawn
        pts = np.rint([a + (b - a) * f for f in np.linspace(0.25, 0.75, 9)]).astype(int)  # away from the dots
        rgb = frame[pts[:, 1], pts[:, 0]].astype(int)
        blue_on_bone.append(np.mean(rgb[:, 2] - rgb[:, 0] > 40))  # track 0 is blue (31, 119, 180)
    assert np.mean(blue_on_bone) > 0.8


def test_stream_without_the_extra_is_one_line_before_any_download(fx, monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "mediapipe", None)  # as if `skeljax[video]` were not installed
    monkeypatch.setenv("SKELJAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SKELJAX_ZOO_MIRROR", "http://127.0.0.1:9")  # a download would fail differently
    assert cli.main(["--stream", fx["one_person"]]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("error: mediapipe-full: ") and 'pip install "skeljax[video]"' in err
    assert not (tmp_path / "cache").exists()
