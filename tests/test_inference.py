"""skeljax.models.forward: on one CPU device the compiled forward runs the clips through the network one at a time (a
compiled loop, so that each clip's activations stay in the CPU's cache); it gives what the whole batch at once
gives, for every average and with features, and other meshes keep the whole batch in each kernel."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from skeljax import sharding
from skeljax.models import forward
from skeljax.models.stgcn import Recognizer, stgcnpp_spec
from skeljax.testing import torch_reference as tr

SMALL = {"base_channels": 8, "num_stages": 4, "inflate_stages": (3,), "down_stages": (3,)}


def _mesh_of(*platforms):
    return SimpleNamespace(devices=np.array([SimpleNamespace(platform=p) for p in platforms], dtype=object))


def test_one_cpu_device_runs_a_clip_at_a_time_and_other_meshes_the_whole_batch():
    assert forward.rows_per_pass(sharding.make_mesh()) == 1  # the tests' single CPU device
    assert forward.rows_per_pass(_mesh_of("cpu")) == 1
    assert forward.rows_per_pass(_mesh_of("gpu")) is None
    assert forward.rows_per_pass(_mesh_of("tpu")) is None
    assert forward.rows_per_pass(_mesh_of("cpu", "cpu")) is None  # the mesh splits the batch already


def test_cpu_programs_compile_at_llvm_level_1_other_platforms_with_xla_defaults():
    assert sharding.compiler_options(_mesh_of("cpu")) == {"xla_backend_optimization_level": 1}
    assert sharding.compiler_options(_mesh_of("gpu")) is None
    assert sharding.compiler_options(_mesh_of("tpu")) is None


def test_the_forward_and_the_train_step_hand_their_compiler_options_to_xla(monkeypatch):
    # an option XLA rejects makes the compile fail: the options do reach XLA from both jits
    from skeljax.train.step import jit_train_step

    monkeypatch.setattr(sharding, "CPU_LLVM_OPT_LEVEL", "not-a-level")
    forward.jitted_forward.cache_clear()
    mesh = sharding.make_mesh()
    model = Recognizer(stgcnpp_spec(60, **SMALL), rngs=nnx.Rngs(0))
    graphdef, params, stats, rest = forward.split_eval(model)
    x = jnp.zeros((1, 1, 2, 8, 25, 3), jnp.float32)
    try:
        with pytest.raises(Exception, match="xla_backend_optimization_level"):
            forward.make_forward(graphdef, rest, mesh).lower(params, stats, x).compile()
        step = jit_train_step(lambda state, batch: (state, {"loss": batch["x"].sum()}), mesh)
        with pytest.raises(Exception, match="xla_backend_optimization_level"):
            step.lower({"w": jnp.ones(2)}, {"x": jnp.ones((1, 2))}).compile()
    finally:
        forward.jitted_forward.cache_clear()  # no jit with the bad option left behind for other tests


def test_passes_give_the_outputs_of_one_call_in_order():
    def apply(x):  # row-wise, with a tuple output as the forward with features has
        return x.sum(axis=(1, 2)), x[:, 0] * 2.0

    rows = jnp.arange(6 * 3 * 2, dtype=jnp.float32).reshape(6, 3, 2)
    whole = apply(rows)
    for per_pass in (1, 2, 3, 4, None):  # 4 does not divide 6: one call
        got = jax.jit(lambda r, p=per_pass: forward.apply_in_passes(apply, r, p))(rows)
        for a, b in zip(got, whole):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("average,features", [("prob", False), ("score", True)])
def test_the_forward_in_passes_matches_the_whole_batch(average, features):
    model = Recognizer(stgcnpp_spec(60, **SMALL), rngs=nnx.Rngs(0))
    graphdef, params, stats, rest = forward.split_eval(model)
    x = jnp.asarray(tr.make_inputs("nturgb+d", n=6, t=24).numpy()).reshape(3, 2, 2, 24, 25, 3)  # 3 samples x 2 clips
    mesh = sharding.make_mesh()
    compiled = forward.make_forward(graphdef, rest, mesh, average, features)
    assert "while" in compiled.lower(params, stats, x).compile().as_text()  # it does run in passes here

    whole = jax.jit(
        lambda p, s, k: forward.forward_in_passes(
            graphdef, rest, p, s, k, average=average, features=features, per_pass=None
        )
    )(params, stats, x)
    got = compiled(params, stats, x)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(whole)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert jax.tree.leaves(got)[0].shape == (3, 60)
