"""Synthetic skeleton dataset: format, determinism, balance, geometry and the need for temporal order."""

import numpy as np
import pytest

from skeljax.data import ntu_meta
from skeljax.data.synthetic import (
    NTU_FOR_COCO,
    REVERSED_OF,
    SYNTHETIC_CLASSES,
    TWO_PERSON,
    generate_synthetic,
    in_split,
    iter_synthetic,
    synthetic_annotation,
    synthetic_class_names,
)

NC = len(SYNTHETIC_CLASSES)


@pytest.fixture(scope="module")
def data3d():
    return generate_synthetic(10, seed=7, kind="3d")


@pytest.fixture(scope="module")
def data2d():
    return generate_synthetic(10, seed=7, kind="2d")


def test_3d_format_matches_pyskl_pickle(data3d):
    assert set(data3d) == {"split", "annotations"}
    for a in data3d["annotations"]:
        assert set(a) == {"frame_dir", "label", "keypoint", "total_frames"}
        assert type(a["label"]) is int and type(a["total_frames"]) is int and type(a["frame_dir"]) is str
        kp = a["keypoint"]
        assert kp.dtype == np.float16 and kp.ndim == 4 and kp.shape[2:] == (25, 3)
        assert kp.shape[0] == (2 if a["label"] in TWO_PERSON else 1)
        assert kp.shape[1] == a["total_frames"] and 30 <= a["total_frames"] <= 150
        assert np.isfinite(kp).all()
        # NTU-style name whose action number is the label + 1
        assert ntu_meta.ntu_label(a["frame_dir"]) == a["label"]


def test_2d_format_matches_hrnet_pickle(data2d):
    for a in data2d["annotations"]:
        assert set(a) == {
            "frame_dir",
            "label",
            "keypoint",
            "keypoint_score",
            "total_frames",
            "img_shape",
            "original_shape",
        }
        m, t = a["keypoint"].shape[:2]
        assert a["keypoint"].dtype == np.float32 and a["keypoint"].shape == (m, t, 17, 2)
        assert a["keypoint_score"].dtype == np.float32 and a["keypoint_score"].shape == (m, t, 17)
        assert a["img_shape"] == (1080, 1920) and t == a["total_frames"]
        assert m == (2 if a["label"] in TWO_PERSON else 1)
        s, kp = a["keypoint_score"], a["keypoint"]
        assert (s >= 0).all() and (s <= 1).all()
        assert (kp[..., 0] >= 0).all() and (kp[..., 0] <= 1919).all() and (kp[..., 1] <= 1079).all()
    scores = np.concatenate([a["keypoint_score"].ravel() for a in data2d["annotations"]])
    assert 0.001 < (scores < 0.3).mean() < 0.1  # some, not many, unreliable joints
    assert np.median(scores) > 0.8


def test_deterministic_by_seed_and_independent_of_set_size():
    a, b = generate_synthetic(3, seed=11), generate_synthetic(3, seed=11)
    for x, y in zip(a["annotations"], b["annotations"]):
        assert x["frame_dir"] == y["frame_dir"] and np.array_equal(x["keypoint"], y["keypoint"])
    c = generate_synthetic(3, seed=12)
    assert not np.array_equal(a["annotations"][0]["keypoint"], c["annotations"][0]["keypoint"][:, :])
    big = {x["frame_dir"]: x for x in generate_synthetic(5, seed=11)["annotations"]}
    for x in a["annotations"]:
        assert np.array_equal(big[x["frame_dir"]]["keypoint"], x["keypoint"])
    one = synthetic_annotation(11, 4, 2)
    assert np.array_equal(one["keypoint"], a["annotations"][2 * NC + 4]["keypoint"])


def test_class_balance_and_splits(data3d):
    annos = data3d["annotations"]
    labels = np.array([a["label"] for a in annos])
    assert np.array_equal(np.bincount(labels, minlength=NC), np.full(NC, 10))
    names = [a["frame_dir"] for a in annos]
    assert len(set(names)) == len(names)
    sp = data3d["split"]
    for bench in ("xsub", "xview"):
        tr, va = set(sp[f"{bench}_train"]), set(sp[f"{bench}_val"])
        assert not tr & va and tr | va == set(names)
    assert sp["train"] == sp["xsub_train"] and sp["val"] == sp["xsub_val"]
    subj = {n: ntu_meta.parse_ntu_name(n)["performer"] for n in names}
    assert {subj[n] % 5 for n in sp["xsub_val"]} == {1} and all(subj[n] % 5 != 1 for n in sp["xsub_train"])
    assert all(ntu_meta.parse_ntu_name(n)["camera"] == 1 for n in sp["xview_val"])
    # every class has exactly 2 of its 10 samples in the cross-subject validation set (idx 0 and 5)
    val_labels = np.array([ntu_meta.ntu_label(n) for n in sp["xsub_val"]])
    assert np.array_equal(np.bincount(val_labels, minlength=NC), np.full(NC, 2))


def _bone(kp, i, j):
    return np.linalg.norm(kp[..., i, :] - kp[..., j, :], axis=-1)


def test_plausible_bodies(data3d):
    for a in data3d["annotations"]:
        kp = a["keypoint"].astype(np.float64)
        valid = np.abs(kp).sum((0, 2, 3)) > 0
        kp = kp[:, valid]
        # bone lengths hold still over time (noise is a centimetre at most)
        for i, j, lo, hi in ((13, 12, 0.33, 0.52), (5, 4, 0.22, 0.34), (9, 8, 0.22, 0.34), (1, 0, 0.19, 0.31)):
            for length in _bone(kp, i, j):  # per person: two people are two subjects
                assert lo < np.median(length) < hi and length.std() < 0.03, (a["frame_dir"], i, j)
        # in front of the camera, upright (head above spine base), arm's-length tall
        assert kp[..., 2].min() > 1.5
        assert (kp[..., 3, 1] > kp[..., 0, 1]).mean() > 0.95
        if a["label"] in (0, 2, 3, 6, 7):  # no squat/kick/push: the head stays 0.5-0.9 m over the hip
            assert 0.5 < np.median(kp[..., 3, 1] - kp[..., 0, 1]) < 0.9


def test_facing_camera_left_is_on_the_sensors_right(data3d, data2d):
    """Kinect convention (x grows to the sensor's left): a frontal person's right shoulder has the larger x,
    and in the image their left shoulder is on the right."""
    for a3, a2 in zip(data3d["annotations"], data2d["annotations"]):
        if ntu_meta.parse_ntu_name(a3["frame_dir"])["camera"] != 1 or a3["label"] == 8:  # 8 turns round
            continue
        kp = a3["keypoint"][:, 0].astype(float)
        if not kp.any():  # dropped first frame
            continue
        if a3["label"] in TWO_PERSON:  # side by side across the image, facing each other
            hip = kp[:, 0]
            assert abs(hip[0, 0] - hip[1, 0]) > abs(hip[0, 2] - hip[1, 2])
            continue
        assert kp[0, 8, 0] > kp[0, 4, 0]
        pt = a2["keypoint"][0, 0]
        if a2["keypoint_score"][0, 0, [5, 6]].min() > 0.3:
            assert pt[5, 0] > pt[6, 0]


def test_2d_is_a_pinhole_projection_of_the_3d_motion(data3d, data2d):
    """u = 960 - f x/z, v = 540 - f y/z with one focal length per sample (fitted here) for the body joints."""
    for a3, a2 in zip(data3d["annotations"], data2d["annotations"]):
        assert a3["frame_dir"] == a2["frame_dir"]
        coco, ntu = list(NTU_FOR_COCO), list(NTU_FOR_COCO.values())
        xyz = a3["keypoint"][:, :, ntu].astype(np.float64)
        uv = a2["keypoint"][:, :, coco].astype(np.float64)
        ok = (a2["keypoint_score"][:, :, coco] > 0.5) & (np.abs(xyz).sum(-1) > 0)
        ok &= (uv[..., 0] > 0) & (uv[..., 0] < 1919) & (uv[..., 1] > 0) & (uv[..., 1] < 1079)
        xyz, uv = xyz[ok], uv[ok]
        a = np.concatenate([-xyz[:, 0] / xyz[:, 2], -xyz[:, 1] / xyz[:, 2]])
        b = np.concatenate([uv[:, 0] - 960, uv[:, 1] - 540])
        f = (a @ b) / (a @ a)
        assert 900 < f < 1200
        assert np.median(np.abs(a * f - b)) < 12  # pixels: joint noise only


def test_dropped_frames_are_all_zero(data3d, data2d):
    dropped = 0
    for a3, a2 in zip(data3d["annotations"], data2d["annotations"]):
        z3 = np.all(a3["keypoint"] == 0, axis=(0, 2, 3))
        z2 = np.all(a2["keypoint"] == 0, axis=(0, 2, 3))
        assert np.array_equal(z3, z2)
        assert np.all(a2["keypoint_score"][:, z2] == 0)
        assert z3.mean() < 0.2
        dropped += z3.any()
    assert 0.1 * len(data3d["annotations"]) < dropped < 0.5 * len(data3d["annotations"])


def test_paired_classes_are_time_reversals_in_their_motion(data3d):
    """Left wrist rises in 'raise', falls in 'lower'; the head sinks in 'squat down', rises in 'stand up'."""

    def trend(a, joint):
        kp = a["keypoint"][0].astype(float)
        kp = kp[np.abs(kp).sum((1, 2)) > 0]
        k = max(1, len(kp) // 8)
        return kp[-k:, joint, 1].mean() - kp[:k, joint, 1].mean()

    for a in data3d["annotations"]:
        if a["label"] in (0, 1):
            assert np.sign(trend(a, 6)) == (1 if a["label"] == 0 else -1) and abs(trend(a, 6)) > 0.5
        if a["label"] in (4, 5):
            assert np.sign(trend(a, 3)) == (-1 if a["label"] == 4 else 1) and abs(trend(a, 3)) > 0.2


def _frame_normalise(kp):
    """Each frame on its own: centred on person 0's joint 1, rotated so its shoulders lie along x."""
    kp = kp.astype(np.float64)
    kp = kp[:, np.abs(kp[0]).sum((1, 2)) > 0]
    kp = kp - kp[0:1, :, 1:2]
    u = kp[0, :, 8] - kp[0, :, 4]
    ang = np.arctan2(u[:, 2], u[:, 0])
    c, s = np.cos(ang)[None, :, None], np.sin(ang)[None, :, None]
    x, z = kp[..., 0].copy(), kp[..., 2].copy()
    kp[..., 0], kp[..., 2] = c * x + s * z, -s * x + c * z
    return np.concatenate([kp, np.zeros_like(kp)]) if len(kp) == 1 else kp


def _first_frame_normalise(kp):
    """PYSKL-like: centred on the first frame's joint 1, rotated by the first frame's shoulders."""
    kp = kp.astype(np.float64)
    kp = kp[:, np.abs(kp[0]).sum((1, 2)) > 0]
    kp = kp - kp[0, 0, 1]
    u = kp[0, 0, 8] - kp[0, 0, 4]
    ang = np.arctan2(u[2], u[0])
    c, s = np.cos(ang), np.sin(ang)
    kp = kp @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
    return np.concatenate([kp, np.zeros_like(kp)]) if len(kp) == 1 else kp


def _ridge_accuracy(data, features):
    annos = {a["frame_dir"]: a for a in data["annotations"]}

    def mat(names):
        return (np.stack([features(annos[n]["keypoint"]) for n in names]), np.array([annos[n]["label"] for n in names]))

    xtr, ytr = mat(data["split"]["train"])
    xva, yva = mat(data["split"]["val"])
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xva = (xtr - mu) / sd, (xva - mu) / sd
    w = np.linalg.solve(xtr.T @ xtr + 30 * np.eye(xtr.shape[1]), xtr.T @ np.eye(NC)[ytr])
    pred = (xva @ w).argmax(1)
    paired = np.isin(yva, list(REVERSED_OF) + list(REVERSED_OF.values()))
    return (pred == yva).mean(), (pred[paired] == yva[paired]).mean()


def test_learnable_from_order_but_not_from_unordered_frames():
    """A linear classifier on 10 ordered frames separates all classes; per-frame statistics (order-free)
    cannot tell the time-reversed pairs apart (chance is 50% within a pair)."""
    data = generate_synthetic(50, seed=3)

    def ordered(kp):
        kp = _first_frame_normalise(kp)
        return kp[:, np.linspace(0, kp.shape[1] - 1, 10).round().astype(int)].ravel()

    def unordered(kp):
        f = _frame_normalise(kp)
        f = f.reshape(2, f.shape[1], -1)
        return np.concatenate([f.mean(1).ravel(), f.std(1).ravel(), np.percentile(f, [10, 90], axis=1).ravel()])

    acc, pair_acc = _ridge_accuracy(data, ordered)
    assert acc >= 0.95 and pair_acc >= 0.95
    _, pair_acc_u = _ridge_accuracy(data, unordered)
    assert pair_acc_u < 0.7, pair_acc_u


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        synthetic_annotation(0, 0, 0, kind="4d")
    with pytest.raises(ValueError, match="label"):
        synthetic_annotation(0, NC, 0)
    with pytest.raises(ValueError, match="num_per_class"):
        generate_synthetic(1)


# ---------------------------------------------------------------------------------------------------------
# More classes and another frame range (the NTU-60-shaped throughput set)
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data60():
    return generate_synthetic(8, seed=7, num_classes=60, frames=(100, 300))


def test_60_classes_shape_names_and_splits(data60):
    annos = data60["annotations"]
    labels = np.array([a["label"] for a in annos])
    assert np.array_equal(np.bincount(labels, minlength=60), np.full(60, 8))
    frames = []
    for a in annos:
        kp = a["keypoint"]
        assert kp.dtype == np.float16 and kp.shape[1:] == (a["total_frames"], 25, 3) and np.isfinite(kp).all()
        assert kp.shape[0] == (2 if a["label"] % NC in TWO_PERSON else 1)
        assert ntu_meta.ntu_label(a["frame_dir"]) == a["label"]
        frames.append(a["total_frames"])
    assert 100 <= min(frames) < 130 and 270 < max(frames) <= 300  # the whole range is drawn
    names = [a["frame_dir"] for a in annos]
    assert len(set(names)) == len(names)
    sp = data60["split"]
    assert sp["train"] == [n for n in names if ntu_meta.parse_ntu_name(n)["performer"] % 5 != 1]
    assert sp["val"] == [n for n in names if ntu_meta.parse_ntu_name(n)["performer"] % 5 == 1]
    assert sp["xview_val"] == [n for n in names if ntu_meta.parse_ntu_name(n)["camera"] == 1]
    # iter_synthetic streams the same samples, a split's alone when asked
    val = list(iter_synthetic(8, seed=7, num_classes=60, frames=(100, 300), split="val"))
    assert [a["frame_dir"] for a in val] == sp["val"]
    by_name = {a["frame_dir"]: a for a in annos}
    assert all(np.array_equal(a["keypoint"], by_name[a["frame_dir"]]["keypoint"]) for a in val)
    cls = synthetic_class_names(60)
    assert len(cls) == len(set(cls)) == 60 and cls[:NC] == SYNTHETIC_CLASSES and synthetic_class_names() == cls[:NC]
    assert cls[NC + 2] == "wave right hand (posture 1)"


def test_more_classes_keep_the_14_class_samples():
    """A sample depends on (seed, label, index, frame range), not on how many classes the set has."""
    small = generate_synthetic(3, seed=5)
    big = generate_synthetic(3, seed=5, num_classes=20)
    by_name = {a["frame_dir"]: a for a in big["annotations"]}
    assert len(by_name) == 60
    for a in small["annotations"]:
        assert np.array_equal(by_name[a["frame_dir"]]["keypoint"], a["keypoint"])
    assert set(big["split"]["val"]) > set(small["split"]["val"])
    # other frame ranges draw other lengths from the same random stream
    a = synthetic_annotation(5, 3, 1, frames=(100, 300))
    assert 100 <= a["total_frames"] <= 300 and a["total_frames"] != small["annotations"][NC + 3]["total_frames"]


def test_posture_variants_share_the_motion_and_differ_in_stance_and_lean(data60):
    """Class L moves as class L % 14: 'lower left hand (posture 1)' lowers the left wrist; variant v stands
    wider by v % 3 steps (ankle distance) and leans forward by v // 3 steps (spine away from the camera's up)."""
    by_label = {}
    for a in data60["annotations"]:
        kp = a["keypoint"][0].astype(np.float64)
        by_label.setdefault(a["label"], []).append(kp[np.abs(kp).sum((1, 2)) > 0])
    for kp in by_label[NC + 1]:
        k = len(kp) // 8
        assert kp[-k:, 6, 1].mean() - kp[:k, 6, 1].mean() < -0.5

    def stance(label):
        return np.mean([np.median(np.linalg.norm(kp[:, 14] - kp[:, 18], axis=-1)) for kp in by_label[label]])

    def lean(label):
        spine = [kp[:, 20] - kp[:, 0] for kp in by_label[label]]
        return np.mean([np.median(np.arccos(s[:, 1] / np.linalg.norm(s, axis=-1))) for s in spine])

    for script in (0, 2, 3):  # legs still: only the stance moves the ankles
        assert stance(script) + 0.1 < stance(script + NC) < stance(script + 2 * NC) - 0.1
        assert abs(lean(script + NC) - lean(script)) < 0.1
        assert lean(script + 3 * NC) > lean(script) + 0.15


def test_bad_class_counts_and_frame_ranges():
    with pytest.raises(ValueError, match="label"):
        synthetic_annotation(0, 60, 0, num_classes=60)
    with pytest.raises(ValueError, match="num_classes"):
        synthetic_class_names(121)
    with pytest.raises(ValueError, match="frames"):
        synthetic_annotation(0, 0, 0, frames=(300, 100))
    with pytest.raises(ValueError, match="split"):
        in_split("S001C001P001R001A001", "test")


def test_model_directories_name_the_classes_of_the_synthetic_config_they_were_trained_on():
    from skeljax.predict.settings import dataset_class_names

    names = dataset_class_names("skeljax_synthetic/ntu60")
    assert len(names) == 60 and names[:14] == SYNTHETIC_CLASSES and names[14] == "raise left hand (posture 1)"
    assert dataset_class_names("skeljax_synthetic/3d") == dataset_class_names("skeljax_synthetic") == SYNTHETIC_CLASSES
