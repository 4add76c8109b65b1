"""Model structure against the reference checkpoints: parameter counts, state_dict key sets and shapes, BN semantics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from skeljax.models import layers, state_dict
from skeljax.models.stgcn import Recognizer, count_params, mmaction0x_spec, stgcn_pyskl_spec, stgcnpp_spec


@pytest.mark.parametrize(
    "spec, params, entries",
    [
        (stgcnpp_spec(60), 1_403_144, 692),
        (stgcnpp_spec(60, "coco"), 1_393_016, 692),
        (stgcnpp_spec(120), 1_418_564, 692),
        (stgcn_pyskl_spec(60), 3_098_832, 181),
        (stgcn_pyskl_spec(60, "coco"), 3_088_704, 181),
    ],
)
def test_counts_pyskl(spec, params, entries):
    model = Recognizer(spec)
    assert count_params(model) == params
    assert len(state_dict.model_state_dict(model)) == entries


@pytest.mark.parametrize("layout, params", [("coco", 3_088_704), ("ntu-rgb+d", 3_098_832)])
def test_counts_mmaction0x(layout, params):
    model = Recognizer(mmaction0x_spec(60, layout))
    assert count_params(model) == params
    sd = state_dict.model_state_dict(model)
    assert len(sd) == 172
    keys = list(sd)
    assert keys[0] == "backbone.A" and keys[1].startswith("backbone.data_bn.")
    assert keys[-12:-2] == [f"backbone.edge_importance.{i}" for i in range(10)]
    assert keys[-2:] == ["cls_head.fc.weight", "cls_head.fc.bias"]
    assert sd["cls_head.fc.weight"].shape == (60, 256, 1, 1)
    assert sd["backbone.st_gcn_networks.4.residual.0.weight"].shape == (128, 64, 1, 1)
    assert sd["backbone.st_gcn_networks.0.tcn.2.weight"].shape == (64, 64, 9, 1)
    assert "backbone.st_gcn_networks.3.residual.0.weight" not in sd


def test_stgcnpp_key_shapes_as_released():
    sd = state_dict.model_state_dict(Recognizer(stgcnpp_spec(60)))
    expect = {
        "backbone.data_bn.weight": (75,),
        "backbone.gcn.0.gcn.A": (3, 25, 25),
        "backbone.gcn.0.gcn.conv.weight": (192, 3, 1, 1),
        "backbone.gcn.0.gcn.down.0.weight": (64, 3, 1, 1),
        "backbone.gcn.0.tcn.branches.0.3.conv.weight": (14, 14, 3, 1),
        "backbone.gcn.0.tcn.branches.5.weight": (10, 64, 1, 1),
        "backbone.gcn.4.gcn.conv.weight": (384, 64, 1, 1),
        "backbone.gcn.4.residual.conv.weight": (128, 64, 1, 1),
        "backbone.gcn.4.tcn.branches.0.0.weight": (23, 128, 1, 1),
        "backbone.gcn.7.gcn.conv.weight": (768, 128, 1, 1),
        "backbone.gcn.7.tcn.branches.0.0.weight": (46, 256, 1, 1),
        "backbone.gcn.7.tcn.branches.2.3.conv.weight": (42, 42, 3, 1),
        "backbone.gcn.9.tcn.transform.2.weight": (256, 256, 1, 1),
        "cls_head.fc_cls.weight": (60, 256),
    }
    for k, shape in expect.items():
        assert sd[k].shape == shape, k
    assert sd["backbone.gcn.0.gcn.bn.num_batches_tracked"].dtype == np.int64
    assert sd["backbone.gcn.0.gcn.bn.num_batches_tracked"].shape == ()
    down = {k.split(".")[2] for k in sd if ".gcn.down." in k}
    res = {k.split(".")[2] for k in sd if ".residual." in k}
    assert down == {"0", "4", "7"} and res == {"4", "7"}
    # Keys emitted in PyTorch's order inside unit_gcn: A, then bn, conv, down.
    block0 = [k for k in sd if k.startswith("backbone.gcn.0.gcn.")]
    assert block0[0] == "backbone.gcn.0.gcn.A" and block0[1] == "backbone.gcn.0.gcn.bn.weight"


def test_stgcn_importance_keys():
    model = Recognizer(stgcn_pyskl_spec(60))
    sd = state_dict.model_state_dict(model)
    assert list(sd)[2:4] == ["backbone.data_bn.running_mean", "backbone.data_bn.running_var"]
    block = [k for k in sd if k.startswith("backbone.gcn.1.gcn.")]
    assert block[:2] == ["backbone.gcn.1.gcn.PA", "backbone.gcn.1.gcn.A"]
    # The graph is a buffer for importance models: not a trainable parameter.
    params = nnx.to_flat_state(nnx.state(model, nnx.Param))
    assert not any(path[-1] == "A" for path, _ in params)
    assert sum(1 for path, _ in params if path[-1] == "edge_importance") == 10  # PYSKL's PA


@pytest.mark.parametrize("t", [37, 100])
def test_output_shapes_and_temporal_length(t):
    model = Recognizer(stgcnpp_spec(10))
    model.eval()
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 2, t, 25, 3)), jnp.float32)
    feats = model.backbone(x)  # internal layout (V, N*M, T', C)
    t2 = (t - 1) // 2 + 1
    assert feats.shape == (25, 2 * 2, (t2 - 1) // 2 + 1, 256)
    assert model(x).shape == (2, 10)


def test_batchnorm_groups_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 5, 3, 4)).astype(np.float32) * 3 + 1
    bn = layers.BatchNorm(4, group_size=4)
    y = np.asarray(bn(jnp.asarray(x)))
    ref, means, vars_ = [], [], []
    for g in (x[:4], x[4:]):
        m = g.mean(axis=(0, 1, 2))
        v = g.var(axis=(0, 1, 2))
        ref.append((g - m) / np.sqrt(v + 1e-5))
        means.append(m)
        vars_.append(v * g[..., 0].size / (g[..., 0].size - 1))  # PyTorch: unbiased running variance
    np.testing.assert_allclose(y, np.concatenate(ref), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean[...], 0.1 * np.mean(means, 0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var[...], 0.9 + 0.1 * np.mean(vars_, 0), rtol=1e-5)
    assert int(bn.num_batches_tracked[...]) == 1


def test_batchnorm_matches_torch_training_step():
    import torch  # a test dependency (setup.cfg [test]); a missing torch must fail, not skip

    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 7, 5, 3)).astype(np.float32)
    bn = layers.BatchNorm(3)
    y = np.asarray(bn(jnp.asarray(x)))
    tbn = torch.nn.BatchNorm2d(3)
    ty = tbn(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
    np.testing.assert_allclose(y, ty, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.running_var[...], tbn.running_var.numpy(), rtol=1e-6)
    np.testing.assert_allclose(bn.running_mean[...], tbn.running_mean.numpy(), rtol=1e-6, atol=1e-7)


def test_bad_input_rank():
    model = Recognizer(stgcn_pyskl_spec(5, "coco"))
    with pytest.raises(ValueError, match=r"\(N, M, T, V, C\)"):
        model(jnp.zeros((2, 50, 17, 3)))


def test_models_jit():
    model = Recognizer(stgcnpp_spec(4, "coco"))
    model.eval()
    graphdef, state = nnx.split(model)

    @jax.jit
    def fwd(state, x):
        return nnx.merge(graphdef, state)(x)

    x = jnp.ones((1, 2, 9, 17, 3))
    np.testing.assert_allclose(fwd(state, x), model(x), rtol=1e-5, atol=1e-6)
