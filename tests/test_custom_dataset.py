"""Own data through the config route: `config.data.dataset='pickle'` + `config.model.layout='custom'` trains, saves,
tests and predicts end to end; bones follow the layout's edges; bad pickles and layouts fail naming the culprit."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import ml_collections
import numpy as np
import pytest

from skeljax import ensemble, layouts
from skeljax import predict as P
from skeljax.config import schema
from skeljax.data import pickle_source
from skeljax.data import transforms as T
from skeljax.data.annotations import AnnotationError, save_annotations
from skeljax.data.pipelines import make_pipeline
from skeljax.data.synthetic import generate_synthetic
from skeljax.models import graph
from skeljax.models.model_dir import load_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A made-up 7-joint skeleton: 0 pelvis (centre), 1 chest, 2 head, 3 left hand, 4 right hand, 5 left foot, 6 right foot.
EDGES = ((1, 0), (2, 1), (3, 1), (4, 1), (5, 0), (6, 0))
V, NUM_CLASSES, CLIP_LEN, TEST_CLIPS = 7, 2, 8, 2
LAYOUT_FLAGS = [
    f"--config.model.custom_layout.{k}={v}"
    for k, v in (
        ("name", "toy7"),
        ("num_joints", V),
        ("edges", repr(EDGES)),
        ("center", 0),
        ("zaxis", "(0, 1)"),
        ("xaxis", "(4, 3)"),
    )
]

# The user's copy of configs/custom_pickle.py, shrunk so that the test compiles and trains in seconds.
SMALL_CONFIG = textwrap.dedent(f"""
    import importlib.util

    spec = importlib.util.spec_from_file_location("custom_pickle", {os.path.join(REPO, "configs", "custom_pickle.py")!r})
    base = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(base)

    def get_config(arg=None):
        c = base.get_config(arg)
        c.model.num_classes = {NUM_CLASSES}
        c.model.base_channels, c.model.num_stages = 8, 3
        c.model.inflate_stages, c.model.down_stages = (3,), (3,)
        c.model.bn_group = 0
        c.data.clip_len, c.data.test_num_clips, c.data.repeat_times = {CLIP_LEN}, {TEST_CLIPS}, 1
        c.batch_size = c.eval_batch_size = 4
        c.test_batch_size = 2
        c.num_epochs = 1
        c.test_last = False                 # best = last after one epoch
        c.log_every_steps = 1
        c.data.num_workers = 0              # worker start-up would dominate these tiny runs
        return c
""")


def toy_sample(name: str, label: int, frames: int, rng: np.random.Generator, persons: int = 1) -> dict:
    """A 3D skeleton whose arms move up (class 1) or sideways (class 0)."""
    base = np.array([[0, 0, 1], [0, 0, 1.5], [0, 0, 1.8], [-0.4, 0, 1.4], [0.4, 0, 1.4], [-0.2, 0, 0], [0.2, 0, 0]])
    t = np.linspace(0, 1, frames)[:, None]
    kp = np.repeat(base[None], frames, 0)
    move = np.array([0, 0, 0.5]) if label else np.array([0.5, 0, 0])
    kp[:, 3] += t * move * [-1, 1, 1]
    kp[:, 4] += t * move
    kp = kp[None] + rng.normal(0, 0.01, (persons, frames, V, 3))
    return {"frame_dir": name, "label": label, "total_frames": frames, "keypoint": kp.astype(np.float32)}


def toy_pickle(path, *, joints: int = V, splits=("train", "val")) -> dict:
    rng = np.random.default_rng(0)
    annos = [toy_sample(f"s{i:02d}", i % NUM_CLASSES, 10 + i, rng, persons=1 + i % 2) for i in range(14)]
    if joints != V:
        annos[3]["keypoint"] = annos[3]["keypoint"][:, :, :joints]
    split = {"train": [a["frame_dir"] for a in annos[:8]], "val": [a["frame_dir"] for a in annos[8:]]}
    data = {"split": {k: split[k] for k in splits}, "annotations": annos}
    save_annotations(path, data)
    return data


def custom_config(ann_file="", **layout) -> ml_collections.ConfigDict:
    spec = importlib.util.spec_from_file_location("custom_pickle", os.path.join(REPO, "configs", "custom_pickle.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    c = mod.get_config(ann_file or None)
    c.model.num_classes = NUM_CLASSES
    c.model.custom_layout = ml_collections.ConfigDict(
        {"num_joints": V, "edges": EDGES, "center": 0, "channels": 3, **layout}
    )
    return c


def run(module, *args, timeout=600):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        check=False,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_json(stdout: str) -> dict:
    return json.loads(stdout[stdout.rindex("\n{") + 1 :] if "\n{" in stdout else stdout)


# ------------------------------------------------------------------------------------------------------------
# Bones and normalisation of a custom layout.
# ------------------------------------------------------------------------------------------------------------


def test_bones_follow_the_layout_edges_by_hand():
    layout = layouts.custom(4, [(1, 0), (2, 1), (3, 1)], center=0)
    j = np.array([[1.0, 2, 3], [4, 6, 8], [5, 5, 5], [0, 1, 9]])
    want = np.array([[0.0, 0, 0], [3, 4, 5], [1, -1, -3], [-4, -5, 1]])  # j[v] - j[parent(v)], centre zero
    np.testing.assert_array_equal(T.joint_to_bone(j[None, None], layout)[0, 0], want)
    # GenSkeFeat 'b' and 'bm' use the same bones; motion is the forward frame difference with a zero last frame.
    kp = np.stack([j, 2 * j])[None]  # (1 person, 2 frames, 4, 3)
    out = T.GenSkeFeat(layout, feats=["b", "bm"])({"keypoint": kp})["keypoint"]
    np.testing.assert_array_equal(out[0, 0, :, :3], want)
    np.testing.assert_array_equal(out[0, 0, :, 3:], want)  # (2j - j) bones = bones of j
    np.testing.assert_array_equal(out[0, 1, :, 3:], 0)


def test_bones_with_scores_average_the_score_by_hand():
    layout = layouts.custom(3, [(1, 0), (2, 1)], center=0, channels=3, score=True)
    kp = np.array([[[[10.0, 20, 0.2], [13, 24, 0.6], [13, 30, 1.0]]]])
    want = np.array([[0, 0, 0.2], [3, 4, 0.4], [0, 6, 0.8]], np.float32)
    np.testing.assert_allclose(T.joint_to_bone(kp, layout)[0, 0], want, rtol=1e-6)


@pytest.mark.parametrize("name,center,score", [("nturgb+d", 20, False), ("coco", 0, True)])
def test_bones_match_the_builtin_pairs(name, center, score):
    # A custom layout whose edges are PYSKL's bone pairs gives PYSKL's bones (and score handling).
    builtin = layouts.get(name)
    layout = layouts.custom(builtin.num_joints, builtin.bones, center, score=score)
    kp = np.random.default_rng(1).normal(size=(2, 5, builtin.num_joints, 3))
    np.testing.assert_array_equal(T.joint_to_bone(kp, layout), T.joint_to_bone(kp, name))
    np.testing.assert_array_equal(T.to_motion(kp, layout), T.to_motion(kp, name))


def test_custom_2d_pipeline_equals_the_coco_pipeline():
    layout = layouts.custom(17, layouts.get("coco").bones, 0, channels=3, score=True)
    anno = generate_synthetic(2, seed=3, kind="2d")["annotations"][0]
    for feat in T.FEATS:
        for mode, clips in (("train", 1), ("test", 3)):
            got = make_pipeline(layout, feat, 16, clips, mode)(anno, seed=5)
            np.testing.assert_array_equal(got, make_pipeline("coco", feat, 16, clips, mode)(anno, seed=5))


def test_custom_3d_normalisation_centres_on_the_centre_joint():
    rng = np.random.default_rng(2)
    anno = toy_sample("x", 1, 12, rng, persons=2)
    layout = layouts.custom(V, EDGES, center=0)  # no zaxis/xaxis: centring only
    x = make_pipeline(layout, "j", 12, 1, "test")(anno)
    kp = anno["keypoint"]
    # 12 frames sampled into a 12-frame clip keep their order: the output is the input minus frame 0's pelvis.
    np.testing.assert_allclose(x[0], kp - kp[0, 0, 0], atol=1e-6)
    # With spine and shoulder joints (PYSKL's order: the x rotation comes last), the first frame's left -> right
    # hand vector lies on +x and the chest stays above the pelvis; distances are unchanged.
    aligned = layouts.custom(V, EDGES, center=0, zaxis=(0, 1), xaxis=(4, 3))
    y = make_pipeline(aligned, "j", 12, 1, "test")(anno)[0, 0, 0]
    np.testing.assert_allclose(y[0], 0, atol=1e-6)
    np.testing.assert_allclose((y[4] - y[3])[1:], 0, atol=1e-6)
    assert (y[4] - y[3])[0] > 0 and y[1, 2] > 0
    np.testing.assert_allclose(
        np.linalg.norm(y[:, None] - y[None], axis=-1),
        np.linalg.norm(kp[0, 0][:, None] - kp[0, 0][None], axis=-1),
        rtol=1e-5,
        atol=1e-6,
    )


def test_builtin_names_still_build_the_same_pipelines():
    anno = generate_synthetic(2, seed=0, kind="3d")["annotations"][0]
    p = make_pipeline("nturgb+d", "b", 20, 2, "test", recipe="pyskl")
    assert p.out_shape == (2, 2, 20, 25, 3) and [type(t).__name__ for t in p.transforms][:3] == [
        "CheckLayout",
        "PreNormalize3D",
        "GenSkeFeat",
    ]
    assert p.transforms[2].dataset == layouts.get("nturgb+d") and p(anno).shape == (2, 2, 20, 25, 3)


# ------------------------------------------------------------------------------------------------------------
# Config and pickle source.
# ------------------------------------------------------------------------------------------------------------


def test_config_builds_the_custom_model_spec_and_graph():
    c = custom_config(channels=2)
    schema.validate(c)
    spec = schema.model_spec(c)
    assert (spec.layout, spec.num_joints, spec.in_channels, spec.num_classes) == ("checkpoint", V, 2, NUM_CLASSES)
    np.testing.assert_array_equal(schema.model_graph(c), graph.adjacency(layouts.custom(V, EDGES, 0), "spatial"))
    assert make_pipeline(schema.data_layout(c), "j", 8, 1, "train").out_shape == (1, 2, 8, V, 2)


@pytest.mark.parametrize(
    "layout,feat,message",
    [
        ({"edges": ((1, 0), (9, 0))}, "j", "outside 0..6"),
        ({"center": 7}, "j", "centre joint 7"),
        ({"channels": 4}, "j", "channels must be 2"),
        ({"channels": 2, "score": True}, "j", "channels must be 3"),
        ({"edges": ((1, 0), (1, 2), (2, 0))}, "b", "two parents"),
        ({"zaxis": (0, 1)}, "j", "both zaxis and xaxis"),
        ({"colour": "red"}, "j", "unknown keys ['colour']"),
    ],
)
def test_bad_custom_layouts_name_the_field(layout, feat, message):
    c = custom_config(**layout)
    c.data.feat = feat
    with pytest.raises(ValueError, match="config.model.custom_layout") as e:
        schema.validate(c)
    assert message in str(e.value)


def test_pickle_source_serves_splits_in_file_order(tmp_path):
    path = tmp_path / "toy.pkl"
    data = toy_pickle(path)
    layout = schema.data_layout(custom_config())
    val = pickle_source.load_split(str(path), "val", layout, NUM_CLASSES)
    assert [val[i]["frame_dir"] for i in range(len(val))] == data["split"]["val"]
    assert val.class_names == ("class_0", "class_1")
    np.testing.assert_array_equal(val[2]["keypoint"], data["annotations"][10]["keypoint"])
    assert [a["label"] for a in val.__getitems__([0, 1])] == [0, 1]


def test_bad_pickles_name_the_file(tmp_path):
    layout = schema.data_layout(custom_config())
    wrong = tmp_path / "wrong_joints.pkl"
    toy_pickle(wrong, joints=6)
    with pytest.raises(AnnotationError, match=rf"{wrong}: sample s03: expected 7 joints x 3 channels, got 6 x 3"):
        pickle_source.load_split(str(wrong), "train", layout, NUM_CLASSES)
    ok = tmp_path / "no_test.pkl"
    toy_pickle(ok)
    with pytest.raises(AnnotationError, match=rf"{ok}: no split 'test'; the file has splits \['train', 'val'\]"):
        pickle_source.load_split(str(ok), "test", layout, NUM_CLASSES)
    with pytest.raises(AnnotationError, match=rf"{ok}: sample s01: label 1 out of range \[0, 1\)"):
        pickle_source.load_split(str(ok), "train", layout, 1)
    with pytest.raises(AnnotationError, match=rf"{tmp_path / 'absent.pkl'}: cannot read"):
        pickle_source.load_split(str(tmp_path / "absent.pkl"), "train", layout, NUM_CLASSES)
    with pytest.raises(ValueError, match="config.data.ann_file"):
        pickle_source.load_split("", "train", layout, NUM_CLASSES)


def test_pickle_source_with_builtin_and_scored_layouts(tmp_path):
    # NTU-25 data in a pickle of one's own: the built-in layout name, PYSKL's own checks and pipeline.
    data = generate_synthetic(2, seed=0, kind="3d")
    path = tmp_path / "ntu.pkl"
    save_annotations(path, {**data, "class_names": [f"action {i}" for i in range(14)]})
    train = pickle_source.load_split(str(path), "train", "nturgb+d", 14)
    assert len(train) == len(data["split"]["train"]) and train.class_names[3] == "action 3"
    assert make_pipeline("nturgb+d", "j", 8, 1, "train")(train[0], seed=0).shape == (1, 2, 8, 25, 3)
    with pytest.raises(AnnotationError, match=rf"{path}: sample .*: expected 17 joints x 2 channels, got 25 x 3"):
        pickle_source.load_split(str(path), "train", "coco", 14)
    # A 2D layout with scores needs keypoint_score in every sample.
    scored = layouts.custom(V, EDGES, 0, name="toy7_2d", channels=3, score=True)
    annos = [{**toy_sample(f"s{i}", i % 2, 9, np.random.default_rng(i)), "img_shape": (480, 640)} for i in range(4)]
    for a in annos:
        a["keypoint"] = a["keypoint"][..., :2] * 100
        a["keypoint_score"] = np.ones(a["keypoint"].shape[:3], np.float32)
    del annos[2]["keypoint_score"]
    path2 = tmp_path / "scored.pkl"
    save_annotations(path2, {"split": {"train": ["s0", "s1", "s2", "s3"]}, "annotations": annos})
    with pytest.raises(AnnotationError, match=rf"{path2}: sample s2: layout 'toy7_2d' has score channels"):
        pickle_source.load_split(str(path2), "train", scored, 2)
    annos[2]["keypoint_score"] = np.ones((1, 9, V), np.float32)
    save_annotations(path2, {"split": {"train": ["s0", "s1", "s2", "s3"]}, "annotations": annos})
    source = pickle_source.load_split(str(path2), "train", scored, 2)
    x = make_pipeline(scored, "b", 9, 1, "test")(source[0])
    assert x.shape == (1, 2, 9, V, 3)
    np.testing.assert_array_equal(x[0, 0, :, 0, :2], 0)  # the centre's bone
    np.testing.assert_array_equal(x[0, 0, :, :, 2], 1)  # mean of two scores of 1


def test_main_reports_a_missing_split_with_the_file(tmp_path):
    path = tmp_path / "only_train.pkl"
    toy_pickle(path, splits=("train",))
    proc = run(
        "skeljax.main",
        "--config",
        f"configs/custom_pickle.py:{path}",
        "--workdir",
        str(tmp_path / "run"),
        "--config.model.num_classes=2",
        *LAYOUT_FLAGS,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"error: {path}: no split 'val'; the file has splits ['train']" in proc.stderr
    assert not (tmp_path / "run" / "config.json").exists()  # stopped before writing anything of the run
    assert not os.listdir(tmp_path / "run" / "checkpoints")


# ------------------------------------------------------------------------------------------------------------
# End to end: train, test from the saved checkpoint, predict on a .npy.
# ------------------------------------------------------------------------------------------------------------


def test_train_test_and_predict_on_a_custom_pickle(tmp_path):
    path = tmp_path / "toy.pkl"
    data = toy_pickle(path)
    cfg = tmp_path / "small.py"
    cfg.write_text(SMALL_CONFIG)
    workdir = tmp_path / "run"
    proc = run("skeljax.main", "--config", f"{cfg}:{path}", "--workdir", str(workdir), *LAYOUT_FLAGS)
    assert proc.returncode == 0, proc.stderr[-4000:]
    trained = last_json(proc.stdout)
    assert trained["step"] == 2  # 8 train samples / batch 4, one epoch
    assert 0 <= trained["best/test/top1"] <= 1 and trained["best/val_top1"] >= 0
    assert os.listdir(workdir / "checkpoints") == ["2"]
    spec = json.loads((workdir / "best" / "model_spec.json").read_text())["spec"]
    assert (spec["layout"], spec["num_joints"], spec["num_classes"]) == ("checkpoint", V, NUM_CLASSES)
    scores_after_training = ensemble.read_scores(workdir / "test_scores_best.npz")
    assert scores_after_training.names.tolist() == data["split"]["val"]

    # --mode test reloads best/ and repeats the end-of-training test (2 clips per sample here) exactly.
    proc = run("skeljax.main", "--config", f"{cfg}:{path}", "--workdir", str(workdir), "--mode", "test", *LAYOUT_FLAGS)
    assert proc.returncode == 0, proc.stderr[-4000:]
    tested = last_json(proc.stdout)
    assert tested["best"]["test/top1"] == pytest.approx(trained["best/test/top1"])
    again = ensemble.read_scores(workdir / "test_scores_best.npz")
    np.testing.assert_allclose(again.scores, scores_after_training.scores, rtol=1e-5, atol=1e-6)

    # skeljax.predict on the run's best/ model: the layout comes from the run's config.json.
    anno = next(a for a in data["annotations"] if a["frame_dir"] == data["split"]["val"][0])
    npy = tmp_path / "clip.npy"
    np.save(npy, anno["keypoint"])
    pred = P.predict(str(workdir / "best"), str(npy))
    layout = layouts.custom(V, EDGES, 0, name="toy7", zaxis=(0, 1), xaxis=(4, 3))
    model = load_model(str(workdir / "best"))
    x = make_pipeline(layout, "j", CLIP_LEN, TEST_CLIPS, "test")(anno)
    logits = np.asarray(model(x), np.float64)
    want = np.exp(logits - logits.max(1, keepdims=True))
    want = (want / want.sum(1, keepdims=True)).mean(0)
    np.testing.assert_allclose(pred.probs[0], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.probs[0], again.scores[0], rtol=1e-5, atol=1e-6)  # = the test's score
    bad = tmp_path / "six.npy"
    np.save(bad, anno["keypoint"][:, :, :6])
    with pytest.raises(P.PredictError, match=rf"{bad}: expected 7 joints x 3 channels for layout 'toy7', got 6 x 3"):
        P.predict(str(workdir / "best"), str(bad))


def test_resume_refuses_another_pickle_or_other_edges(tmp_path):
    from skeljax.train.checkpoints import TrainCheckpointError, check_resumable, run_signature

    toy_pickle(tmp_path / "a.pkl")
    c = custom_config(str(tmp_path / "a.pkl"))
    saved = run_signature(c)
    check_resumable(saved, c, "ckpt/3")  # the same run resumes
    moved = tmp_path / "moved"
    moved.mkdir()
    os.replace(tmp_path / "a.pkl", moved / "a.pkl")
    check_resumable(saved, custom_config(str(moved / "a.pkl")), "ckpt/3")  # so does a moved copy of the file
    data = toy_pickle(tmp_path / "b.pkl")
    data["annotations"] = data["annotations"][:-1]
    save_annotations(tmp_path / "b.pkl", data)  # a different file (one sample fewer)
    with pytest.raises(TrainCheckpointError, match=r"ckpt/3: .*data\.ann_file"):
        check_resumable(saved, custom_config(str(tmp_path / "b.pkl")), "ckpt/3")
    other = custom_config(str(moved / "a.pkl"), edges=((1, 0), (2, 0), (3, 1), (4, 1), (5, 0), (6, 0)))
    with pytest.raises(TrainCheckpointError, match=r"data\.custom_layout"):
        check_resumable(saved, other, "ckpt/3")
    # Runs on built-in datasets keep the signature they had (no new keys), so their checkpoints still resume.
    assert set(run_signature(schema.base_config())["data"]) == {
        "dataset",
        "builder_kwargs",
        "train_split",
        "batch_size",
        "repeat_times",
        "seed",
    }
