"""Model directories carry their test settings (model_spec.json "test"): the trainer's exports, skeljax-convert and
`zoo get` write them, `skeljax.predict` reads them without flags, flags replace them, and directories written before
the key predict as they always did."""

import importlib.util
import json
import os
import shutil

import numpy as np
import pytest

from skeljax import convert, train, zoo
from skeljax import predict as P
from skeljax.config import recipes
from skeljax.data import generate_synthetic
from skeljax.data.ntu_meta import NTU60_CLASSES
from skeljax.data.synthetic import SYNTHETIC_CLASSES
from skeljax.models import state_dict
from skeljax.models.model_dir import SPEC_FILE, TEST_KEY, load_model, save_model
from skeljax.models.stgcn import stgcnpp_spec
from skeljax.predict.settings import row_settings
from skeljax.zoo import download
from tests.helpers import SMALL, small_model, tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BONE_ROW = "stgcnpp_ntu60_xsub_3d_b"


def spec_json(model_dir) -> dict:
    with open(os.path.join(model_dir, SPEC_FILE)) as f:
        return json.load(f)


def settings_of(p: P.Predictor) -> tuple:
    return (p.layout.name, p.feat, p.recipe, p.clip_len, p.num_clips, p.average, p.class_names)


@pytest.fixture(scope="module")
def ntu(tmp_path_factory):
    """A small NTU-60 model saved as a PYSKL .pth, and a 40-frame NTU-25 3D input."""
    d = tmp_path_factory.mktemp("settings")
    model = small_model(stgcnpp_spec(60, **SMALL), 5)
    state_dict.save_pytorch_checkpoint(model, str(d / "b.pth"), "pyskl")
    anno = generate_synthetic(2, seed=4)["annotations"][0]
    np.save(d / "clip.npy", anno["keypoint"][:, :40].astype(np.float32))
    return {"dir": d, "model": model, "pth": str(d / "b.pth"), "npy": str(d / "clip.npy")}


def explicit(model, **settings) -> P.Predictor:
    """The reference: a Predictor given every setting by hand (PYSKL recipe unless told)."""
    s = {"feat": "j", "recipe": "pyskl", "clip_len": 100, "num_clips": 10, "average": "prob", **settings}
    return P.Predictor(model, "<explicit>", **s)


def test_trained_exports_carry_the_run_settings(data_dir, tmp_path):
    cfg = tiny_config(data_dir, **{"data.feat": "b", "num_epochs": 1, "test_last": False, "test_best": False})
    workdir = tmp_path / "run"
    train.train_and_evaluate(cfg, str(workdir))
    for name in ("best", "final"):
        stored = spec_json(workdir / name)[TEST_KEY]
        assert stored == {
            "layout": "nturgb+d",
            "feat": "b",
            "recipe": "pyskl",
            "clip_len": 8,
            "test_num_clips": 2,
            "test_average": "prob",
            "class_names": list(SYNTHETIC_CLASSES),
        }
    # Moved away from the run (no config.json beside it), the export still predicts with its own settings.
    moved = shutil.copytree(workdir / "final", tmp_path / "elsewhere" / "model")
    p = P.load_predictor(moved)
    assert settings_of(p) == ("nturgb+d", "b", "pyskl", 8, 2, "prob", SYNTHETIC_CLASSES)
    anno = generate_synthetic(2, seed=9)["annotations"][2]
    got = P.predict(p, anno)
    ref = explicit(load_model(str(moved)), feat="b", clip_len=8, num_clips=2, class_names=SYNTHETIC_CLASSES)
    want = P.predict(ref, anno)
    np.testing.assert_allclose(got.probs, want.probs, rtol=1e-6, atol=1e-7)
    assert got.class_names == SYNTHETIC_CLASSES and got.top_k(0)[0]["label"] in SYNTHETIC_CLASSES


def test_converted_bone_model_needs_no_flag_at_predict_time(ntu, capsys):
    dst = str(ntu["dir"] / "b_model")
    assert convert.main([ntu["pth"], dst, "--feat", "b"]) == 0
    assert "feat b, recipe pyskl" in capsys.readouterr().out
    stored = spec_json(dst)[TEST_KEY]
    assert stored == {
        "layout": "nturgb+d",
        "feat": "b",
        "recipe": "pyskl",
        "clip_len": 100,
        "test_num_clips": 10,
        "test_average": "prob",
        "source": ntu["pth"],
    }
    got = P.predict(dst, ntu["npy"])
    want = P.predict(explicit(ntu["model"], feat="b"), ntu["npy"])
    np.testing.assert_allclose(got.probs, want.probs, rtol=1e-6, atol=1e-7)
    # the bone model is not what the joint pipeline gives: the stored feat is really used
    joint = P.predict(explicit(ntu["model"], feat="j"), ntu["npy"])
    assert np.abs(joint.probs - got.probs).max() > 1e-3
    # the CLI with no flag prints the same top-5
    assert P.main(["--checkpoint", dst, "--input", ntu["npy"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["top5"] == want.top_k(0)


def test_converter_flags_and_labels(ntu, tmp_path):
    dst = str(tmp_path / "m")
    flags = ["--feat", "jm", "--clip-len", "50", "--test-num-clips", "2", "--test-average", "score"]
    assert convert.main([ntu["pth"], dst, *flags, "--labels", "ntu60"]) == 0
    p = P.load_predictor(dst)
    assert settings_of(p) == ("nturgb+d", "jm", "pyskl", 50, 2, "score", NTU60_CLASSES)
    assert P.load_predictor(dst, recipe="vanilla").clip_len == 300
    # settings the test pipeline cannot take are refused before anything is written
    assert convert.main([ntu["pth"], str(tmp_path / "bad"), "--recipe", "vanilla", "--test-num-clips", "2"]) == 1
    assert not os.path.exists(tmp_path / "bad")


def test_converter_takes_the_zoo_rows_settings(ntu, tmp_path):
    dst = str(tmp_path / "zoo_b")
    assert convert.main([ntu["pth"], dst, "--zoo", BONE_ROW]) == 0
    meta = spec_json(dst)
    row = zoo.find_row(BONE_ROW)
    assert meta["source"] == row.url
    assert meta[TEST_KEY] == {
        "layout": "nturgb+d",
        "feat": "b",
        "recipe": "pyskl",
        "clip_len": 100,
        "test_num_clips": 10,
        "test_average": "prob",
        "class_names": list(NTU60_CLASSES),
        "source": "https://download.openmmlab.com/mmaction/pyskl/ckpt/stgcnpp/stgcnpp_ntu60_xsub_3dkp/b.pth",
    }


def test_flags_override_the_stored_settings(ntu, tmp_path):
    dst = str(tmp_path / "b")
    assert convert.main([ntu["pth"], dst, "--feat", "b"]) == 0
    assert P.load_predictor(dst, feat="jm").feat == "jm"
    # another recipe brings its own clip settings, not the stored recipe's 10 x 100
    van = P.load_predictor(dst, recipe="vanilla")
    assert settings_of(van)[1:6] == ("b", "vanilla", 300, 1, "prob")
    got = P.predict(dst, ntu["npy"], feats="j")
    want = P.predict(explicit(ntu["model"], feat="j"), ntu["npy"])
    np.testing.assert_allclose(got.probs, want.probs, rtol=1e-6, atol=1e-7)


def test_directories_without_the_key_predict_as_before(ntu, tmp_path):
    old = str(tmp_path / "old")
    save_model(old, ntu["model"], extra={"source": "x.pth"})  # as the converter wrote it before
    assert TEST_KEY not in spec_json(old)
    p = P.load_predictor(old)
    assert settings_of(p) == ("nturgb+d", "j", "pyskl", 100, 10, "prob", None)
    assert P.load_predictor(old, feat="b").feat == "b"
    np.testing.assert_allclose(
        P.predict(p, ntu["npy"]).probs, P.predict(explicit(ntu["model"]), ntu["npy"]).probs, rtol=1e-6, atol=1e-7
    )
    # an old run export: the settings come from the run's config.json beside it, and flat keys still refuse conflicts
    best = tmp_path / "run" / "best"
    save_model(str(best), ntu["model"], extra={"step": 3})
    (tmp_path / "run" / "config.json").write_text(json.dumps({"data": {"feat": "bm", "clip_len": 50}}))
    assert settings_of(P.load_predictor(best))[1:5] == ("bm", "pyskl", 50, 10)
    with pytest.raises(P.PredictError, match="trained on feat 'bm' but feat 'j'"):
        P.load_predictor(best, feat="j")


def test_every_zoo_row_config_is_its_config_file():
    """recipes.config_of builds each row's config without the configs/ folder; it must equal that file's."""
    for row in zoo.zoo_rows():
        file, _, variant = row.config.partition(":")
        spec = importlib.util.spec_from_file_location("cfg", os.path.join(REPO, file))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert recipes.config_of(row.config).to_dict() == module.get_config(variant or None).to_dict(), row.name


def test_zoo_get_writes_and_adds_the_settings(ntu, tmp_path, monkeypatch):
    row = zoo.find_row(BONE_ROW)
    mirror = tmp_path / "mirror"
    dest = mirror / row.url.split("://", 1)[1].split("/", 1)[1]
    dest.parent.mkdir(parents=True)
    shutil.copy(ntu["pth"], dest)
    monkeypatch.setenv("SKELJAX_CACHE", str(tmp_path / "cache"))
    model_dir = download.get(BONE_ROW, mirror=f"file://{mirror}", quiet=True)
    assert spec_json(model_dir)[TEST_KEY] == row_settings(row)
    assert P.load_predictor(model_dir).feat == "b"
    # a directory a previous version converted (no key) gets its row's settings on the next get
    meta = spec_json(model_dir)
    del meta[TEST_KEY]
    with open(os.path.join(model_dir, SPEC_FILE), "w") as f:
        json.dump(meta, f)
    assert download.get(BONE_ROW, quiet=True) == model_dir
    assert spec_json(model_dir)[TEST_KEY]["feat"] == "b"
