"""skeljax.export: StableHLO (jax.export, symbolic batch) and ONNX (jax2onnx + ONNX Runtime) match the model."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from skeljax import export as E
from skeljax.models.model_dir import save_model
from skeljax.models.stgcn import Recognizer, stgcnpp_spec
from skeljax.testing import torch_reference as tr

SMALL = {"base_channels": 8, "num_stages": 4, "inflate_stages": (3,), "down_stages": (3,)}
FRAMES = 24


def trained_looking(model: Recognizer, seed: int = 0) -> Recognizer:
    """Non-trivial BN running statistics and a sharpened head: eval-mode BN and real logits are exercised."""
    rng = np.random.RandomState(seed)

    def draw(path, v):
        name = jax.tree_util.keystr(path)
        if "running_var" in name:
            return rng.uniform(0.5, 1.5, v.shape).astype(v.dtype)
        if "running_mean" in name:
            return rng.normal(0.0, 0.1, v.shape).astype(v.dtype)
        return v

    nnx.update(model, jax.tree_util.tree_map_with_path(draw, nnx.state(model, nnx.BatchStat)))
    model.head.fc.weight[...] = model.head.fc.weight[...] * 50.0
    model.eval()
    return model


def inputs(model, batch: int) -> np.ndarray:
    return (
        np.random.RandomState(100 + batch).standard_normal((batch,) + E.input_shape(model, FRAMES)).astype(np.float32)
    )


@pytest.fixture(scope="module")
def model():
    return trained_looking(Recognizer(stgcnpp_spec(60, **SMALL), rngs=nnx.Rngs(0)))


@pytest.fixture(scope="module")
def reference(model):
    """Logits of the model itself (eval mode) for batch sizes 1 and 3."""
    fwd = nnx.jit(lambda m, x: m(x))
    return {b: np.asarray(fwd(model, inputs(model, b))) for b in (1, 3)}


def test_stablehlo_symbolic_batch_roundtrip(model, reference, tmp_path):
    path = tmp_path / "model.bin"
    E.export_stablehlo(model, path, frames=FRAMES)
    loaded = E.load_stablehlo(path)
    assert loaded.platforms == ("cpu", "cuda")
    (aval,) = loaded.in_avals
    assert str(aval.shape[0]) == "N" and aval.shape[1:] == (2, FRAMES, 25, 3)
    for b, want in reference.items():
        got = np.asarray(loaded.call(inputs(model, b)))
        assert got.shape == (b, 60)
        assert E.max_relative_error(got, want) <= 1e-4
    assert np.abs(reference[3]).max() > 1.0  # logits of a real scale, not ~0


def test_stablehlo_with_features(model, tmp_path):
    exp = E.export_stablehlo(model, None, frames=FRAMES, platforms=("cpu",), with_features=True)
    x = inputs(model, 2)
    logits, feats = exp.call(x)
    want_logits, want_feats = nnx.jit(lambda m, x: m(x, return_features=True))(model, x)
    np.testing.assert_allclose(np.asarray(feats), np.asarray(want_feats), rtol=1e-4, atol=1e-6)
    assert E.max_relative_error(np.asarray(logits), np.asarray(want_logits)) <= 1e-4


def test_load_stablehlo_rejects_other_files(tmp_path):
    (tmp_path / "junk.bin").write_bytes(b"\x00not a flatbuffer")
    with pytest.raises(E.ExportError, match="junk.bin: not a serialized jax.export artifact"):
        E.load_stablehlo(tmp_path / "junk.bin")
    with pytest.raises(E.ExportError, match="missing.bin: cannot read"):
        E.load_stablehlo(tmp_path / "missing.bin")


# ---------------------------------------------------------------------------------------------------------------
# ONNX. jax2onnx is installed with --no-deps (its orbax pin conflicts with ours); see skeljax/export.py.
# ---------------------------------------------------------------------------------------------------------------


def _need_onnx():
    # The README's test command installs these; a missing one is a broken set-up, not a reason to skip.
    for name in ("jax2onnx", "onnxruntime"):
        try:
            __import__(name)
        except ImportError as e:
            pytest.fail(f"ONNX tests need {name}: {E.ONNX_INSTALL} ({e})")


def test_onnx_runtime_matches_two_batch_sizes(model, reference, tmp_path):
    _need_onnx()
    path = tmp_path / "model.onnx"
    E.export_onnx(model, path, frames=FRAMES, metadata={"feat": "j"})
    sess = E.onnx_session(path)
    (inp,) = sess.get_inputs()
    assert inp.name == "keypoint" and isinstance(inp.shape[0], str) and inp.shape[1:] == [2, FRAMES, 25, 3]
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    for b, want in reference.items():
        (got,) = sess.run(None, {"keypoint": inputs(model, b)})
        assert got.shape == (b, 60)
        assert E.max_relative_error(got, want) <= 1e-4
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["feat"] == "j" and json.loads(meta["skeljax_spec"])["num_classes"] == 60


def test_fix_maxpool_against_numpy():
    """A 4-D MaxPool (unsupported by ONNX Runtime), pooled on one middle axis with stride 2, after the rewrite."""
    _need_onnx()
    import onnx
    from onnx import TensorProto, helper

    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, "B", 4, 7, 3])
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, "B", 4, 4, 3])
    node = helper.make_node(
        "MaxPool",
        ["x"],
        ["y"],
        name="pool",
        kernel_shape=[1, 1, 3, 1],
        strides=[1, 1, 2, 1],
        pads=[0, 0, 1, 0, 0, 0, 1, 0],
    )
    proto = helper.make_model(
        helper.make_graph([node], "g", [x_info], [y_info]), opset_imports=[helper.make_opsetid("", 18)], ir_version=10
    )
    proto = E.fix_onnxruntime_maxpool(proto)
    onnx.checker.check_model(proto)
    assert [n.op_type for n in proto.graph.node].count("MaxPool") == 1
    sess = E.onnx_session(proto)
    for b in (2, 5):
        x = np.random.RandomState(b).standard_normal((1, 1, b, 4, 7, 3)).astype(np.float32)
        padded = np.pad(x, [(0, 0)] * 4 + [(1, 1), (0, 0)], constant_values=-np.inf)
        want = np.stack([padded[..., i : i + 3, :].max(axis=-2) for i in range(0, 7, 2)], axis=-2)  # T_out = 4
        (got,) = sess.run(None, {"x": x})
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow  # converts and compiles both artifacts again (~40 s)
def test_cli_writes_and_verifies_both(model, tmp_path, capsys):
    _need_onnx()
    save_model(str(tmp_path / "m"), model, extra={"feat": "b"})
    onnx_path, hlo_path = tmp_path / "m.onnx", tmp_path / "m.bin"
    rc = E.main(
        [
            str(tmp_path / "m"),
            "--onnx",
            str(onnx_path),
            "--stablehlo",
            str(hlo_path),
            "--frames",
            "20",
            "--platforms",
            "cpu",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and onnx_path.stat().st_size > 0 and hlo_path.stat().st_size > 0
    assert "StableHLO for cpu, input (N, 2, 20, 25, 3), max relative error" in out
    assert "max relative error in ONNX Runtime" in out
    meta = E.onnx_session(onnx_path).get_modelmeta().custom_metadata_map
    assert meta["feat"] == "b" and meta["recipe"] == "pyskl"


def test_cli_errors(tmp_path, capsys):
    assert E.main([str(tmp_path / "nothing"), "--stablehlo", str(tmp_path / "x.bin")]) == 1
    assert "nothing: no such checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        E.main([str(tmp_path / "nothing")])  # neither --onnx nor --stablehlo


@pytest.mark.slow  # full-size models: ~1 min of converting and compiling
@pytest.mark.parametrize("family", ["stgcnpp", "stgcn"])
def test_onnx_full_size_pth(family, tmp_path):
    _need_onnx()
    from skeljax.models.state_dict import load_pytorch_checkpoint

    path = tr.save_released_checkpoint(
        tr.build_pyskl_recognizer(family, "coco", 60, seed=1), tmp_path / "m.pth", style="pyskl"
    )
    m = load_pytorch_checkpoint(path)
    sess = E.onnx_session(E.export_onnx(m, frames=FRAMES))
    fwd = nnx.jit(lambda m, x: m(x))
    for b in (1, 2):
        x = inputs(m, b)
        assert E.max_relative_error(sess.run(None, {"keypoint": x})[0], np.asarray(fwd(m, x))) <= 1e-4
