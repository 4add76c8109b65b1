"""Checks of the PyTorch references against PYSKL and MMAction2: counts, graphs, 0.x <-> PYSKL equivalence, fixtures."""

import collections
import warnings
import zipfile

import numpy as np
import pytest
import torch

from skeljax.testing import torch_reference as R

FAMILY_TOTALS = {  # (family, layout): (parameters incl. 60-class head, state_dict entries, parameter tensors)
    ("stgcnpp", "nturgb+d"): (1_403_144, 692, 434),
    ("stgcnpp", "coco"): (1_393_016, 692, 434),
    ("stgcn", "nturgb+d"): (3_098_832, 181, 102),
    ("stgcn", "coco"): (3_088_704, 181, 102),
}


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread():
    """One intra-op thread: on this shared 2-core machine, 2 contending threads made these tests ~5-10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pyskl_models(single_torch_thread):
    """Library-initialised recognizers (seed=None), built once: construction is the slow part."""
    return {key: R.build_pyskl_recognizer(*key, num_classes=60, seed=None) for key in FAMILY_TOTALS}


def nonzeros(a: torch.Tensor) -> tuple:
    return tuple(int(n) for n in (a != 0).sum(dim=(1, 2)))


# ---------------------------------------------------------------------------------------------------------------
# Keys and parameter counts
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(FAMILY_TOTALS))
def test_pyskl_counts_and_key_prefixes(pyskl_models, key):
    model = pyskl_models[key]
    n_params, n_entries, n_param_tensors = FAMILY_TOTALS[key]
    sd = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == n_params
    assert len(sd) == n_entries
    assert len(list(model.parameters())) == n_param_tensors
    assert all(k.startswith("backbone.") for k in list(sd)[:-2])
    assert list(sd)[-2:] == ["cls_head.fc_cls.weight", "cls_head.fc_cls.bias"]
    assert sd["cls_head.fc_cls.weight"].shape == (60, 256)
    v = R.NUM_JOINTS[key[1]]
    assert list(sd)[:5] == [
        f"backbone.data_bn.{s}" for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    ]
    assert sd["backbone.data_bn.weight"].shape == (3 * v,)
    # pyskl/utils/gcn.py unit_gcn: own tensors first, PA before the A buffer for 'importance'
    first_block = [k for k in sd if k.startswith("backbone.gcn.0.gcn.")][:2]
    expect = (
        ["backbone.gcn.0.gcn.A", "backbone.gcn.0.gcn.bn.weight"]
        if key[0] == "stgcnpp"
        else ["backbone.gcn.0.gcn.PA", "backbone.gcn.0.gcn.A"]
    )
    assert first_block == expect
    assert all(sd[f"backbone.gcn.{i}.gcn.A"].shape == (3, v, v) for i in range(10))


def test_stgcnpp_key_shapes_as_released(pyskl_models):
    sd = pyskl_models[("stgcnpp", "nturgb+d")].state_dict()
    shapes = {
        "backbone.gcn.0.gcn.conv.weight": (192, 3, 1, 1),
        "backbone.gcn.0.gcn.down.0.weight": (64, 3, 1, 1),
        "backbone.gcn.0.tcn.branches.0.3.conv.weight": (14, 14, 3, 1),
        "backbone.gcn.0.tcn.branches.5.weight": (10, 64, 1, 1),
        "backbone.gcn.4.gcn.conv.weight": (384, 64, 1, 1),
        "backbone.gcn.4.residual.conv.weight": (128, 64, 1, 1),
        "backbone.gcn.4.tcn.branches.0.0.weight": (23, 128, 1, 1),
        "backbone.gcn.7.gcn.conv.weight": (768, 128, 1, 1),
        "backbone.gcn.7.tcn.branches.0.0.weight": (46, 256, 1, 1),
        "backbone.gcn.7.tcn.branches.3.3.conv.weight": (42, 42, 3, 1),
        "backbone.gcn.9.tcn.transform.2.weight": (256, 256, 1, 1),
    }
    for k, s in shapes.items():
        assert tuple(sd[k].shape) == s, k
    down = sorted({int(k.split(".")[2]) for k in sd if ".gcn.down." in k})
    residual = sorted({int(k.split(".")[2]) for k in sd if ".residual." in k})
    assert down == [0, 4, 7] and residual == [4, 7]
    assert isinstance(pyskl_models[("stgcnpp", "nturgb+d")].backbone.gcn[3].gcn.A, torch.nn.Parameter)
    assert not isinstance(pyskl_models[("stgcn", "nturgb+d")].backbone.gcn[3].gcn.A, torch.nn.Parameter)


def test_mmaction1x_head_naming(pyskl_models):
    sd = pyskl_models[("stgcn", "coco")].state_dict()
    renamed = R.to_mmaction1x_keys(sd)
    assert list(renamed)[-2:] == ["cls_head.fc.weight", "cls_head.fc.bias"]
    assert list(renamed)[:-2] == list(sd)[:-2]
    model_1x = R.build_pyskl_recognizer("stgcn", "coco", 60, seed=None, mmaction1x_keys=True)
    assert list(model_1x.state_dict()) == list(renamed)
    model_1x.load_state_dict(renamed)
    x = R.make_inputs("coco", 2, 21, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(model_1x(x), pyskl_models[("stgcn", "coco")](x), rtol=0, atol=0)


def expected_0x_keys(
    num_blocks_io=(
        (3, 64),
        (64, 64),
        (64, 64),
        (64, 64),
        (64, 128),
        (128, 128),
        (128, 128),
        (128, 256),
        (256, 256),
        (256, 256),
    ),
) -> list:
    """The key list of the released 0.x checkpoints (stgcn_80e_ntu60_xsub_keypoint), written out."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["backbone.A"] + [f"backbone.data_bn.{s}" for s in bn]
    for i, _ in enumerate(num_blocks_io):
        p = f"backbone.st_gcn_networks.{i}."
        keys += [p + "gcn.conv.weight", p + "gcn.conv.bias"] + [p + "tcn.0." + s for s in bn]
        keys += [p + "tcn.2.weight", p + "tcn.2.bias"] + [p + "tcn.3." + s for s in bn]
        if i in (4, 7):
            keys += [p + "residual.0.weight", p + "residual.0.bias"] + [p + "residual.1." + s for s in bn]
    keys += [f"backbone.edge_importance.{i}" for i in range(10)] + ["cls_head.fc.weight", "cls_head.fc.bias"]
    return keys


@pytest.mark.parametrize("layout, n_params", [("coco", 3_088_704), ("ntu-rgb+d", 3_098_832)])
def test_mmaction0x_keys_order_and_counts(layout, n_params):
    model = R.MMAction0xSTGCN(layout, 60)
    sd = model.state_dict()
    assert list(sd) == expected_0x_keys()
    assert len(sd) == 172 and len(list(model.parameters())) == 102
    assert sum(p.numel() for p in model.parameters()) == n_params
    v = R.NUM_JOINTS[layout]
    assert sd["backbone.A"].shape == (3, v, v) and sd["backbone.data_bn.weight"].shape == (3 * v,)
    assert sd["backbone.st_gcn_networks.4.tcn.2.weight"].shape == (128, 128, 9, 1)
    assert sd["backbone.st_gcn_networks.7.residual.0.weight"].shape == (256, 128, 1, 1)
    assert sd["cls_head.fc.weight"].shape == (60, 256, 1, 1)
    assert not model.training


def test_bad_names_raise():
    with pytest.raises(ValueError, match="nturgb"):
        R.build_pyskl_recognizer("stgcn", "ntu-rgb+d")
    with pytest.raises(ValueError, match="family"):
        R.build_pyskl_recognizer("aagcn", "coco")
    with pytest.raises(ValueError, match="0.x layout"):
        R.MMAction0xSTGCN("nturgb+d")
    with pytest.raises(ValueError, match="layout"):
        R.make_inputs("openpose", 2, 10)


# ---------------------------------------------------------------------------------------------------------------
# Graphs
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, counts",
    [
        (("stgcnpp", "nturgb+d"), (25, 24, 24)),
        (("stgcnpp", "coco"), (17, 16, 16)),
        (("stgcn", "nturgb+d"), (25, 40, 8)),
        (("stgcn", "coco"), (17, 22, 10)),
    ],
)
def test_pyskl_graph_nonzeros(pyskl_models, key, counts):
    a = pyskl_models[key].backbone.gcn[0].gcn.A.detach()
    v = R.NUM_JOINTS[key[1]]
    assert a.shape == (3, v, v) and a.dtype == torch.float32
    assert nonzeros(a) == counts
    for block in pyskl_models[key].backbone.gcn:  # every block starts from the same graph (A.clone())
        torch.testing.assert_close(block.gcn.A.detach(), a, rtol=0, atol=0)


def test_pyskl_graph_values(pyskl_models):
    spatial = pyskl_models[("stgcnpp", "nturgb+d")].backbone.gcn[0].gcn.A.detach()
    torch.testing.assert_close(spatial[0], torch.eye(25), rtol=0, atol=0)
    assert set(spatial[2][spatial[2] != 0].tolist()) == {0.25, 0.5, 1.0}
    assert set(spatial[1][spatial[1] != 0].tolist()) == {1.0}
    st = pyskl_models[("stgcn", "nturgb+d")].backbone.gcn[0].gcn.A.detach()
    further = {(int(v), int(w)) for v, w in torch.nonzero(st[2])}
    assert further == {(1, 0), (2, 3), (4, 5), (8, 9), (20, 1), (20, 2), (20, 4), (20, 8)}
    values = set(np.unique(st.numpy()).tolist())
    assert values == set(np.float32([0.0, 0.2, 0.25, 1 / 3, 0.5]).tolist())


@pytest.mark.parametrize("layout, counts", [("ntu-rgb+d", (25, 40, 8)), ("coco", (17, 34, 4))])
def test_mmaction0x_graph(layout, counts):
    a64 = R.mmaction0x_graph(layout)
    assert a64.dtype == np.float64
    a = R.MMAction0xSTGCN(layout).backbone.A
    assert a.dtype == torch.float32 and nonzeros(a) == counts
    np.testing.assert_array_equal(a.numpy(), a64.astype(np.float32))
    # column normalisation over the whole 1-hop neighbourhood: every column sums to 1 over the subsets
    np.testing.assert_allclose(a64.sum(axis=(0, 1)), np.ones(a64.shape[1]), rtol=0, atol=1e-15)


def test_mmaction0x_graph_hand_values():
    a = R.mmaction0x_graph("coco")
    # nose (0) touches both eyes -> 3 entries in its column, 1/3 each; left eye (1) touches 0, 2, 3 -> 1/4
    assert a[0, 0, 0] == pytest.approx(1 / 3) and a[0, 1, 1] == pytest.approx(1 / 4)
    further = {(int(v), int(w)) for v, w in np.argwhere(a[2])}
    # hop(j, c) < hop(i, c): nose -> eyes (0 < 1) and eyes -> ears (1 < inf)
    assert further == {(0, 1), (0, 2), (1, 3), (2, 4)}
    ntu = R.mmaction0x_graph("ntu-rgb+d")
    # 0.x hand chain tip(21) - thumb(22) - hand(7): thumb has neighbours 21 and 7 -> 1/3
    assert ntu[1, 21, 22] == pytest.approx(1 / 3) and ntu[1, 7, 22] == pytest.approx(1 / 3)


@pytest.mark.parametrize("layout", ["ntu-rgb+d", "coco"])
def test_mmaction0x_graph_equals_library_stgcn_spatial_on_same_edges(layout):
    """0.x 'spatial' (mmaction/models/skeleton_gcn/utils/graph.py) equals PYSKL's 'stgcn_spatial' on the same edges."""
    R.mmaction_stgcn_class()  # installs the import stubs
    from mmaction.models.utils import Graph

    v, center, edges = R.mmaction0x_edges(layout)
    lib = Graph(layout={"num_node": v, "inward": edges, "center": center}, mode="stgcn_spatial").A
    np.testing.assert_array_equal(R.mmaction0x_graph(layout), lib)
    own_layout = {"ntu-rgb+d": "nturgb+d", "coco": "coco"}[layout]
    assert not np.array_equal(Graph(layout=own_layout, mode="stgcn_spatial").A, lib)  # the edge sets differ


# ---------------------------------------------------------------------------------------------------------------
# Forward semantics
# ---------------------------------------------------------------------------------------------------------------


def test_pyskl_head_pools_persons_without_mask():
    model = R.build_pyskl_recognizer("stgcn", "coco", 7, seed=3)
    x = R.make_inputs("coco", 2, 37, seed=1)
    assert (x[1, 1] == 0).all() and (x[0, 1] != 0).any()
    with torch.no_grad():
        feats = model.backbone(x)
        logits = model(x)
    assert feats.shape == (2, 2, 256, 10, 17)  # T' = ceil(ceil(37 / 2) / 2)
    fc = model.cls_head.fc_cls
    manual = feats.double().mean(dim=(3, 4)).mean(dim=1) @ fc.weight.double().T + fc.bias.double()
    torch.testing.assert_close(logits.double(), manual, rtol=1e-5, atol=1e-6)
    person0_only = feats[:, 0].double().mean(dim=(2, 3)) @ fc.weight.double().T + fc.bias.double()
    assert (logits.double() - person0_only).abs().max() > 1e-2  # the zero person still counts
    clips = torch.stack([x, R.make_inputs("coco", 2, 37, seed=2)], dim=1)
    with torch.no_grad():
        probs = model.forward_test(clips)
        expect = (model(clips[:, 0]).softmax(-1) + model(clips[:, 1]).softmax(-1)) / 2
    torch.testing.assert_close(probs, expect, rtol=1e-6, atol=1e-7)


def test_mmaction0x_head_and_input_layout():
    model = R.randomize_(R.MMAction0xSTGCN("coco", 5), seed=2)
    x = R.to_nctvm(R.make_inputs("coco", 2, 37, seed=1))
    assert x.shape == (2, 3, 37, 17, 2)
    with torch.no_grad():
        feats = model.backbone(x)
        logits = model(x)
    assert feats.shape == (4, 256, 10, 17)
    w = model.cls_head.fc.weight.double()[:, :, 0, 0]
    manual = feats.double().mean(dim=(2, 3)).view(2, 2, 256).mean(dim=1) @ w.T + model.cls_head.fc.bias.double()
    torch.testing.assert_close(logits.double(), manual, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="N, C, T, V, M"):
        model(R.make_inputs("coco", 2, 37))


@pytest.mark.parametrize(
    "layout0x, layout, dtype, t, rtol",
    [
        ("coco", "coco", torch.float32, 37, 1e-5),
        ("ntu-rgb+d", "nturgb+d", torch.float32, 37, 1e-5),
        ("coco", "coco", torch.float64, 13, 1e-12),
    ],
)
def test_mmaction0x_equals_pyskl_stgcn_after_key_map(layout0x, layout, dtype, t, rtol):
    """The 0.x model is PYSKL's ST-GCN with renamed keys and the 0.x graph copied into every block."""
    m0 = R.randomize_(R.MMAction0xSTGCN(layout0x, 60), seed=11).to(dtype)
    mapped = R.mmaction0x_to_pyskl_stgcn(m0.state_dict())
    mp = R.build_pyskl_recognizer("stgcn", layout, 60, seed=None).to(dtype)
    assert len(mapped) == 181 and set(mapped) == set(mp.state_dict())
    own_graph = {k: v.clone() for k, v in mp.state_dict().items()}  # load_state_dict copies in place
    mp.load_state_dict(mapped, strict=True)
    x = R.make_inputs(layout, 2, t, seed=5).to(dtype)
    with torch.no_grad():
        y0 = m0(R.to_nctvm(x))
        yp = mp(x)
    assert y0.dtype == dtype and y0.abs().max() > 0.5
    rel = float((y0 - yp).abs().max() / y0.abs().max())
    assert rel <= rtol, rel
    # negative control: PYSKL's own graph (different edges) must change the logits
    mapped_own = collections.OrderedDict((k, own_graph[k] if k.endswith("gcn.A") else v) for k, v in mapped.items())
    mp.load_state_dict(mapped_own, strict=True)
    with torch.no_grad():
        assert float((mp(x) - y0).abs().max() / y0.abs().max()) > 1e-3


# ---------------------------------------------------------------------------------------------------------------
# randomize_ and make_inputs
# ---------------------------------------------------------------------------------------------------------------


def test_randomize_deterministic_complete_and_conditioned():
    a = R.build_pyskl_recognizer("stgcnpp", "coco", 60, seed=7)
    b = R.build_pyskl_recognizer("stgcnpp", "coco", 60, seed=None)
    fresh = {k: v.clone() for k, v in b.state_dict().items()}
    sb = {k: v.clone() for k, v in R.randomize_(b, seed=7).state_dict().items()}
    sc = R.randomize_(b, seed=8).state_dict()
    sa = a.state_dict()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)
        assert not torch.equal(sa[k], sc[k]), k
        assert not torch.equal(sa[k], fresh[k]), k  # every entry changed, including the learned A
        if k.endswith("running_var"):
            assert sa[k].min() >= 0.5 and sa[k].max() <= 1.5
        if k.endswith("num_batches_tracked"):
            assert sa[k].dtype == torch.int64 and sa[k].shape == () and sa[k] > 0
    rms = []
    hooks = [
        blk.register_forward_hook(lambda m, i, o: rms.append(float(o.pow(2).mean().sqrt()))) for blk in a.backbone.gcn
    ]
    with torch.no_grad():
        logits = a(R.make_inputs("coco", 2, 37, seed=1))
    for h in hooks:
        h.remove()
    assert len(rms) == 10 and all(0.2 < r < 10 for r in rms), rms
    assert 0.3 < float(logits.std()) < 5


def test_randomize_zeroth_order_details():
    m = R.randomize_(R.MMAction0xSTGCN("coco"), seed=1)
    torch.testing.assert_close(m.backbone.A, torch.tensor(R.mmaction0x_graph("coco"), dtype=torch.float32))
    imp = torch.stack(list(m.backbone.edge_importance))
    assert imp.min() >= 0.5 and imp.max() <= 1.5 and imp.std() > 0.2
    state = torch.get_rng_state()
    R.build_pyskl_recognizer("stgcn", "coco", seed=3)
    assert torch.equal(state, torch.get_rng_state())  # builders leave the global RNG alone


def test_make_inputs():
    x = R.make_inputs("nturgb+d", n=3, t=37, m=2, seed=9)
    assert x.shape == (3, 2, 37, 25, 3) and x.dtype == torch.float32
    assert (x[1, 1] == 0).all() and (x[0, 1] != 0).all() and (x[2, 1] != 0).all() and (x[:, 0] != 0).all()
    assert torch.equal(x, R.make_inputs("nturgb+d", n=3, t=37, m=2, seed=9))
    assert not torch.equal(x, R.make_inputs("nturgb+d", n=3, t=37, m=2, seed=10))
    assert R.make_inputs("coco", 1, 5, m=1).shape == (1, 1, 5, 17, 3)
    assert torch.equal(R.to_nctvm(x)[:, :, 4, 7, 1], x[:, 1, 4, 7, :])


# ---------------------------------------------------------------------------------------------------------------
# Released-format checkpoints
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model():
    return R.randomize_(R.MMAction0xSTGCN("coco", 5), seed=4)


@pytest.mark.parametrize(
    "style, top",
    [("pyskl", ["meta", "state_dict", "optimizer"]), ("mmaction0x", ["meta", "state_dict"]), ("bare", None)],
)
@pytest.mark.parametrize("numpy1_style", [False, True])
def test_checkpoint_styles_round_trip(tmp_path, small_model, style, top, numpy1_style):
    path = R.save_released_checkpoint(small_model, tmp_path / f"{style}.pth", style=style, numpy1_style=numpy1_style)
    assert zipfile.is_zipfile(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2 warns once when `numpy.core` is imported
        ck = torch.load(path, map_location="cpu", weights_only=False)
    sd = ck if style == "bare" else ck["state_dict"]
    if top is None:
        assert isinstance(ck, collections.OrderedDict) and list(ck) == list(small_model.state_dict())
    else:
        assert list(ck) == top
        meta = ck["meta"]
        best = meta["hook_msgs"]["best_score"]
        assert type(best) is np.float64 and best == np.float64(0.8930)
        assert ("pyskl_version" in meta) == (style == "pyskl") and ("mmaction_version" in meta) == (style != "pyskl")
        assert {"mmcv_version", "time", "epoch", "iter", "config", "seed", "env_info"} <= set(meta)
    assert isinstance(sd, collections.OrderedDict)
    for k, v in small_model.state_dict().items():
        assert torch.equal(sd[k], v), k
    if style == "pyskl":
        opt = ck["optimizer"]
        assert len(opt["state"]) == 102 and opt["param_groups"][0]["nesterov"] is True
        params = list(small_model.parameters())  # SGD indexes parameters in module order: data_bn.weight first
        assert [s["momentum_buffer"].shape for s in opt["state"].values()] == [p.shape for p in params]
    names = R.pickle_globals(path)
    numpy_names = {n for n in names if n.startswith("numpy")}
    if style == "bare":
        assert numpy_names == set()
    elif numpy1_style:
        assert numpy_names == {"numpy.core.multiarray scalar", "numpy dtype"}
    else:
        assert numpy_names == {"numpy._core.multiarray scalar", "numpy dtype"}


def test_numpy1_checkpoint_needs_old_name_allow_listed(tmp_path):
    """The trap the loader must handle: weights_only needs the numpy 1.x *name* of `scalar` allow-listed."""
    path = R.save_released_checkpoint({"w": torch.ones(3)}, tmp_path / "old.pth", style="mmaction0x", numpy1_style=True)
    scalar = np._core.multiarray.scalar
    dtypes = [np.dtype, type(np.dtype(np.float64))]
    with (
        pytest.raises(Exception, match="Weights only load failed"),
        torch.serialization.safe_globals([scalar, *dtypes]),
    ):
        torch.load(path, weights_only=True)
    with torch.serialization.safe_globals([(scalar, "numpy.core.multiarray.scalar")] + dtypes):
        ck = torch.load(path, weights_only=True)
    assert ck["meta"]["hook_msgs"]["best_score"] == np.float64(0.893)


def test_legacy_format_and_bad_style(tmp_path, small_model):
    path = R.save_released_checkpoint(
        small_model, tmp_path / "legacy.pth", style="mmaction0x", numpy1_style=True, zip_format=False
    )
    assert not zipfile.is_zipfile(path)
    assert "numpy.core.multiarray scalar" in R.pickle_globals(path)
    ck = torch.load(path, weights_only=False)
    assert torch.equal(ck["state_dict"]["cls_head.fc.weight"], small_model.cls_head.fc.weight.detach())
    with pytest.raises(ValueError, match="style"):
        R.save_released_checkpoint(small_model, tmp_path / "x.pth", style="mmcv")
