"""Kinetics-skeleton: the JSON reader, label files, the TFDS builder, the original ST-GCN recipe, OpenPose-18 bones.

Expected arrays come from loops written here over the JSON content, in the original feeder's own (C, T, V, M) layout.
"""

import json

import numpy as np
import pytest

from skeljax import layouts
from skeljax.data import (
    KINETICS400_CLASSES,
    KineticsSkeletonError,
    joint_to_bone,
    make_pipeline,
    make_rng,
    read_kinetics_skeleton,
    read_label_file,
)

V = 18
# ST-GCN's `openpose` neighbour links (net/utils/graph.py of st-gcn), written out again as the reference.
OPENPOSE_LINKS = [
    (4, 3),
    (3, 2),
    (7, 6),
    (6, 5),
    (13, 12),
    (12, 11),
    (10, 9),
    (9, 8),
    (11, 5),
    (8, 2),
    (5, 1),
    (2, 1),
    (0, 1),
    (15, 0),
    (14, 0),
    (17, 15),
    (16, 14),
]


def person(seed, zero_joints=(), score_scale=1.0):
    """One skeleton entry with 3-decimal coordinates as in the release; listed joints get score 0."""
    r = np.random.RandomState(seed)
    pose = [round(float(x), 3) for x in r.uniform(0.05, 0.95, 2 * V)]
    score = [0.0 if v in zero_joints else round(float(x) * score_scale, 3) for v, x in enumerate(r.uniform(0.1, 1, V))]
    return {"pose": pose, "score": score}


def video(frames, label_index=7, label="arm wrestling"):
    return {
        "data": [{"frame_index": t, "skeleton": people} for t, people in frames],
        "label": label,
        "label_index": label_index,
    }


def write(path, obj):
    path.write_text(json.dumps(obj))
    return path


# Frame indices start at 1 as in the release; frame 3 is missing, frame 2 lists nobody, frame 4 lists seven people
# (the two highest-scoring ones last, beyond the five the original reads), frame 1 has joints with score 0 and two
# people with exactly equal summed scores (a tie keeps the listed order).
TIE = person(5)
FRAMES = [
    (1, [person(1, zero_joints=(0, 4, 17)), {"pose": person(2)["pose"], "score": TIE["score"]}, TIE]),
    (2, []),
    (4, [person(10 + k, score_scale=0.5) for k in range(5)] + [person(20), person(21)]),
    (5, [person(30)]),
]


@pytest.fixture
def clip(tmp_path):
    return write(tmp_path / "abc_123.json", video(FRAMES))


def test_reader_keeps_the_file_as_it_is(clip):
    a = read_kinetics_skeleton(clip)
    assert (a["frame_dir"], a["label"], a["label_name"], a["total_frames"]) == ("abc_123", 7, "arm wrestling", 6)
    assert a["img_shape"] == a["original_shape"] == (1, 1)
    assert a["keypoint"].dtype == a["keypoint_score"].dtype == np.float32
    want_kp, want_score = np.zeros((7, 6, V, 2), np.float32), np.zeros((7, 6, V), np.float32)
    for t, people in FRAMES:
        for m, p in enumerate(people):
            for v in range(V):
                want_kp[m, t, v] = p["pose"][2 * v], p["pose"][2 * v + 1]
                want_score[m, t, v] = p["score"][v]
    np.testing.assert_array_equal(a["keypoint"], want_kp)
    np.testing.assert_array_equal(a["keypoint_score"], want_score)
    # at most max_people: the first ones listed
    b = read_kinetics_skeleton(clip, max_people=5)
    np.testing.assert_array_equal(b["keypoint"], want_kp[:5])
    np.testing.assert_array_equal(b["keypoint_score"], want_score[:5])


def test_file_without_labels_and_frames_without_people(tmp_path):
    a = read_kinetics_skeleton(write(tmp_path / "demo.json", {"data": [{"frame_index": 0, "skeleton": []}]}))
    assert (a["label"], a["label_name"], a["keypoint"].shape, a["total_frames"]) == (-1, "", (1, 1, V, 2), 1)
    assert not a["keypoint"].any() and not a["keypoint_score"].any()


def original_test_input(vid, num_frames=300, person_in=5, person_out=2):
    """The original feeder's steps, loop by loop, in its (C, T, V, M) layout -> (1, M, T, V, C) float32."""
    data = np.zeros((3, num_frames, V, person_in))
    for frame in vid["data"]:
        t = frame["frame_index"]
        for m, p in enumerate(frame["skeleton"][:person_in]):
            for v in range(V):
                data[0, t, v, m], data[1, t, v, m], data[2, t, v, m] = (
                    p["pose"][2 * v],
                    p["pose"][2 * v + 1],
                    p["score"][v],
                )
    for t in range(num_frames):
        for v in range(V):
            for m in range(person_in):
                for c in (0, 1):
                    data[c, t, v, m] = 0.0 if data[2, t, v, m] == 0 else data[c, t, v, m] - 0.5
    out = np.zeros((3, num_frames, V, person_out))
    for t in range(num_frames):
        total = [sum(data[2, t, v, m] for v in range(V)) for m in range(person_in)]
        order = sorted(range(person_in), key=lambda m: -total[m])  # Python's sort is stable
        for k in range(person_out):
            out[:, t, :, k] = data[:, t, :, order[k]]
    return out.astype(np.float32).transpose(3, 1, 2, 0)[None]


def test_original_test_input_matches_the_feeder_loop(clip):
    want = original_test_input(video(FRAMES))
    got = make_pipeline("openpose", "j", mode="test", recipe="stgcn_original")(read_kinetics_skeleton(clip))
    assert got.shape == (1, 2, 300, V, 3) and got.dtype == np.float32
    # the reader stores float32 coordinates (the feeder subtracts 0.5 from the JSON's doubles): one float32 rounding
    np.testing.assert_allclose(got, want, rtol=0, atol=6e-8)
    np.testing.assert_array_equal(got[..., 2], want[..., 2])
    # the checks the loop encodes, spelled out: frame 4 keeps persons 0..4 only, ranked; frame 1 keeps the tie order
    s4 = [sum(p["score"]) for p in FRAMES[2][1][:5]]
    np.testing.assert_allclose(got[0, 0, 4, :, 2], FRAMES[2][1][int(np.argmax(s4))]["score"], rtol=1e-6)
    assert sum(TIE["score"]) > sum(FRAMES[0][1][0]["score"])
    np.testing.assert_allclose(got[0, 0, 1, :, 0], np.array(person(2)["pose"][0::2]) - 0.5, atol=6e-8)
    np.testing.assert_allclose(got[0, 1, 1, :, 0], np.array(TIE["pose"][0::2]) - 0.5, atol=6e-8)
    assert not got[:, :, [0, 2, 3]].any() and not got[:, :, 6:].any()


def test_original_val_equals_test_and_checks_length(tmp_path, clip):
    anno = read_kinetics_skeleton(clip)
    test = make_pipeline("openpose", "j", mode="test", recipe="stgcn_original")
    np.testing.assert_array_equal(make_pipeline("openpose", "j", mode="val", recipe="stgcn_original")(anno), test(anno))
    long = read_kinetics_skeleton(write(tmp_path / "long.json", video([(300, [person(0)])])))
    with pytest.raises(ValueError, match="sample long has 301 frames; the original feeder holds 300"):
        test(long)
    with pytest.raises(ValueError, match="joint input only"):
        make_pipeline("openpose", "b", recipe="stgcn_original")
    with pytest.raises(ValueError, match="no input pipeline 'stgcn_original'"):
        make_pipeline("coco", "j", recipe="stgcn_original")


def reference_random_move(data, rng):
    """`random_move` with one segment, per frame as a 2x2 matrix on (x, y) of (C, T, V, M) data."""
    _, T, Vn, M = data.shape
    ends = [
        rng.choice(c, 2)
        for c in (
            [-10.0, -5.0, 0.0, 5.0, 10.0],
            [0.9, 1.0, 1.1],
            [-0.2, -0.1, 0.0, 0.1, 0.2],
            [-0.2, -0.1, 0.0, 0.1, 0.2],
        )
    ]
    out = data.copy()
    for t in range(T):
        w = t / (T - 1) if T > 1 else 0.0
        a, s, tx, ty = (e[0] + (e[1] - e[0]) * w for e in ends)
        a = a * np.pi / 180
        rot = np.array([[np.cos(a) * s, -np.sin(a) * s], [np.sin(a) * s, np.cos(a) * s]])
        xy = rot @ data[0:2, t].reshape(2, -1)
        out[0, t], out[1, t] = (xy[0] + tx).reshape(Vn, M), (xy[1] + ty).reshape(Vn, M)
    return out


@pytest.mark.parametrize("seed", [0, 3, 2**40])
def test_original_training_crop_and_move(clip, seed):
    anno = read_kinetics_skeleton(clip)
    full = original_test_input(video(FRAMES))[0].transpose(3, 1, 2, 0)  # (C, T, V, M)
    got = make_pipeline("openpose", "j", mode="train", recipe="stgcn_original")(anno, seed=seed)
    assert got.shape == (1, 2, 150, V, 3)
    rng = make_rng(seed)
    begin = rng.randint(0, 151)  # random.randint(0, 300 - 150): both ends included
    want = reference_random_move(full[:, begin : begin + 150].astype(np.float64), rng).astype(np.float32)
    np.testing.assert_allclose(got[0], want.transpose(3, 1, 2, 0), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got[0, ..., 2], want[2].transpose(2, 0, 1))  # scores are not moved
    # the same seed gives the same crop and move
    again = make_pipeline("openpose", "j", mode="train", recipe="stgcn_original")(anno, seed=seed)
    np.testing.assert_array_equal(got, again)


def test_random_choose_pads_short_input():
    from skeljax.data import RandomChoose

    kp = np.arange(2 * 4 * V * 3, dtype=np.float32).reshape(2, 4, V, 3) + 1
    out = RandomChoose(10)({"keypoint": kp, "total_frames": 4}, rng=make_rng(1))
    begin = make_rng(1).randint(0, 7)
    want = np.zeros((2, 10, V, 3), np.float32)
    want[:, begin : begin + 4] = kp
    np.testing.assert_array_equal(out["keypoint"], want)
    assert out["total_frames"] == 10
    # longer input: every window start from 0 to T - size (inclusive) occurs
    starts = {
        int(RandomChoose(3)({"keypoint": kp, "total_frames": 4}, rng=make_rng(s))["keypoint"][0, 0, 0, 0])
        for s in range(40)
    }
    assert starts == {kp[0, 0, 0, 0], kp[0, 1, 0, 0]}


def test_openpose_bones_follow_stgcn_links():
    kp = np.random.RandomState(0).rand(2, 3, V, 3)
    parent = {child: par for child, par in OPENPOSE_LINKS}
    want = np.zeros_like(kp)
    for v in range(V):
        p = parent.get(v, v)
        want[..., v, :2] = kp[..., v, :2] - kp[..., p, :2]
        want[..., v, 2] = (kp[..., v, 2] + kp[..., p, 2]) / 2
    np.testing.assert_allclose(joint_to_bone(kp, "openpose"), want.astype(np.float32), rtol=1e-6)
    lay = layouts.get("openpose")
    assert sorted(lay.inward) == sorted(OPENPOSE_LINKS) and lay.center == 1 and lay.num_joints == V
    assert layouts.by_joints(V) is lay and {"pyskl", "vanilla", "stgcn_original"} <= set(lay.recipes)


def test_pyskl_recipe_on_kinetics_bones(clip):
    anno = read_kinetics_skeleton(clip)
    got = make_pipeline("openpose", "b", mode="test", recipe="vanilla")(anno)
    # vanilla: PreNormalize2D with img_shape (1, 1): x -> 2x - 1, zero at score <= 0.01, then bones, zero padding
    m0 = np.concatenate([anno["keypoint"][:2] * 2 - 1, anno["keypoint_score"][:2, ..., None]], -1)
    m0[m0[..., 2] <= 0.01, :2] = 0
    bone = joint_to_bone(m0, "openpose")
    np.testing.assert_allclose(got[0, :, :6], bone, rtol=1e-6, atol=1e-7)
    assert not got[0, :, 6:].any()


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object with 'data', got list"),
        ('{"label_index": 1}', "no 'data' key"),
        ('{"data": []}', "'data' holds no frame"),
        ('{"data": [{"skeleton": []}]}', r"data\[0\] has no 'frame_index'"),
        ('{"data": [{"frame_index": -1, "skeleton": []}]}', "frame_index must be a non-negative integer, got -1"),
        ('{"data": [{"frame_index": 1.5, "skeleton": []}]}', "frame_index must be a non-negative integer"),
        (
            '{"data": [{"frame_index": 1, "skeleton": []}, {"frame_index": 1, "skeleton": []}]}',
            "frame_index 1 appears twice",
        ),
        (
            '{"data": [{"frame_index": 0, "skeleton": [{"pose": [0.5, 0.5], "score": [1]}]}]}',
            r"frame_index 0, skeleton\[0\].pose must be a list of 36 numbers, got 2 values",
        ),
        ('{"data": [{"frame_index": 0, "skeleton": [{"pose": []}]}]}', r"skeleton\[0\] has no 'score'"),
        ('{"data": [], "label_index": "x"}', "label_index must be an integer >= -1"),
    ],
)
def test_bad_video_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad_clip.json"
    path.write_text(content)
    with pytest.raises(KineticsSkeletonError, match=message) as e:
        read_kinetics_skeleton(path)
    assert str(e.value).startswith(str(path))


def test_non_finite_and_sixth_person_are_checked(tmp_path):
    bad = person(0)
    bad["score"][3] = float("nan")
    vid = video([(0, [person(k) for k in range(6)] + [bad])])
    with pytest.raises(KineticsSkeletonError, match=r"bad\.json: frame_index 0, skeleton\[6\].score holds nan"):
        read_kinetics_skeleton(write(tmp_path / "bad.json", vid), max_people=5)


def test_label_files(tmp_path):
    good = {"a": {"has_skeleton": True, "label": "x", "label_index": 3}}
    assert read_label_file(write(tmp_path / "l.json", good)) == good
    for entry, message in [
        ({"has_skeleton": True, "label": "x"}, "entry 'a' has no 'label_index'"),
        ({"has_skeleton": 1, "label": "x", "label_index": 3}, "entry 'a': has_skeleton must be true or false"),
        ({"has_skeleton": True, "label": "x", "label_index": -2}, "entry 'a': label_index must be"),
    ]:
        path = write(tmp_path / "labels.json", {"a": entry})
        with pytest.raises(KineticsSkeletonError, match=f"labels.json: {message}"):
            read_label_file(path)


def test_class_names():
    assert len(KINETICS400_CLASSES) == 400 and len(set(KINETICS400_CLASSES)) == 400
    assert KINETICS400_CLASSES[:3] == ("abseiling", "air drumming", "answering questions")
    assert KINETICS400_CLASSES[-1] == "zumba"


# ----------------------------------------------------------------------------------------------
# TFDS builder
# ----------------------------------------------------------------------------------------------
def _manual(root):
    """A release-shaped manual dir: train has a video without skeletons (empty data) that must be skipped."""
    vids = {
        "train": {
            "vid_b": video(FRAMES, 7),
            "vid_a": video([(0, [person(40)]), (2, [person(41)])], 399),
            "vid_none": video([], 5),
        },
        "val": {"vid_c": video([(3, [person(50), person(51)])], 0)},
    }
    for split, items in vids.items():
        (root / f"kinetics_{split}").mkdir(parents=True)
        labels = {}
        for vid, content in items.items():
            write(root / f"kinetics_{split}" / f"{vid}.json", content)
            labels[vid] = {"has_skeleton": vid != "vid_none", "label": "x", "label_index": content["label_index"]}
        write(root / f"kinetics_{split}_label.json", labels)
    return vids


def test_builder_reads_back_what_the_reader_reads(tmp_path):
    from skeljax.data.tfds_builders import load_source

    manual = tmp_path / "manual"
    _manual(manual)
    for split, names in (("train", ["vid_a", "vid_b"]), ("val", ["vid_c"])):
        src = load_source("kinetics_skeleton", split, tmp_path / "data", manual_dir=manual)
        assert src.class_names == KINETICS400_CLASSES and len(src) == len(names)
        for k, name in enumerate(names):
            got, want = src[k], read_kinetics_skeleton(manual / f"kinetics_{split}" / f"{name}.json", max_people=5)
            assert (got["frame_dir"], got["label"], got["total_frames"]) == (name, want["label"], want["total_frames"])
            assert got["img_shape"] == (1, 1)
            np.testing.assert_array_equal(got["keypoint"], want["keypoint"])
            np.testing.assert_array_equal(got["keypoint_score"], want["keypoint_score"])
    assert src[0]["keypoint"].shape == (2, 4, V, 2)


def test_builder_errors_name_the_file(tmp_path):
    from skeljax.data.tfds_builders import load_source

    manual = tmp_path / "manual"
    vids = _manual(manual)
    write(manual / "kinetics_val" / "vid_c.json", dict(vids["val"]["vid_c"], label_index=2))
    with pytest.raises(KineticsSkeletonError, match=r"vid_c\.json: label_index 2 differs from 0 in .*val_label"):
        load_source("kinetics_skeleton/openpose", "val", tmp_path / "d1", manual_dir=manual)
    write(manual / "kinetics_val" / "stray.json", vids["val"]["vid_c"])
    with pytest.raises(KineticsSkeletonError, match=r"stray\.json: video 'stray' is not in the label file"):
        load_source("kinetics_skeleton", "val", tmp_path / "d2", manual_dir=manual)
    (manual / "kinetics_train_label.json").unlink()
    with pytest.raises(FileNotFoundError, match="kinetics_train_label.json"):
        load_source("kinetics_skeleton", "train", tmp_path / "d3", manual_dir=manual)


# ----------------------------------------------------------------------------------------------
# Prediction input and drawing
# ----------------------------------------------------------------------------------------------
def test_predict_reads_kinetics_json(tmp_path, clip):
    from skeljax.predict import PredictError, read_input

    [anno] = read_input(clip, layout="openpose")
    np.testing.assert_array_equal(anno["keypoint"], read_kinetics_skeleton(clip)["keypoint"])
    assert anno["label"] == 7
    [demo] = read_input(
        write(tmp_path / "demo.json", video([(0, [person(0)])], label_index=-1, label="unknown")), layout="openpose"
    )
    assert "label" not in demo  # the demo's label_index -1 is no ground truth
    with pytest.raises(PredictError, match="holds OpenPose-18 2D joints but the checkpoint takes 17 joints"):
        read_input(clip, layout="coco")


def test_visualize_draws_openpose_edges(tmp_path, clip):
    from PIL import Image

    from skeljax.visualize import main

    out = tmp_path / "k.gif"
    assert main(["--input", str(clip), "--out", str(out)]) == 0
    frames = [np.asarray(f.convert("RGB")).astype(int) for f in _gif_frames(out)]
    assert len(frames) == 6
    blue = [int((np.abs(f - (31, 119, 180)).sum(-1) < 40).sum()) for f in frames]  # person 1
    # frames 0, 2 and 3 hold nobody; frames with people are drawn with their limbs
    assert blue[0] == blue[2] == blue[3] == 0 and min(blue[1], blue[4], blue[5]) > 50
    assert Image.open(out).n_frames == 6
    # the limbs are the OpenPose edges: without them (a layout with the same joints and no edges) only dots remain
    from skeljax.visualize import render_skeleton

    anno = read_kinetics_skeleton(clip)
    dots = tmp_path / "dots.gif"
    render_skeleton(
        anno["keypoint"],
        dots,
        layout=layouts.custom(V, [], 1, channels=3, score=True),
        keypoint_score=anno["keypoint_score"],
    )
    only_dots = [
        int((np.abs(np.asarray(f.convert("RGB")).astype(int) - (31, 119, 180)).sum(-1) < 40).sum())
        for f in _gif_frames(dots)
    ]
    assert [d > 0 for d in only_dots] == [False, True, False, False, True, True]
    assert all(b > 1.5 * d for b, d in zip(blue, only_dots) if d)


def _gif_frames(path):
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return [f.copy() for f in ImageSequence.Iterator(im)]
