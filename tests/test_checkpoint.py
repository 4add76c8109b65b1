"""skeljax model directories: exact round trip, atomic writes, clear errors."""

import json
import os

import jax
import numpy as np
import pytest

from skeljax.models import model_dir
from skeljax.models.stgcn import Recognizer, stgcn_pyskl_spec


@pytest.fixture(scope="module")
def model():
    m = Recognizer(stgcn_pyskl_spec(7, "coco", tcn_dropout=0.5))
    # Non-default BN statistics and importance weights so that a restore that silently skips them would show.
    for _, var in nnx_flat(m):
        if var.value.dtype == np.float32:
            var.set_value(var.value + 0.01 * jax.random.normal(jax.random.key(1), var.value.shape))
    m.eval()
    return m


def nnx_flat(m):
    from flax import nnx

    return nnx.to_flat_state(nnx.state(m, model_dir.MODEL_STATE))


def test_round_trip_is_exact(tmp_path, model):
    model_dir.save_model(str(tmp_path / "m"), model, extra={"feat": "b"})
    assert sorted(os.listdir(tmp_path / "m")) == ["model_spec.json", "state"]
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
    loaded = model_dir.load_model(str(tmp_path / "m"))
    a, b = dict(nnx_flat(model)), dict(nnx_flat(loaded))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k].value), np.asarray(b[k].value))
    x = np.random.default_rng(0).normal(size=(2, 2, 15, 17, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(loaded(x)))
    spec, meta = model_dir.read_spec(str(tmp_path / "m"))
    assert spec == model.spec and meta["feat"] == "b"
    # Dropout needs concrete RNG state after a load (it is not part of the checkpoint): train mode runs.
    loaded.train()
    assert np.isfinite(np.asarray(loaded(x))).all()


def test_refuses_overwrite_and_reports_bad_dirs(tmp_path, model):
    d = str(tmp_path / "m")
    model_dir.save_model(d, model)
    with pytest.raises(FileExistsError, match="already exists"):
        model_dir.save_model(d, model)
    with pytest.raises(model_dir.SkeljaxCheckpointError, match="no such"):
        model_dir.load_model(str(tmp_path / "nope"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(model_dir.SkeljaxCheckpointError, match="not a skeljax model directory"):
        model_dir.load_model(str(tmp_path / "empty"))
    with open(tmp_path / "empty" / "model_spec.json", "w") as f:
        json.dump({"spec": {"num_classes": 3, "bogus": 1}}, f)
    with pytest.raises(model_dir.SkeljaxCheckpointError, match="malformed model spec"):
        model_dir.load_model(str(tmp_path / "empty"))
    with open(tmp_path / "empty" / "model_spec.json", "w") as f:
        json.dump({"spec": model.spec.to_json()}, f)
    with pytest.raises(model_dir.SkeljaxCheckpointError, match="incomplete checkpoint"):
        model_dir.load_model(str(tmp_path / "empty"))


def test_state_of_another_model_is_refused(tmp_path, model):
    model_dir.save_model(str(tmp_path / "m"), model)
    other = Recognizer(stgcn_pyskl_spec(9, "coco"))
    with pytest.raises(model_dir.SkeljaxCheckpointError, match="does not match"):
        model_dir.restore_into(other, str(tmp_path / "m" / "state"))


def test_relative_paths_and_export_order_after_reload(tmp_path, monkeypatch):
    from skeljax.models import state_dict
    from skeljax.testing import torch_reference as ref

    tmodel = ref.build_pyskl_recognizer("stgcnpp", "coco", num_classes=5, seed=None)
    model = state_dict.model_from_state_dict({k: v.numpy() for k, v in tmodel.state_dict().items()})
    monkeypatch.chdir(tmp_path)
    model_dir.save_model("runs/m", model)  # relative paths, as users type them
    loaded = model_dir.load_model("runs/m")
    # Loading goes through NNX split/merge, which re-sorts attributes: the export must still follow PyTorch's order.
    assert list(state_dict.model_state_dict(loaded)) == list(tmodel.state_dict())


LEGACY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "legacy_model_dirs")


@pytest.mark.parametrize("family", ["stgcnpp", "stgcn"])
def test_directories_with_positional_state_paths_still_load(family):
    """Written by skeljax before its submodules were named (state paths = PYSKL keys): same logits today."""
    from skeljax.models import state_dict

    old_paths = set(_saved_names(os.path.join(LEGACY, family, "state")))
    assert "backbone.gcn.0.gcn.A" in old_paths and "cls_head.fc_cls.weight" in old_paths  # really the old layout
    model = model_dir.load_model(os.path.join(LEGACY, family))
    new_paths = {".".join(map(str, p)) for p, _ in nnx_flat(model)}
    assert not new_paths & (old_paths - {p for p in old_paths if p.startswith("backbone.data_bn.")})
    assert {state_dict.pyskl_key(p) for p in new_paths} == old_paths
    expected = np.load(os.path.join(LEGACY, "expected.npz"))
    np.testing.assert_allclose(np.asarray(model(expected["x"])), expected[family], rtol=1e-5, atol=1e-6)


def test_legacy_renames_keep_prefixes_and_leave_new_names():
    wanted = [
        "params/backbone/blocks/3/temporal/dilated/2/conv/weight/value",
        "params/head/fc/bias",
        "opt_state/0/trace/backbone/blocks/0/spatial/residual/bn/weight/value",
        "step",
        "params/backbone/data_bn/bias/value",
    ]
    saved = [
        "params/backbone/gcn/3/tcn/branches/2/3/conv/weight/value",
        "params/cls_head/fc_cls/bias",
        "opt_state/0/trace/backbone/gcn/0/gcn/down/1/weight/value",
        "step",
        "params/backbone/data_bn/bias/value",
    ]
    assert model_dir.legacy_renames(saved, wanted, sep="/") == dict(zip(saved[:3], wanted[:3]))
    assert model_dir.legacy_renames(wanted, wanted, sep="/") == {}


def _saved_names(state_dir):
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as ckptr:
        meta = ckptr.metadata(state_dir)
    tree = getattr(getattr(meta, "item_metadata", meta), "tree", meta)
    return [".".join(str(getattr(k, "key", k)) for k in p) for p, _ in jax.tree_util.tree_leaves_with_path(tree)]


def test_training_checkpoint_with_positional_state_paths_restores(tmp_path):
    """The trainer's checkpoints of earlier versions (model paths = PYSKL keys) resume into today's state."""
    import jax.numpy as jnp
    from flax import nnx

    from skeljax.models import state_dict
    from skeljax.models.stgcn import stgcnpp_spec
    from skeljax.train.checkpoints import RunCheckpoints, flatten

    model = Recognizer(stgcnpp_spec(5, "coco", base_channels=12, num_stages=3, inflate_stages=(3,), down_stages=(3,)))
    _, params, stats, _ = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    template = {"params": params, "batch_stats": stats, "step": jnp.zeros((), jnp.int32)}
    rng = np.random.default_rng(0)
    values = {k: rng.normal(size=np.shape(v)).astype(v.dtype) for k, v in flatten(template).items()}

    def old_name(name):  # 'params/backbone/blocks/0/spatial/A/value' -> 'params/backbone/gcn/0/gcn/A/value'
        head, _, rest = name.partition("/")
        if rest == "":
            return name
        *model_path, suffix = rest.split("/")
        return "/".join([head, *state_dict.pyskl_key(".".join(model_path)).split("."), suffix])

    legacy = {old_name(k): v for k, v in values.items()}
    assert "params/backbone/gcn/1/tcn/branches/0/3/conv/weight/value" in legacy
    ckpts = RunCheckpoints(str(tmp_path / "ckpts"))
    ckpts.save(7, legacy, {"epoch": 1}, {"best": 0.5})
    state, data, meta = RunCheckpoints(str(tmp_path / "ckpts")).restore(7, template)
    for k, v in flatten(state).items():
        np.testing.assert_array_equal(np.asarray(v), values[k], err_msg=k)
    assert data == {"epoch": 1} and meta == {"best": 0.5}
