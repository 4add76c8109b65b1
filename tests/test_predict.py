"""skeljax.predict: every input kind, test pipelines, fusion, features, the CLI's JSON and its user errors."""

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from skeljax import metrics
from skeljax import predict as P
from skeljax.data import generate_synthetic, read_ntu_skeleton, read_ntu_skeleton_mmaction0x
from skeljax.data.annotations import save_annotations
from skeljax.data.ntu_meta import NTU60_CLASSES
from skeljax.data.synthetic import SYNTHETIC_CLASSES
from skeljax.models import state_dict
from skeljax.models.model_dir import save_model
from skeljax.models.stgcn import mmaction0x_spec, stgcn_original_spec, stgcn_pyskl_spec, stgcnpp_spec
from skeljax.testing import torch_reference as tr
from tests import numpy_reference_transforms as npref
from tests.helpers import SMALL, body, frames_from, small_model, write_skeleton


def reference_input(anno, feat="j", *, recipe="pyskl", layout="nturgb+d"):
    """The test pipeline of `recipe` written out with the loop-based NumPy transforms of
    tests/numpy_reference_transforms.py (after PYSKL's and MMAction2 0.x's classes), not skeljax.data: (clips, 2, T,
    V, C) float32."""
    if recipe == "mmaction0x":  # PaddingWithLoop to 300, PoseDecode, NCTVM: joints only, no normalisation in 3D
        return npref.mmaction0x(np.asarray(anno["keypoint"]), None)
    if layout == "coco":
        kp, n = npref.prenormalize2d(anno["keypoint"], anno["keypoint_score"], anno["img_shape"]), anno["total_frames"]
    else:
        kp, n = npref.prenormalize3d(np.asarray(anno["keypoint"]))
    kp = npref.features(kp, layout, feat)
    if recipe == "vanilla":  # PadTo(300) over the whole sequence, one clip
        return npref.format_gcn(npref.pad_to_zero(npref.gather(kp, range(n)), 300), 1)
    return npref.format_gcn(npref.gather(kp, npref.uniform_sample(n, 100, 10, True)), 10)


def torch_twin(model, layout="nturgb+d"):
    """The PyTorch reference network (MMAction2 1.2.0's STGCN with PYSKL's GCNHead) holding `model`'s weights, moved
    through the converter's PYSKL key table (checked against PyTorch on its own in tests/test_convert.py)."""
    kwargs = {**tr.pyskl_backbone_kwargs("stgcnpp", layout), **SMALL}
    head = tr.GCNHeadRef(model.spec.num_classes, SMALL["base_channels"] * 2)
    twin = tr.PysklRecognizer(tr.mmaction_stgcn_class()(**kwargs), head, layout)
    sd = state_dict.model_state_dict(model, "pyskl")
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd.items()}, strict=True)
    return twin.double().eval()


def reference_probs(model, anno, feat="j", *, recipe="pyskl", layout="nturgb+d", average="prob"):
    """Independent path: the NumPy reference pipeline, the PyTorch reference network in float64, softmax in float64
    (mean over clips, or of the mean logits for average='score'); also the pooled features averaged over clips."""
    x = torch.from_numpy(reference_input(anno, feat, recipe=recipe, layout=layout)).double()
    twin = torch_twin(model, layout)
    with torch.no_grad():
        pooled = twin.backbone(x).mean(dim=(3, 4)).mean(dim=1)  # (clips, C): over T', V, then persons
        logits = twin.cls_head(twin.backbone(x)).numpy()
    if average == "score":
        logits = logits.mean(0, keepdims=True)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).mean(0), pooled.numpy().mean(0)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Two small NTU models (J saved without feat, B saved with feat 'b'), and inputs of every kind."""
    d = tmp_path_factory.mktemp("predict")
    mj = small_model(stgcnpp_spec(60, **SMALL), 0)
    mb = small_model(stgcnpp_spec(60, **SMALL), 1)
    save_model(str(d / "j_model"), mj)
    save_model(str(d / "b_model"), mb, extra={"feat": "b"})
    annos = generate_synthetic(2, seed=3)["annotations"][:3]
    for a in annos:  # short sequences keep the pipelines fast
        a["keypoint"] = a["keypoint"][:, :40]
        a["total_frames"] = 40
    save_annotations(d / "annos.pkl", {"split": {"val": [a["frame_dir"] for a in annos]}, "annotations": annos})
    np.save(d / "clip.npy", annos[0]["keypoint"].astype(np.float32))
    skel = write_skeleton(
        d,
        frames_from((72057594037931101, 0, body(30)), (72057594037931102, 2, body(26, 0.9))),
        name="S001C002P003R002A013",
    )
    return {
        "dir": d,
        "mj": mj,
        "mb": mb,
        "annos": annos,
        "npy": str(d / "clip.npy"),
        "skel": str(skel),
        "pkl": str(d / "annos.pkl"),
        "pj": P.load_predictor(d / "j_model"),
        "pb": P.load_predictor(d / "b_model"),
    }


def test_npy_matches_independent_pipeline_and_model(work):
    pred = P.predict(work["pj"], work["npy"], return_features=True)
    anno = {"frame_dir": "clip", "keypoint": np.load(work["npy"]), "total_frames": 40}
    ref, ref_feat = reference_probs(work["mj"], anno)
    assert pred.names == ["clip"] and pred.labels == [None]
    np.testing.assert_allclose(pred.probs[0], ref, rtol=1e-5, atol=1e-7)
    assert ref.max() > 0.1  # the sharpened head makes the comparison meaningful
    assert pred.features[0].shape == (1, 16)  # base 8 channels, doubled once (stage 3)
    np.testing.assert_allclose(pred.features[0][0], ref_feat, rtol=1e-5, atol=1e-6)
    top = pred.top_k(0)
    assert [t["index"] for t in top] == list(np.argsort(-ref)[:5])
    assert [t["label"] for t in top] == [NTU60_CLASSES[t["index"]] for t in top]


def test_skeleton_file_uses_pyskl_conversion(work):
    pred = P.predict(work["pj"], work["skel"])
    ref, _ = reference_probs(work["mj"], read_ntu_skeleton(work["skel"]))
    np.testing.assert_allclose(pred.probs[0], ref, rtol=1e-5, atol=1e-7)
    assert pred.names == ["S001C002P003R002A013"] and pred.labels == [12]


def test_pickle_all_samples_and_one_sample(work):
    pred = P.predict(work["pj"], work["pkl"])
    assert pred.names == [a["frame_dir"] for a in work["annos"]]
    assert pred.labels == [a["label"] for a in work["annos"]]
    for i, a in enumerate(work["annos"]):
        np.testing.assert_allclose(pred.probs[i], reference_probs(work["mj"], a)[0], rtol=1e-5, atol=1e-7)
    name = work["annos"][1]["frame_dir"]
    one = P.predict(work["pj"], work["pkl"], sample=name)
    assert one.names == [name]
    np.testing.assert_allclose(one.probs[0], pred.probs[1], rtol=1e-6)
    scores = pred.to_scores()  # the record of evaluation and score files, with its metric names
    assert scores.names.tolist() == pred.names and scores.labels.tolist() == pred.labels
    np.testing.assert_array_equal(scores.scores, pred.scores)
    top1 = np.mean(np.argmax(pred.scores, axis=1) == np.asarray(pred.labels))
    assert metrics.classification_metrics(scores)["top1"] == pytest.approx(top1)
    with pytest.raises(P.PredictError, match="no ground-truth label for 1 samples"):
        P.predict(work["pj"], work["npy"]).to_scores()


def test_stored_feat_is_used_and_conflicts_are_errors(work):
    assert work["pb"].feat == "b" and work["pj"].feat == "j"
    pred = P.predict(work["pb"], work["npy"])
    anno = {"frame_dir": "clip", "keypoint": np.load(work["npy"]), "total_frames": 40}
    np.testing.assert_allclose(pred.probs[0], reference_probs(work["mb"], anno, "b")[0], rtol=1e-5, atol=1e-7)
    with pytest.raises(P.PredictError, match="trained on feat 'b' but feat 'j'"):
        P.load_predictor(work["dir"] / "b_model", feat="j")
    # a model directory without a stored feat takes the requested one
    assert P.load_predictor(work["dir"] / "j_model", feat="jm").feat == "jm"


def test_run_config_supplies_feat_for_best_dir(work, tmp_path):
    save_model(str(tmp_path / "best"), work["mj"])
    (tmp_path / "config.json").write_text(json.dumps({"data": {"feat": "bm", "recipe": "pyskl"}}))
    assert P.load_predictor(tmp_path / "best").feat == "bm"


def test_fusion_weights(work):
    anno = {"frame_dir": "clip", "keypoint": np.load(work["npy"]), "total_frames": 40}
    pj, pb = reference_probs(work["mj"], anno)[0], reference_probs(work["mb"], anno, "b")[0]
    two = P.predict([work["pj"], work["pb"]], work["npy"])
    assert two.weights == [1.0, 1.0]
    np.testing.assert_allclose(two.scores[0], pj + pb, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(two.probs[0], (pj + pb) / 2, rtol=1e-5, atol=1e-7)
    w = P.predict([work["pj"], work["pb"]], work["npy"], weights=[3, 1])
    np.testing.assert_allclose(w.scores[0], 3 * pj + pb, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(w.probs[0].sum(), 1.0, rtol=1e-6)
    # four streams from one model: J, B, JM, BM with PYSKL's 2:2:1:1
    streams = [P.from_model(work["mj"], feat=f) for f in ("j", "b", "jm", "bm")]
    four = P.predict(streams, anno)
    refs = [reference_probs(work["mj"], anno, f)[0] for f in ("j", "b", "jm", "bm")]
    assert four.weights == [2.0, 2.0, 1.0, 1.0]
    np.testing.assert_allclose(four.scores[0], 2 * refs[0] + 2 * refs[1] + refs[2] + refs[3], rtol=1e-5, atol=1e-7)
    with pytest.raises(P.PredictError, match="1 weights for 2 checkpoints"):
        P.predict([work["pj"], work["pb"]], anno, weights=[1])


def test_vanilla_and_mmaction0x_recipes(work):
    anno = {"frame_dir": "clip", "keypoint": np.load(work["npy"]), "total_frames": 40}
    van = P.from_model(work["mj"], recipe="vanilla")
    assert (van.clip_len, van.num_clips, van.average) == (300, 1, "prob")
    ref, _ = reference_probs(work["mj"], anno, recipe="vanilla")
    np.testing.assert_allclose(P.predict(van, anno).probs[0], ref, rtol=1e-5, atol=1e-7)
    # MMAction2 0.x: its own .skeleton conversion, 300 looped frames, softmax of the raw logits. The recipe is
    # forced on the small PYSKL model here (building a 0.x model costs another ~15 s of compiling).
    p0 = P.from_model(work["mj"], recipe="mmaction0x")
    assert (p0.recipe, p0.average, p0.num_clips, p0.conversion) == ("mmaction0x", "score", 1, "mmaction0x")
    ref0, _ = reference_probs(
        work["mj"], read_ntu_skeleton_mmaction0x(work["skel"]), recipe="mmaction0x", average="score"
    )
    np.testing.assert_allclose(P.predict(p0, work["skel"]).probs[0], ref0, rtol=1e-5, atol=1e-7)
    with pytest.raises(P.PredictError, match="joint input only"):
        P.from_model(work["mj"], recipe="mmaction0x", feat="b")


def test_default_recipe_follows_the_family():
    assert P.default_recipe(SimpleNamespace(spec=mmaction0x_spec(60))) == "mmaction0x"
    assert P.default_recipe(SimpleNamespace(spec=stgcnpp_spec(60))) == "pyskl"
    assert P.default_recipe(SimpleNamespace(spec=stgcn_pyskl_spec(60))) == "pyskl"  # vanilla must be asked for
    assert P.default_recipe(SimpleNamespace(spec=stgcn_original_spec(400))) == "stgcn_original"
    assert (
        P.default_recipe(SimpleNamespace(spec=stgcn_original_spec(60, "nturgb+d"))) == "stgcn_original"
    )  # its raw-coordinate NTU input


@pytest.mark.slow  # a COCO-17 model: ~20 s of compiling
def test_coco_npy_with_scores(tmp_path):
    model = small_model(stgcnpp_spec(14, "coco", **SMALL), 4)
    a = generate_synthetic(2, seed=1, kind="2d")["annotations"][12]  # a two-person class
    kp, sc = a["keypoint"][:, :30], a["keypoint_score"][:, :30]
    np.save(tmp_path / "pose2d.npy", np.concatenate([kp, sc[..., None]], -1))
    pred = P.predict(model, str(tmp_path / "pose2d.npy"), labels="synthetic")
    anno = {"frame_dir": "p", "keypoint": kp, "keypoint_score": sc, "total_frames": 30, "img_shape": (1080, 1920)}
    np.testing.assert_allclose(pred.probs[0], reference_probs(model, anno, layout="coco")[0], rtol=1e-5, atol=1e-7)
    assert pred.top_k(0)[0]["label"] in SYNTHETIC_CLASSES
    with pytest.raises(
        P.PredictError,
        match=r"<array 0>: expected 17 joints x 3 channels \(x, y, score\) for layout 'coco', got 17 x 2",
    ):
        P.predict(model, kp)  # an array without the score channel


@pytest.mark.slow  # the full-size ST-GCN++: ~20 s of compiling
def test_pth_checkpoint_matches_pytorch(tmp_path):
    torch_model = tr.build_pyskl_recognizer("stgcnpp", "nturgb+d", 60, seed=0)
    path = tr.save_released_checkpoint(torch_model, tmp_path / "j.pth", style="pyskl")
    a = generate_synthetic(2, seed=5)["annotations"][4]
    a["keypoint"], a["total_frames"] = a["keypoint"][:, :50], 50
    pred = P.predict(path, a, return_features=True)
    x = reference_input(a)
    with torch.no_grad():
        ref = torch_model.forward_test(torch.from_numpy(x)[None]).numpy()[0]
    np.testing.assert_allclose(pred.probs[0], ref, rtol=1e-4, atol=1e-6)
    assert pred.features[0].shape == (1, 256)


# ---------------------------------------------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------------------------------------------


def test_cli_json_lines(work, capsys):
    assert P.main(["--checkpoint", str(work["dir"] / "j_model"), "--input", work["pkl"], "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for line, a in zip(lines, work["annos"]):
        obj = json.loads(line)
        assert list(obj) == ["top5"] and len(obj["top5"]) == 5
        ref = reference_probs(work["mj"], a)[0]
        for t, j in zip(obj["top5"], np.argsort(-ref)[:5]):
            assert set(t) == {"index", "label", "prob"}
            assert t["index"] == int(j) and t["label"] == NTU60_CLASSES[j]
            assert t["prob"] == pytest.approx(ref[j], rel=1e-5)


def test_cli_text_and_labels_file(work, capsys, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"action number {i}" for i in range(60)) + "\n")
    args = ["--checkpoint", str(work["dir"] / "j_model"), "--input", work["skel"]]
    assert P.main(args + ["--labels", str(names)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("S001C002P003R002A013  (ground truth: action number 12)")
    assert len([ln for ln in out.splitlines() if "action number" in ln]) == 6
    assert P.main(args + ["--labels", "synthetic"]) == 1
    assert "14 class names for a model with 60 classes" in capsys.readouterr().err


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_input", "nothing.npy: no such input file"),
        ("extension", "clip.txt: unknown input type '.txt'"),
        ("missing_ckpt", "no_model: no such checkpoint"),
        ("layout", "pose2d.npy: expected 25 joints x 3 channels for layout 'nturgb+d', got 17 x 3"),
        ("pickle_layout", "2d.pkl: sample S001C001P001R001A001: expected 25 joints x 3 channels"),
        ("sample", "annos.pkl: no sample with frame_dir 'S999'"),
        ("bad_npy", "junk.npy: cannot read as a .npy array"),
    ],
)
def test_cli_user_errors(work, capsys, tmp_path, case, message):
    ckpt, inp, extra = str(work["dir"] / "j_model"), work["npy"], []
    if case == "missing_input":
        inp = str(tmp_path / "nothing.npy")
    elif case == "extension":
        inp = str(tmp_path / "clip.txt")
        (tmp_path / "clip.txt").write_text("1 2 3")
    elif case == "missing_ckpt":
        ckpt = str(tmp_path / "no_model")
    elif case == "layout":
        inp = str(tmp_path / "pose2d.npy")
        np.save(inp, np.zeros((1, 5, 17, 3), np.float32))
    elif case == "pickle_layout":
        inp = str(tmp_path / "2d.pkl")
        save_annotations(inp, generate_synthetic(2, kind="2d"))
    elif case == "sample":
        inp, extra = work["pkl"], ["--sample", "S999"]
    elif case == "bad_npy":
        inp = str(tmp_path / "junk.npy")
        (tmp_path / "junk.npy").write_bytes(b"not numpy")
    assert P.main(["--checkpoint", ckpt, "--input", inp] + extra) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_cli_runs_as_module(work):
    import subprocess
    import sys

    env = dict(os.environ, JAX_PLATFORMS="cpu")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "skeljax.predict",
            "--checkpoint",
            str(work["dir"] / "j_model"),
            "--input",
            str(work["dir"] / "missing.skeleton"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "missing.skeleton: no such input file" in r.stderr
