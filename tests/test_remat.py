"""Recognizer.set_remat: the rematerialised training forward and backward are the same computation as the plain one
(same logits, gradients, BatchNorm statistics and dropout masks), and keep less for the backward pass."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax._src.ad_checkpoint import saved_residuals

from skeljax.models.stgcn import Recognizer, stgcnpp_spec


def _loss_and_grads(remat: bool, x):
    spec = dataclasses.replace(stgcnpp_spec(5), base_channels=12, tcn_dropout=0.3, bn_group=2)
    model = Recognizer(spec, rngs=nnx.Rngs(params=3, dropout=7))
    model.train()
    model.set_remat(remat)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(p):
        m = nnx.merge(graphdef, p, rest, copy=True)
        logits = m(x)
        return jnp.sum(logits * jnp.arange(5.0)), (logits, nnx.state(m, nnx.BatchStat))

    (value, (logits, stats)), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    return value, logits, stats, grads, loss, params


def test_remat_is_the_same_computation_with_fewer_residuals():
    x = jax.random.normal(jax.random.key(0), (4, 2, 16, 25, 3))
    plain = _loss_and_grads(False, x)
    remat = _loss_and_grads(True, x)
    np.testing.assert_allclose(remat[1], plain[1], rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(remat[2]), jax.tree.leaves(plain[2])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    ga, gb = jax.tree.leaves(remat[3]), jax.tree.leaves(plain[3])
    assert len(ga) == len(gb) and any(np.abs(g).max() > 0 for g in gb)
    for a, b in zip(ga, gb):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)
    size = lambda res: sum(np.prod(a.shape) * a.dtype.itemsize for a, _ in res)  # noqa: E731
    kept = size(saved_residuals(lambda p: remat[4](p)[0], remat[5]))
    assert kept < 0.3 * size(saved_residuals(lambda p: plain[4](p)[0], plain[5]))
