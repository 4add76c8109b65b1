"""The ST-GCN authors' released checkpoints: loading (legacy and zip files, with and without `A`), parity with the
original network, export back in its keys, and the family in configs."""

import collections
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import skeljax
from skeljax.config import schema
from skeljax.models import graph, model_dir, state_dict, stgcn
from skeljax.testing import torch_reference_original as orig
from tests.helpers import ORIGINAL_NUM_CLASSES, random_original

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def save(net, path, *, zip_format, with_a=True):
    sd = collections.OrderedDict((k, v.clone()) for k, v in net.state_dict().items() if with_a or k != "A")
    torch.save(sd, path, _use_new_zipfile_serialization=zip_format)
    return str(path)


def rel_err(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def to_model_input(x_nctvm):
    """(N, C, T, V, M) -> skeljax's (N, M, T, V, C)."""
    return x_nctvm.permute(0, 4, 2, 3, 1).contiguous().numpy()


def test_reference_graph_matches_the_library_graph():
    for layout in ORIGINAL_NUM_CLASSES:
        want = orig.spatial_graph(layout).astype(np.float32)
        np.testing.assert_array_equal(graph.adjacency(stgcn.ORIGINAL_GRAPHS[layout], "mmaction_spatial"), want)
    # By hand on OpenPose: the neck (centre, 1) reaches itself, the nose (0) and the shoulders (2, 5); the nose
    # itself, the neck and the eyes (14, 15). [k, j, i] weights joint j into joint i by 1 / (i's one-hop count).
    a = orig.spatial_graph("openpose")
    assert a[0, 1, 1] == 1 / 4  # root
    assert a[1, 0, 1] == 1 / 4 and a[2, 0, 1] == 0  # nose into neck: the nose is further from the centre
    assert a[2, 1, 0] == 1 / 4 and a[1, 1, 0] == 0  # neck into nose: the neck is nearer
    assert a[:, 14, 0].sum() == 1 / 4 and a[:, 16, 0].sum() == 0  # right eye into nose; the ear is two hops away
    np.testing.assert_allclose(a.sum(axis=(0, 1)), np.ones(18))


@pytest.mark.parametrize(
    "layout, zip_format, with_a",
    [("openpose", False, True), ("openpose", True, False), ("ntu-rgb+d", True, True), ("ntu-rgb+d", False, False)],
)
def test_original_checkpoint_parity(tmp_path, layout, zip_format, with_a):
    net = random_original(layout, seed=5)
    path = save(net, tmp_path / "st_gcn.pt", zip_format=zip_format, with_a=with_a)
    with open(path, "rb") as f:
        assert (f.read(2) == b"PK") == zip_format  # the legacy format is not a zip archive
    model = skeljax.load_pytorch_checkpoint(path)
    spec = model.spec
    assert spec.family == "stgcn_original" and spec.num_classes == ORIGINAL_NUM_CLASSES[layout]
    assert spec.layout == layout and spec.gcn_adaptive == "importance" and spec.data_bn_type == "VC"
    x = net.example_input(n=3, t=40, seed=2)
    assert float(x[1, ..., 1].abs().sum()) == 0.0
    with torch.no_grad():
        want = net(x).numpy()
    got = np.asarray(model(to_model_input(x)))
    assert rel_err(got, want) < 1e-5, rel_err(got, want)


def test_export_round_trip_same_keys_and_tensors(tmp_path):
    net = random_original("openpose", seed=9)
    model = skeljax.load_pytorch_checkpoint(save(net, tmp_path / "src.pt", zip_format=False))
    out = tmp_path / "back.pt"
    assert skeljax.save_pytorch_checkpoint(model, str(out)) == "stgcn_original"  # the model's own format
    loaded = torch.load(out, weights_only=True)
    want = net.state_dict()
    assert list(loaded) == list(want)  # a bare state dict, in the original's order
    for k, v in want.items():
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], v), k
    fresh = orig.OriginalSTGCN("openpose", 400)
    fresh.load_state_dict(loaded, strict=True)
    x = net.example_input(n=2, t=30, seed=4)
    with torch.no_grad():
        np.testing.assert_array_equal(fresh.eval()(x).numpy(), net(x).numpy())


def test_missing_bn_counters_and_ddp_prefix(tmp_path):
    """Files from PyTorch < 0.4.1 have no num_batches_tracked; DataParallel runs prefix 'module.'."""
    net = random_original("ntu-rgb+d", seed=3)
    sd = collections.OrderedDict(
        ("module." + k, v) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")
    )
    torch.save(sd, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    model = skeljax.load_pytorch_checkpoint(str(tmp_path / "old.pt"))
    x = net.example_input(n=2, t=20, seed=1)
    with torch.no_grad():
        want = net(x).numpy()
    assert rel_err(np.asarray(model(to_model_input(x))), want) < 1e-5


def test_unknown_joint_count_without_a_is_a_clear_error(tmp_path):
    sd = {
        "data_bn.weight": np.ones(3 * 20, np.float32),
        "st_gcn_networks.0.gcn.conv.weight": np.ones((192, 3, 1, 1)),
        "fcn.weight": np.ones((5, 256, 1, 1), np.float32),
    }
    with pytest.raises(state_dict.CheckpointMismatchError, match="f.pt.*20 joints|60 data_bn channels"):
        state_dict.model_from_state_dict(sd, "f.pt")


def test_spec_and_config_family():
    spec = stgcn.stgcn_original_spec(400)
    assert spec.family == "stgcn_original" and spec.layout == "openpose" and spec.init == "normal"
    assert stgcn.stgcn_original_spec(60, "nturgb+d").layout == "ntu-rgb+d"
    assert stgcn.ModelSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="origin"):
        stgcn.ModelSpec(10, origin="elsewhere")
    with pytest.raises(ValueError, match="coco"):
        stgcn.stgcn_original_spec(10, "coco")
    c = schema.base_config()
    c.model.family, c.model.layout, c.model.num_classes = "stgcn_original", "openpose", 400
    assert schema.model_spec(c) == spec
    # a freshly built model exports in the original keys and loads back as the same family
    model = stgcn.Recognizer(spec)
    sd = state_dict.model_state_dict(model)
    assert "fcn.weight" in sd and "A" in sd and not any(k.startswith(("backbone.", "cls_head.")) for k in sd)
    again = state_dict.model_from_state_dict(dict(sd))
    assert again.spec.family == "stgcn_original" and again.spec.layout == "openpose"


def test_original_init_and_model_directory(tmp_path):
    """`weights_init` of the original (`processor/recognition.py`): conv and fcn weights N(0, 0.02), zero biases;
    the family survives a skeljax model directory."""
    model = stgcn.Recognizer(stgcn.stgcn_original_spec(400), rngs=__import__("flax").nnx.Rngs(3))
    sd = state_dict.model_state_dict(model)
    convs = np.concatenate([v.ravel() for k, v in sd.items() if k.endswith("conv.weight") or k.endswith(".2.weight")])
    assert abs(convs.std() - 0.02) < 1e-3 and abs(convs.mean()) < 1e-3
    assert abs(sd["fcn.weight"].std() - 0.02) < 2e-3
    assert not any(np.any(v) for k, v in sd.items() if k.endswith("bias"))  # conv, fcn and BN biases
    model_dir.save_model(str(tmp_path / "m"), model)
    loaded = model_dir.load_model(str(tmp_path / "m"))
    assert loaded.spec == model.spec and loaded.spec.family == "stgcn_original"


@pytest.mark.slow
def test_convert_script_both_ways(tmp_path):
    net = random_original("openpose", seed=1)
    src = save(net, tmp_path / "st_gcn.kinetics.pt", zip_format=False)
    run = lambda *a: subprocess.run(
        [sys.executable, "scripts/convert_checkpoint.py", *a],
        cwd=REPO,  # noqa: E731
        capture_output=True,
        text=True,
        check=True,
    )
    assert "stgcn_original" in run(src, str(tmp_path / "model")).stdout
    assert model_dir.load_model(str(tmp_path / "model")).spec.family == "stgcn_original"
    run("--to-pytorch", "--format", "stgcn_original", str(tmp_path / "model"), str(tmp_path / "back.pt"))
    loaded = torch.load(tmp_path / "back.pt", weights_only=True)
    assert list(loaded) == list(net.state_dict())
    for k, v in net.state_dict().items():
        assert torch.equal(loaded[k], v), k
