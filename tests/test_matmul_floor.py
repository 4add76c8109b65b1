"""skeljax/testing/matmul_floor.py: the matrix products it finds in compiled programs, and their FLOP counts."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from skeljax.models.stgcn import Recognizer, stgcnpp_spec
from skeljax.testing import matmul_floor as mf


def _compiled(f, *shapes):
    return jax.jit(f).lower(*[jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]).compile()


def test_finds_each_product_with_its_shapes_and_flops():
    def f(a, b, c, x, y):
        return jnp.tanh(a @ b) @ c, jnp.einsum("bij,bjk->bik", x, y)

    compiled = _compiled(f, (64, 128), (128, 96), (96, 48), (3, 40, 50), (3, 50, 60))
    dots = mf.dots_in_hlo(compiled.as_text())
    assert sum(dots.values()) == 3
    by_lhs = {d.lhs_shape: d for d in dots}
    assert set(by_lhs) == {(64, 128), (64, 96), (3, 40, 50)}
    assert by_lhs[(64, 128)].flops == 2 * 64 * 96 * 128
    assert by_lhs[(64, 96)].flops == 2 * 64 * 48 * 96
    batched = by_lhs[(3, 40, 50)]
    assert batched.lhs_batch == (0,) and batched.flops == 2 * 3 * 40 * 60 * 50


def test_stgcnpp_products_add_up_to_the_reference_cost():
    # ST-GCN++ costs 2.925 GMAC per NTU sample (M=2, T=100, V=25) forward (PyTorch's FlopCounterMode on PYSKL's
    # model; MMAction2 1.x's configs/skeleton/stgcnpp/metafile.yml rounds it to 2.96 G): every one of those
    # multiply-adds sits in a product the parser must find (graph aggregations, 1x1 and temporal convolutions).
    model = Recognizer(stgcnpp_spec(60), rngs=nnx.Rngs(0))
    model.eval()
    graphdef, state = nnx.split(model)
    compiled = (
        jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
        .lower(state, jax.ShapeDtypeStruct((1, 2, 100, 25, 3), jnp.float32))
        .compile()
    )
    dots = mf.dots_in_hlo(compiled.as_text())
    gmac = sum(n * d.flops for d, n in dots.items()) / 2e9
    assert gmac == pytest.approx(2.925, rel=0.01)


def test_floor_times_the_products_and_is_none_without_any():
    compiled = _compiled(lambda a, b: a @ b, (256, 256), (256, 256))
    floor = mf.matmul_floor(compiled, repeats=3)
    assert floor["dots"] == 1 and floor["shapes"] == 1
    assert floor["gflop"] == pytest.approx(2 * 256**3 / 1e9)
    assert floor["seconds"] > 0
    assert mf.matmul_floor(_compiled(lambda a: jnp.exp(a) + 1, (256, 256))) is None


def test_unknown_operand_is_an_error():
    text = (
        "  ROOT %dot.1 = f32[4,4]{1,0} dot(%missing, %also_missing), lhs_contracting_dims={1}, rhs_contracting_dims={0}"
    )
    with pytest.raises(ValueError, match="cannot find the operands"):
        mf.dots_in_hlo(text)


def test_products_in_a_loop_count_once_per_trip():
    # The inference forward runs clips through the network in a compiled loop on CPU (skeljax.models.forward); its
    # products run once per clip, and the floor must count them so.
    def f(w, xs):
        return jax.lax.map(lambda x: jnp.tanh(x @ w) @ w.T, xs)

    dots = mf.dots_in_hlo(_compiled(f, (32, 48), (7, 16, 32)).as_text())
    assert sum(dots.values()) == 2 * 7
    assert {d.lhs_shape for d in dots} == {(16, 32), (16, 48)}


def test_the_per_clip_inference_loop_costs_what_the_whole_batch_does():
    from skeljax import sharding
    from skeljax.models import forward

    model = Recognizer(stgcnpp_spec(60), rngs=nnx.Rngs(0))
    graphdef, params, stats, rest = forward.split_eval(model)
    compiled = forward.make_forward(graphdef, rest, sharding.make_mesh(), "prob")
    x = jax.ShapeDtypeStruct((3, 1, 2, 100, 25, 3), jnp.float32)
    dots = mf.dots_in_hlo(compiled.lower(params, stats, x).compile().as_text())
    assert sum(n * d.flops for d, n in dots.items()) / 2e9 == pytest.approx(3 * 2.925, rel=0.01)


def test_a_short_product_is_timed_in_a_loop_that_xla_keeps():
    # time_dot divides a loop of `trips` products by `trips`; that holds only if every trip really multiplies.
    product = functools.partial(jnp.matmul)
    a, b = jnp.ones((16, 8)), jnp.full((8, 4), 0.5)
    looped = jax.jit(functools.partial(mf._repeated_product, product, 5))
    np.testing.assert_array_equal(np.asarray(looped(a, b)), np.asarray(a @ b))  # the nudge is zero
    dots = mf.dots_in_hlo(looped.lower(a, b).compile().as_text())
    assert sum(dots.values()) == 1 + 5  # the first product, then one per trip: none hoisted or merged
    dot = mf.Dot("f32", (4000, 25), "f32", (25, 75), (1,), (0,), (), (), "f32")
    assert mf.time_dot(dot, repeats=2, warmup=1) > 0
