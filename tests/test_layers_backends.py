"""`dense` / `graph_dot`: the CPU branch (custom VJP with barriers, float32 weight gradients) and the branch other
backends take (plain products, autodiff) compute the same values and gradients, in float32 and in bfloat16."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from skeljax.models import layers


def _loss_and_grads(dtype):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(4, 7, 5, 6)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    a = jnp.asarray(rng.normal(size=(9, 4)), jnp.float32)

    def f(x, w, a):
        with layers.matmul_dtype(dtype):
            y = layers.dense(x, w)
            z = layers.graph_dot(a, jnp.cos(y))
        return jnp.sum(jnp.sin(z)), (y, z)

    (_, (y, z)), grads = jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True)(x, w, a)
    # float64 NumPy references of both products
    y64 = np.asarray(x, np.float64) @ np.asarray(w, np.float64)
    z64 = np.tensordot(np.asarray(a, np.float64), np.cos(np.asarray(y, np.float64)), axes=1)
    return (y, z), grads, (y64, z64)


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cpu_and_other_backend_branches_agree(monkeypatch, dtype):
    assert jax.default_backend() == "cpu"
    z_cpu, g_cpu, ref = _loss_and_grads(dtype)
    _, g32, _ = _loss_and_grads("float32")
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")  # what layers checks to pick its branch
    z_gpu, g_gpu, _ = _loss_and_grads(dtype)
    for out_cpu, out_gpu, want in zip(z_cpu, z_gpu, ref):  # dense, then graph_dot
        assert out_cpu.dtype == out_gpu.dtype == jnp.float32
        for got in (out_cpu, out_gpu):
            if dtype == "float32":
                assert _rel(got, want) < 1e-5
            else:  # bfloat16 operands really used in each product and branch, float32 accumulation
                assert 1e-4 < _rel(got, want) < 2e-2
        np.testing.assert_allclose(out_cpu, out_gpu, rtol=1e-5, atol=1e-5)
    for gc, gg, g in zip(g_cpu, g_gpu, g32):
        assert _rel(gc, g) < (1e-5 if dtype == "float32" else 3e-2)
        assert _rel(gg, g) < (1e-5 if dtype == "float32" else 3e-2)
