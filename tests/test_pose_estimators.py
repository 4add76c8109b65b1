"""Pose-estimator output as predict input: MMPose and OpenPose files written by hand, their expected model inputs
built here from the people's arrays, joint tables written out by name, tracking, selection and user errors."""

import json
import re

import numpy as np
import pytest

from skeljax import predict as P
from skeljax.data import pose_estimators as PE
from skeljax.models.model_dir import save_model
from skeljax.models.stgcn import stgcnpp_spec
from tests.helpers import SMALL, small_model

# Joint names, in each format's own order (OpenPose's doc/02_output.md, COCO's person keypoints).
COCO17 = (
    "nose l_eye r_eye l_ear r_ear l_shoulder r_shoulder l_elbow r_elbow l_wrist r_wrist l_hip r_hip l_knee r_knee "
    "l_ankle r_ankle"
).split()
OPENPOSE18 = (
    "nose neck r_shoulder r_elbow r_wrist l_shoulder l_elbow l_wrist r_hip r_knee r_ankle l_hip l_knee l_ankle "
    "r_eye l_eye r_ear l_ear"
).split()
BODY25 = (
    "nose neck r_shoulder r_elbow r_wrist l_shoulder l_elbow l_wrist mid_hip r_hip r_knee r_ankle l_hip l_knee "
    "l_ankle r_eye l_eye r_ear l_ear l_big_toe l_small_toe l_heel r_big_toe r_small_toe r_heel"
).split()
IMG = (720, 1280)  # (H, W)


def person(rng, cx, cy, frames, score=None):
    """A person near (cx, cy) px moving slowly: keypoints (T, 17, 2), scores (T, 17), float32."""
    base = np.stack([rng.uniform(-40, 40, 17), rng.uniform(-120, 120, 17)], -1)
    drift = np.arange(frames)[:, None, None] * np.array([1.5, 0.5])
    kp = (np.array([cx, cy]) + base + drift + rng.normal(0, 2, (frames, 17, 2))).astype(np.float32)
    sc = rng.uniform(0.3, 1.0, (frames, 17)) if score is None else np.full((frames, 17), score)
    return kp, sc.astype(np.float32)


def instance(kp, sc):
    lo, hi = kp.min(0) - 10, kp.max(0) + 10
    return {
        "keypoints": kp.tolist(),
        "keypoint_scores": sc.tolist(),
        "bbox": [[float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]],
        "bbox_score": 0.9,
    }


def write_mmpose(path, frames, first_id=1, listing=None):
    """frames[t] = [(kp (17, 2), score (17,)), ...] in listing order -> MMPose demo JSON."""
    info = [
        {"frame_id": first_id + t, "instances": [instance(k, s) for k, s in people]} for t, people in enumerate(frames)
    ]
    path.write_text(json.dumps({"meta_info": {"dataset_name": "coco", "num_keypoints": 17}, "instance_info": info}))
    return path


def write_openpose(folder, frames, names=BODY25):
    """frames[t] = [dict joint name -> (x, y, c)] -> an OpenPose --write_json folder (missing joints: 0, 0, 0)."""
    folder.mkdir(exist_ok=True)
    for t, people in enumerate(frames):
        flat = [[v for n in names for v in p.get(n, (0.0, 0.0, 0.0))] for p in people]
        doc = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": f} for f in flat]}
        (folder / f"clip_{t:012d}_keypoints.json").write_text(json.dumps(doc))
    return folder


def by_name(kp, sc, names=COCO17):
    return {n: (float(kp[j, 0]), float(kp[j, 1]), float(sc[j])) for j, n in enumerate(names)}


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """A small COCO-17 model as a Predictor (compiled once) and as a saved model directory."""
    d = tmp_path_factory.mktemp("pose_model")
    model = small_model(stgcnpp_spec(14, "coco", **SMALL), 4)
    save_model(str(d / "coco_model"), model)
    return {"predictor": P.from_model(model), "dir": d / "coco_model"}


# ------------------------------------------------------------------------------------------------------------------
# The key property: a file with at most two people in a stable order predicts exactly like the equivalent .npy.
# ------------------------------------------------------------------------------------------------------------------


def two_people(rng, frames=30, gap=range(10, 15)):
    a, b = person(rng, 350, 360, frames), person(rng, 950, 380, frames)
    kp, sc = np.stack([a[0], b[0]]), np.stack([a[1], b[1]])
    kp[1, list(gap)], sc[1, list(gap)] = 0, 0  # person 1 leaves for a while: zeros in the .npy, absent in the file
    return kp, sc


def test_mmpose_two_people_equal_npy(coco, tmp_path):
    kp, sc = two_people(np.random.default_rng(0))
    np.save(tmp_path / "clip.npy", np.concatenate([kp, sc[..., None]], -1))
    frames = [[(kp[m, t], sc[m, t]) for m in range(2) if sc[m, t].any()] for t in range(kp.shape[1])]
    js = write_mmpose(tmp_path / "clip.json", frames)
    pred = coco["predictor"]
    from_npy = P.predict(pred, str(tmp_path / "clip.npy"), img_shape=IMG)
    from_json = P.predict(pred, str(js), img_shape=IMG)
    np.testing.assert_array_equal(from_json.probs, from_npy.probs)
    assert from_npy.probs.max() > 0.1  # the sharpened head: a real comparison
    assert from_json.names == ["clip"] and from_json.tracks == [{"kept": [0, 1], "found": 2}]
    assert from_npy.tracks == [None]
    anno = P.read_input(js, layout="coco", img_shape=IMG)[0]
    np.testing.assert_array_equal(anno["keypoint"], kp)
    np.testing.assert_array_equal(anno["keypoint_score"], sc)
    assert anno["img_shape"] == IMG and anno["total_frames"] == 30
    # the inferencer's bare list of frames, counted from 0, reads the same
    bare = json.loads(js.read_text())["instance_info"]
    for f in bare:
        f["frame_id"] -= 1
    (tmp_path / "bare.json").write_text(json.dumps(bare))
    again = P.read_input(tmp_path / "bare.json", layout="coco", img_shape=IMG)[0]
    np.testing.assert_array_equal(again["keypoint"], kp)


def test_openpose_body25_two_people_equal_npy(coco, tmp_path):
    kp, sc = two_people(np.random.default_rng(1))
    np.save(tmp_path / "clip.npy", np.concatenate([kp, sc[..., None]], -1))
    frames = [[by_name(kp[m, t], sc[m, t]) for m in range(2) if sc[m, t].any()] for t in range(kp.shape[1])]
    for people in frames:  # BODY_25's extra joints carry values that must not leak into COCO-17
        for p in people:
            p.update(mid_hip=(5.0, 5.0, 0.9), l_heel=(7.0, 7.0, 0.9), neck=(9.0, 9.0, 0.9))
    folder = write_openpose(tmp_path / "clip_json", frames)
    pred = coco["predictor"]
    from_npy = P.predict(pred, str(tmp_path / "clip.npy"), img_shape=IMG)
    from_folder = P.predict(pred, str(folder), img_shape=IMG)
    np.testing.assert_array_equal(from_folder.probs, from_npy.probs)
    assert from_folder.names == ["clip_json"] and from_folder.tracks == [{"kept": [0, 1], "found": 2}]


# ------------------------------------------------------------------------------------------------------------------
# Tracking and selection.
# ------------------------------------------------------------------------------------------------------------------


def test_lowest_score_track_dropped(tmp_path):
    rng = np.random.default_rng(2)
    T = 12
    a, b, c = person(rng, 200, 300, T, 0.9), person(rng, 640, 300, T, 0.3), person(rng, 1080, 300, T, 0.6)
    people = {"a": a, "b": b, "c": c}
    orders = [["b", "a", "c"]] + [list(rng.permutation(["a", "b", "c"])) for _ in range(T - 1)]
    frames = [[(people[n][0][t], people[n][1][t]) for n in order] for t, order in enumerate(orders)]
    js = write_mmpose(tmp_path / "three.json", frames)
    # tracks are numbered by first appearance (b=0, a=1, c=2); b has the lowest summed score
    anno = PE.read_mmpose(js, "coco", img_shape=IMG)
    assert anno["track_ids"] == [1, 2] and anno["num_tracks"] == 3
    np.testing.assert_array_equal(anno["keypoint"], np.stack([a[0], c[0]]))
    np.testing.assert_array_equal(anno["keypoint_score"], np.stack([a[1], c[1]]))
    one = PE.read_mmpose(js, "coco", max_persons=1)
    assert one["track_ids"] == [1] and one["img_shape"] == PE.DEFAULT_IMG_SHAPE
    np.testing.assert_array_equal(one["keypoint"], a[0][None])
    every = P.read_input(js, layout="coco", max_persons=3)[0]
    np.testing.assert_array_equal(every["keypoint"], np.stack([b[0], a[0], c[0]]))


def test_person_missing_in_some_frames_keeps_its_track(tmp_path):
    rng = np.random.default_rng(3)
    T = 20
    a, b, late = person(rng, 300, 300, T), person(rng, 900, 300, T), person(rng, 640, 600, T)
    frames = []
    for t in range(T):
        listed = [] if 5 <= t < 10 else [(a[0][t], a[1][t])]  # a leaves for frames 5..9
        listed.insert(0 if t >= 10 else len(listed), (b[0][t], b[1][t]))  # and comes back listed after b
        if t >= 15:
            listed.append((late[0][t], late[1][t]))  # a third person comes in, far from both
        frames.append(listed)
    anno = PE.read_mmpose(write_mmpose(tmp_path / "gap.json", frames, first_id=0), "coco", max_persons=3)
    assert anno["track_ids"] == [0, 1, 2] and anno["num_tracks"] == 3
    want_a = a[0].copy()
    want_a[5:10] = 0
    np.testing.assert_array_equal(anno["keypoint"][0], want_a)
    np.testing.assert_array_equal(anno["keypoint_score"][0, 5:10], 0)
    np.testing.assert_array_equal(anno["keypoint"][1], b[0])
    np.testing.assert_array_equal(anno["keypoint"][2, :15], 0)
    np.testing.assert_array_equal(anno["keypoint"][2, 15:], late[0][15:])


def test_box_iou_and_greedy_matching():
    assert PE.box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert PE.box_iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
    p = lambda x: PE.Person(np.zeros((17, 2), np.float32), np.ones(17, np.float32), (x, 0.0, x + 10.0, 10.0))  # noqa: E731
    # frame 1: detection 0 overlaps both tracks, more so track 1; detection 1 overlaps only track 0
    tracks = PE.link_tracks([[p(0), p(20)], [p(17), p(4)]])
    assert [sorted(tr) for tr in tracks] == [[0, 1], [0, 1]]
    assert tracks[0][1].box[0] == 4 and tracks[1][1].box[0] == 17


def test_online_tracker_ids_frame_by_frame():
    """IouTracker (what live prediction uses) gives, one frame at a time, the ids link_tracks gives."""
    tracker = PE.IouTracker()
    assert tracker.update([(0, 0, 10, 10), (20, 0, 30, 10)]) == [0, 1]
    assert tracker.update([(17, 0, 27, 10), (4, 0, 14, 10)]) == [1, 0]  # listed in the other order
    assert tracker.update([]) == []  # nobody: the tracks keep their last boxes
    assert tracker.update([(100, 0, 110, 10), (6, 0, 16, 10)]) == [2, 0]  # a newcomer; track 0 picked up again
    assert tracker.update([(40, 0, 50, 10)]) == [3]  # IoU 0 with every last box: a new track


# ------------------------------------------------------------------------------------------------------------------
# Joint mappings, written out by name.
# ------------------------------------------------------------------------------------------------------------------


def named_person(names):
    """Distinct x, y, c per joint name."""
    return {n: (10.0 + 37 * j, 20.0 + 23 * j, round(0.2 + 0.03 * j, 3)) for j, n in enumerate(names)}


@pytest.mark.parametrize("source", [BODY25, OPENPOSE18], ids=["BODY_25", "COCO-18"])
def test_openpose_to_coco17_joint_by_joint(tmp_path, source):
    joints = named_person(source)
    anno = PE.read_openpose(write_openpose(tmp_path / "one", [[joints]], names=source), "coco", img_shape=IMG)
    assert anno["keypoint"].shape == (1, 1, 17, 2) and anno["img_shape"] == IMG
    for j, name in enumerate(COCO17):
        x, y, c = joints[name]
        assert tuple(anno["keypoint"][0, 0, j]) == (np.float32(x), np.float32(y)), name
        assert anno["keypoint_score"][0, 0, j] == np.float32(c), name


@pytest.mark.parametrize("source", [BODY25, OPENPOSE18], ids=["BODY_25", "COCO-18"])
def test_openpose_to_openpose18_joint_by_joint(tmp_path, source):
    joints = named_person(source)
    anno = PE.read_openpose(write_openpose(tmp_path / "one", [[joints]], names=source), "openpose", img_shape=IMG)
    assert anno["img_shape"] == (1, 1)  # image fractions, as Kinetics-skeleton holds them
    for j, name in enumerate(OPENPOSE18):
        x, y, c = joints[name]
        np.testing.assert_array_equal(anno["keypoint"][0, 0, j], np.float32([x, y]) / np.float32([IMG[1], IMG[0]]))
        assert anno["keypoint_score"][0, 0, j] == np.float32(c), name


def test_single_openpose_file_and_invisible_people(tmp_path):
    folder = write_openpose(tmp_path / "op", [[{}, named_person(BODY25)]])  # the first person has no joint
    anno = P.read_input(folder / "clip_000000000000_keypoints.json", layout="coco")[0]
    assert anno["frame_dir"] == "clip_000000000000_keypoints" and anno["num_tracks"] == 1


# ------------------------------------------------------------------------------------------------------------------
# Refusals and bad files.
# ------------------------------------------------------------------------------------------------------------------


def test_layouts_without_the_joints_are_refused(tmp_path):
    folder = write_openpose(tmp_path / "op", [[named_person(BODY25)]])
    with pytest.raises(
        ValueError,
        match=r"op: OpenPose's BODY_25 / COCO-18 keypoints map to COCO-17 or "
        r"OpenPose-18 models only; the checkpoint takes 25 joints x 3 channels \(layout 'nturgb\+d'\)",
    ):
        P.read_input(folder, layout="nturgb+d")
    rng = np.random.default_rng(4)
    kp, sc = person(rng, 300, 300, 1)
    js = write_mmpose(tmp_path / "mm.json", [[(kp[0], sc[0])]])
    with pytest.raises(ValueError, match="mm.json: MMPose's COCO-17 keypoints have no neck joint"):
        P.read_input(js, layout="openpose")
    with pytest.raises(ValueError, match="mm.json: MMPose's COCO-17 keypoints map to COCO-17 or OpenPose-18"):
        P.read_input(js, layout="nturgb+d")


def _bad(tmp_path, case):
    """(input path, the message it must give)."""
    good = named_person(BODY25)
    if case == "not_json":
        (tmp_path / "x.json").write_text("{not json")
        return tmp_path / "x.json", "x.json: cannot read as JSON"
    if case == "unknown_json":
        (tmp_path / "x.json").write_text(json.dumps({"frames": []}))
        return tmp_path / "x.json", "x.json: unknown JSON content"
    if case == "mmpose_16_joints":
        inst = {"keypoints": [[1.0, 2.0]] * 16, "keypoint_scores": [0.5] * 16}
        (tmp_path / "x.json").write_text(json.dumps({"instance_info": [{"frame_id": 1, "instances": [inst]}]}))
        return (
            tmp_path / "x.json",
            "x.json: frame 1: 'keypoints' (COCO-17 [x, y] pairs) must be numbers of shape (17, 2), got shape (16, 2)",
        )
    if case == "mmpose_wholebody":
        doc = {"meta_info": {"num_keypoints": 133}, "instance_info": [{"frame_id": 1, "instances": []}]}
        (tmp_path / "x.json").write_text(json.dumps(doc))
        return tmp_path / "x.json", "x.json: the pose model has 133 keypoints; only COCO-17 models are supported"
    if case == "mmpose_no_frames":
        (tmp_path / "x.json").write_text(json.dumps({"meta_info": {}, "instance_info": []}))
        return tmp_path / "x.json", "x.json: holds no frames"
    if case == "mmpose_duplicate_frames":
        inst = {"keypoints": [[1.0, 2.0]] * 17, "keypoint_scores": [0.5] * 17}
        doc = {"instance_info": [{"frame_id": 1, "instances": [inst]}, {"frame_id": 1, "instances": []}]}
        (tmp_path / "x.json").write_text(json.dumps(doc))
        return tmp_path / "x.json", "x.json: frame ids must be distinct integers"
    if case == "openpose_20_joints":
        folder = write_openpose(tmp_path / "op", [[good]])
        (folder / "clip_000000000001_keypoints.json").write_text(
            json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 60}]})
        )
        return folder, "clip_000000000001_keypoints.json: person 0: 'pose_keypoints_2d' must hold 25 (BODY_25) or 18"
    if case == "openpose_mixed":
        folder = write_openpose(tmp_path / "op", [[good]])
        write_openpose(tmp_path / "op18", [[named_person(OPENPOSE18)]], names=OPENPOSE18)
        (tmp_path / "op18" / "clip_000000000000_keypoints.json").rename(folder / "clip_000000000001_keypoints.json")
        return folder, "op: mixes BODY_25 and COCO-18 files"
    if case == "empty_folder":
        (tmp_path / "empty").mkdir()
        return tmp_path / "empty", "empty: no OpenPose *_keypoints.json files in this folder"
    if case == "nobody":
        return write_openpose(tmp_path / "op", [[], [{}]]), "op: no person detected in any of its 2 frames"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "not_json",
        "unknown_json",
        "mmpose_16_joints",
        "mmpose_wholebody",
        "mmpose_no_frames",
        "mmpose_duplicate_frames",
        "openpose_20_joints",
        "openpose_mixed",
        "empty_folder",
        "nobody",
    ],
)
def test_bad_files_name_the_file(tmp_path, case):
    path, message = _bad(tmp_path, case)
    with pytest.raises(ValueError, match=re.escape(message)):
        P.read_input(path, layout="coco")


# ------------------------------------------------------------------------------------------------------------------
# The command line.
# ------------------------------------------------------------------------------------------------------------------


def test_cli_reports_tracks(coco, tmp_path, capsys):
    rng = np.random.default_rng(5)
    T = 10
    a, b, c = person(rng, 200, 300, T, 0.9), person(rng, 640, 300, T, 0.3), person(rng, 1080, 300, T, 0.6)
    frames = [[(p[0][t], p[1][t]) for p in (b, a, c)] for t in range(T)]
    js = write_mmpose(tmp_path / "three.json", frames)
    args = ["--checkpoint", str(coco["dir"]), "--input", str(js), "--img-shape", "720", "1280", "--json"]
    assert P.main(args) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert record["tracks"] == {"kept": [1, 2], "found": 3} and len(record["top5"]) == 5
    assert "three: kept tracks [1, 2] of 3 (highest summed keypoint score)" in err
    # the same numbers as the Python API with the two kept people as an array
    arr = np.concatenate([np.stack([a[0], c[0]]), np.stack([a[1], c[1]])[..., None]], -1)
    ref = P.predict(coco["predictor"], arr, img_shape=IMG)
    assert [t["index"] for t in record["top5"]] == [t["index"] for t in ref.top_k(0)]
    assert [t["prob"] for t in record["top5"]] == pytest.approx([t["prob"] for t in ref.top_k(0)], rel=1e-6)
    assert P.main(args[:4] + ["--max-persons", "0"]) == 1
    assert "three.json: max_persons must be a positive integer, got 0" in capsys.readouterr().err
