"""Converter parity: released-format PyTorch checkpoints -> skeljax give the PyTorch logits, and back."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from flax import nnx

import skeljax
from skeljax.io import pth as pth_io
from skeljax.models import model_dir, state_dict
from skeljax.models.stgcn import stgcnpp_spec
from skeljax.testing import torch_reference as ref

torch.backends.cudnn.allow_tf32 = False
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rel_err(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def skeljax_logits(model, x):
    return np.asarray(model(np.asarray(x, np.float32)))


@pytest.mark.parametrize(
    "family, layout, style, numpy1",
    [
        ("stgcnpp", "nturgb+d", "pyskl", True),
        ("stgcnpp", "coco", "pyskl", False),
        ("stgcn", "nturgb+d", "pyskl", True),
        ("stgcn", "coco", "bare", False),
    ],
)
def test_pyskl_parity(tmp_path, family, layout, style, numpy1):
    tmodel = ref.build_pyskl_recognizer(family, layout, num_classes=60, seed=3)
    path = ref.save_released_checkpoint(tmodel, tmp_path / "ckpt.pth", style=style, numpy1_style=numpy1)
    model = skeljax.load_pytorch_checkpoint(str(path))
    assert model.spec.family == family and model.spec.num_classes == 60
    for t in (37, 100) if (family, layout) == ("stgcnpp", "nturgb+d") else (37,):
        x = ref.make_inputs(layout, n=3, t=t, seed=t)  # samples 1 has an all-zero second person
        assert float(x[1, 1].abs().sum()) == 0.0
        with torch.no_grad():
            want = tmodel(x).numpy()
        got = skeljax_logits(model, x.numpy())
        assert rel_err(got, want) < 1e-5, (family, layout, t, rel_err(got, want))


def test_mmaction1x_keys_parity(tmp_path):
    tmodel = ref.build_pyskl_recognizer("stgcnpp", "nturgb+d", num_classes=120, seed=5, mmaction1x_keys=True)
    assert "cls_head.fc.weight" in tmodel.state_dict()
    path = ref.save_released_checkpoint(tmodel, tmp_path / "mm1x.pth", style="bare")
    model = skeljax.load_pytorch_checkpoint(str(path))
    assert model.spec.num_classes == 120
    x = ref.make_inputs("nturgb+d", n=2, t=41, seed=1)
    with torch.no_grad():
        want = tmodel(x).numpy()
    assert rel_err(skeljax_logits(model, x.numpy()), want) < 1e-5


@pytest.mark.parametrize("layout, skeljax_layout", [("coco", "mmaction_coco"), ("ntu-rgb+d", "ntu-rgb+d")])
def test_mmaction0x_parity(tmp_path, layout, skeljax_layout):
    tmodel = ref.MMAction0xSTGCN(layout, num_classes=60)
    ref.randomize_(tmodel, seed=7)
    tmodel.eval()
    path = ref.save_released_checkpoint(tmodel, tmp_path / "0x.pth", style="mmaction0x", numpy1_style=True)
    model = skeljax.load_pytorch_checkpoint(str(path))
    assert model.spec.family == "mmaction0x" and model.spec.layout == skeljax_layout
    x = ref.make_inputs("coco" if layout == "coco" else "nturgb+d", n=3, t=37, seed=2)
    with torch.no_grad():
        want = tmodel(ref.to_nctvm(x)).numpy()
    assert rel_err(skeljax_logits(model, x.numpy()), want) < 1e-5


@pytest.mark.parametrize(
    "family, layout, fmt",
    [("stgcnpp", "coco", "pyskl"), ("stgcn", "nturgb+d", "mmaction1x"), ("mmaction0x", "coco", "mmaction0x")],
)
def test_export_loads_in_pytorch_and_round_trips(tmp_path, family, layout, fmt):
    if family == "mmaction0x":
        tmodel = ref.MMAction0xSTGCN(layout, num_classes=60)
        ref.randomize_(tmodel, seed=11)
        x = ref.make_inputs(layout, n=2, t=29, seed=4)
        run_torch = lambda m: m(ref.to_nctvm(x)).numpy()  # noqa: E731
    else:
        tmodel = ref.build_pyskl_recognizer(
            family, layout, num_classes=60, seed=11, mmaction1x_keys=fmt == "mmaction1x"
        )
        x = ref.make_inputs(layout, n=2, t=29, seed=4)
        run_torch = lambda m: m(x).numpy()  # noqa: E731
    tmodel.eval()
    src = ref.save_released_checkpoint(tmodel, tmp_path / "src.pth", style="bare")
    model = skeljax.load_pytorch_checkpoint(str(src))
    out = tmp_path / "export.pth"
    assert skeljax.save_pytorch_checkpoint(model, str(out), fmt) == fmt
    # Exactly the reference key set, order, shapes and dtypes; loads strictly into the PyTorch model.
    loaded = torch.load(out, weights_only=True)
    ref_sd = tmodel.state_dict()
    assert list(loaded["state_dict"]) == list(ref_sd)
    for k, v in ref_sd.items():
        assert loaded["state_dict"][k].shape == v.shape and loaded["state_dict"][k].dtype == v.dtype, k
    fresh = (
        ref.MMAction0xSTGCN(layout, num_classes=60)
        if family == "mmaction0x"
        else ref.build_pyskl_recognizer(family, layout, 60, seed=99, mmaction1x_keys=fmt == "mmaction1x")
    )
    fresh.load_state_dict(loaded["state_dict"], strict=True)
    fresh.eval()
    with torch.no_grad():
        np.testing.assert_array_equal(run_torch(fresh), run_torch(tmodel))
    # skeljax -> .pth -> skeljax is the identity on every tensor.
    again = skeljax.load_pytorch_checkpoint(str(out))
    a, b = model_dir.model_state(model), model_dir.model_state(again)
    import jax

    for (pa, va), (pb, vb) in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves_with_path(b)):
        assert pa == pb
        np.testing.assert_array_equal(np.asarray(va), np.asarray(vb))


@pytest.mark.slow
def test_convert_script_both_ways(tmp_path):
    tmodel = ref.build_pyskl_recognizer("stgcn", "coco", num_classes=8, seed=1)
    src = ref.save_released_checkpoint(tmodel, tmp_path / "j.pth", style="pyskl", numpy1_style=True)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    run = lambda *a: subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts/convert_checkpoint.py"), *a],  # noqa
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    r = run(str(src), str(tmp_path / "ck"))
    assert r.returncode == 0, r.stderr
    assert "stgcn" in r.stdout and "8 classes" in r.stdout
    model = model_dir.load_model(str(tmp_path / "ck"))
    x = ref.make_inputs("coco", n=2, t=23, seed=0)
    with torch.no_grad():
        want = tmodel(x).numpy()
    assert rel_err(skeljax_logits(model, x.numpy()), want) < 1e-5
    r = run("--to-pytorch", str(tmp_path / "ck"), str(tmp_path / "back.pth"))
    assert r.returncode == 0, r.stderr
    back = torch.load(tmp_path / "back.pth", weights_only=True)["state_dict"]
    for k, v in tmodel.state_dict().items():
        np.testing.assert_array_equal(back[k].numpy(), v.numpy())
    # Refuses to overwrite an existing directory; a broken source gives one clear line and exit 1.
    r = run(str(src), str(tmp_path / "ck"))
    assert r.returncode == 1 and "already exists" in r.stderr
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    r = run(str(tmp_path / "bad.pth"), str(tmp_path / "ck2"))
    assert r.returncode == 1 and "bad.pth" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "ck2").exists()


REFUSED_0X = "cannot export as MMAction2 0.x or the original ST-GCN: "


@pytest.fixture(scope="module")
def stgcnpp_dirs(tmp_path_factory):
    """Two ST-GCN++ model directories: converted from a released-format model (each block has its own A) and
    freshly built (every block's A still the initial graph)."""
    d = tmp_path_factory.mktemp("stgcnpp")
    small = {"base_channels": 8, "num_stages": 4, "inflate_stages": [3], "down_stages": [3]}  # quick to build
    backbone = ref.mmaction_stgcn_class()(**ref.pyskl_backbone_kwargs("stgcnpp", "nturgb+d"), **small)
    released = ref.randomize_(ref.PysklRecognizer(backbone, ref.GCNHeadRef(60, 16), "nturgb+d"), seed=3)
    sd = {k: v.numpy() for k, v in released.state_dict().items()}
    model_dir.save_model(str(d / "released"), state_dict.model_from_state_dict(sd))
    model_dir.save_model(str(d / "fresh"), skeljax.Recognizer(stgcnpp_spec(60, **small), rngs=nnx.Rngs(0)))
    return d


@pytest.mark.parametrize("fmt", ["mmaction0x", "stgcn_original"])
def test_export_to_0x_refuses_st_gcn_pp_with_the_documented_line(stgcnpp_dirs, tmp_path, capsys, fmt):
    """docs/converting_checkpoints.md: MMAction2 0.x (and the original release) store one graph shared by all blocks
    and only ST-GCN's blocks; skeljax-convert --to-pytorch refuses anything else in one line and writes nothing."""
    from skeljax import convert

    for name, problem in (
        ("released", "the blocks' graphs A differ (they store one shared A)"),
        ("fresh", "only the ST-GCN architecture (edge importance, 9x1 temporal convolutions) exists there"),
    ):
        dst = tmp_path / f"{name}.pth"
        assert convert.main(["--to-pytorch", str(stgcnpp_dirs / name), str(dst), "--format", fmt]) == 1
        assert capsys.readouterr().err.strip().splitlines() == [f"error: {REFUSED_0X}{problem}"]
        assert os.listdir(tmp_path) == []  # nothing written, not even a temporary file


def test_mismatched_checkpoint_lists_keys(tmp_path):
    tmodel = ref.build_pyskl_recognizer("stgcnpp", "coco", num_classes=60, seed=2)
    sd = {k: v.numpy() for k, v in tmodel.state_dict().items()}
    model = state_dict.model_from_state_dict(sd)
    broken = dict(sd)
    del broken["backbone.gcn.3.tcn.bn.weight"]
    broken["backbone.gcn.3.extra.weight"] = np.zeros(3, np.float32)
    broken["backbone.gcn.5.gcn.conv.weight"] = np.zeros((384, 64, 1, 1), np.float32)
    with pytest.raises(state_dict.CheckpointMismatchError) as e:
        state_dict.load_state_dict(model, broken, "/x/broken.pth")
    msg = str(e.value)
    assert "/x/broken.pth" in msg
    assert "missing keys (1): backbone.gcn.3.tcn.bn.weight" in msg
    assert "unexpected keys (1): backbone.gcn.3.extra.weight" in msg
    assert "backbone.gcn.5.gcn.conv.weight: checkpoint (384, 64, 1, 1), model (384, 128, 1, 1)" in msg


def test_other_architecture_and_bad_files(tmp_path):
    resnet_like = {"conv1.weight": np.zeros((64, 3, 7, 7), np.float32), "fc.weight": np.zeros((10, 512), np.float32)}
    pth_io.save_pth(tmp_path / "resnet.pth", {"state_dict": resnet_like})
    with pytest.raises(state_dict.CheckpointMismatchError, match="resnet.pth: not an ST-GCN"):
        skeljax.load_pytorch_checkpoint(str(tmp_path / "resnet.pth"))
    good = ref.save_released_checkpoint(
        ref.build_pyskl_recognizer("stgcn", "coco", 5, seed=0), tmp_path / "g.pth", style="pyskl"
    )
    data = open(good, "rb").read()
    (tmp_path / "trunc.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="trunc.pth"):
        skeljax.load_pytorch_checkpoint(str(tmp_path / "trunc.pth"))
    with pytest.raises(ValueError, match="NaN or inf"):
        sd = {k: v.numpy().copy() for k, v in torch.load(good, weights_only=False)["state_dict"].items()}
        sd["cls_head.fc_cls.bias"][0] = np.nan
        state_dict.model_from_state_dict(sd, "nan.pth")


def test_infer_spec_from_keys():
    sd = {
        k: v.numpy() for k, v in ref.build_pyskl_recognizer("stgcnpp", "nturgb+d", 60, seed=None).state_dict().items()
    }
    spec, family = state_dict.infer_spec(sd)
    assert family == "stgcnpp"
    assert (spec.gcn_adaptive, spec.gcn_with_res, spec.tcn_type, spec.data_bn_type) == ("init", True, "mstcn", "VC")
    assert (spec.inflate_stages, spec.down_stages, spec.num_stages, spec.layout) == ((5, 8), (5, 8), 10, "nturgb+d")
