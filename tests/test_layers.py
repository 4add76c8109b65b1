"""Single layers against PyTorch: the temporal max pool of the MSTCN's max branch and its dilated temporal
convolutions in both arrangements, forward and backward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from skeljax.models.layers import TemporalConv, max_pool_time
from skeljax.models.stgcn import dilated_conv


def _torch_pool(x, g, stride):
    """PyTorch MaxPool2d((3, 1), (stride, 1), (1, 0)) on (rows, V, T, C) data given as NumPy; returns y, dx."""
    xt = torch.tensor(x.transpose(0, 3, 2, 1), requires_grad=True)  # (N, C, T, V)
    yt = torch.nn.functional.max_pool2d(xt, (3, 1), (stride, 1), (1, 0))
    yt.backward(torch.tensor(g.transpose(0, 3, 2, 1)))
    return yt.detach().numpy().transpose(0, 3, 2, 1), xt.grad.numpy().transpose(0, 3, 2, 1)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("t", [7, 8])
def test_max_pool_time_matches_torch_with_ties(stride, t):
    rng = np.random.default_rng(t + 10 * stride)
    # After a ReLU most windows hold several exact zeros; also plant equal positive values: PyTorch sends each
    # output's gradient to the first maximum of its window, and so must we (a split tie gives other gradients).
    x = np.maximum(rng.normal(size=(3, 5, t, 4)), 0).astype(np.float32)
    x[0, 0, 2:5, 0] = 1.5
    x[1, 2, 0:2, 3] = 0.75
    g = rng.normal(size=(3, 5, (t - 1) // stride + 1, 4)).astype(np.float32)

    y, pull = jax.vjp(lambda x: max_pool_time(x, 3, stride, time_axis=2), jnp.asarray(x))
    (gx,) = pull(jnp.asarray(g))
    y_ref, gx_ref = _torch_pool(x, g, stride)
    np.testing.assert_array_equal(np.asarray(y), y_ref)
    np.testing.assert_array_equal(np.asarray(gx), gx_ref)


def test_max_pool_time_gradient_is_first_maximum_by_hand():
    # One window with a three-way tie: output t=1 sees x[0..2] = (2, 2, 2) and takes the first; t=0 sees
    # (-inf, 2, 2), first maximum x[0]; t=2 sees (2, 2, -inf), first maximum x[1].
    x = jnp.full((1, 3, 1), 2.0)
    (gx,) = jax.vjp(lambda x: max_pool_time(x, 3, 1, time_axis=1), x)[1](jnp.array([[[1.0], [10.0], [100.0]]]))
    np.testing.assert_array_equal(np.asarray(gx)[0, :, 0], [11.0, 100.0, 0.0])


def test_max_pool_time_jits_under_grad():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 9, 3)), jnp.float32)
    f = jax.jit(jax.grad(lambda x: (max_pool_time(x, 3, 2, time_axis=1) ** 2).sum()))
    ref = jax.grad(lambda x: (max_pool_time(x, 3, 2, time_axis=1) ** 2).sum())(x)
    np.testing.assert_array_equal(np.asarray(f(x)), np.asarray(ref))


def test_batch_norm_statistics_update_follows_pytorch_and_refuses_a_wrong_shape():
    """The running statistics after one training call, under jit (tracers replace the variables' values), against
    torch.nn.BatchNorm1d; a statistics update of another shape is an error, not a broadcast."""
    from flax import nnx

    from skeljax.models.layers import BatchNorm

    x = np.random.default_rng(0).normal(2.0, 3.0, size=(12, 5)).astype(np.float32)
    bn = BatchNorm(5)

    @nnx.jit
    def step(module, x):
        return module(x)

    step(bn, jnp.asarray(x))
    ref = torch.nn.BatchNorm1d(5)
    ref.train()
    ref(torch.from_numpy(x))
    np.testing.assert_allclose(bn.running_mean[...], ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var[...], ref.running_var.numpy(), rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked[...]) == 1
    with pytest.raises(ValueError, match=r"BatchNorm statistics: \(1, 5\) float32 for a \(5,\) float32 variable"):
        bn.update_stats(jnp.zeros((1, 5)), jnp.ones((1, 5)))


def _torch_temporal_conv(x, w, g, stride, dilation, padding):
    """PyTorch's conv2d with a (k, 1) kernel as PYSKL's unit_tcn runs it, on (V, B, T, C) NumPy data; y, dx, dw."""
    xt = torch.tensor(x.transpose(1, 3, 2, 0), requires_grad=True)  # (B, C, T, V)
    wt = torch.tensor(w.transpose(2, 1, 0)[..., None], requires_grad=True)  # (C_out, C_in, k, 1)
    yt = torch.nn.functional.conv2d(xt, wt, stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1))
    yt.backward(torch.tensor(g.transpose(1, 3, 2, 0)))
    dw = wt.grad.numpy()[..., 0].transpose(2, 1, 0)
    return yt.detach().numpy().transpose(3, 0, 2, 1), xt.grad.numpy().transpose(3, 0, 2, 1), dw


@pytest.mark.parametrize("taps_first", [True, False], ids=["taps_first", "im2col"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dilation", [1, 4])
def test_dilated_conv_matches_torch_in_both_arrangements(taps_first, stride, dilation):
    """Inference shifts the k taps after the matmul, training shifts the inputs before it (im2col): both are
    PyTorch's dilated, strided conv, values and gradients, including the zero-padded ends."""
    conv = TemporalConv(5, 6, 3, rngs=nnx.Rngs(0), stride=stride, dilation=dilation)
    rng = np.random.default_rng(dilation * 10 + stride)
    x = rng.normal(size=(4, 2, 11, 5)).astype(np.float32)  # (V, B, T, C_in)
    w = rng.normal(size=(3, 5, 6)).astype(np.float32)
    t_out = (11 - 1) // stride + 1
    g = rng.normal(size=(4, 2, t_out, 6)).astype(np.float32)
    want_y, want_dx, want_dw = _torch_temporal_conv(x, w, g, stride, dilation, conv.padding)

    def f(x, w):
        return dilated_conv(x, conv, w, taps_first=taps_first)

    y, vjp = jax.vjp(f, jnp.asarray(x), jnp.asarray(w))
    dx, dw = vjp(jnp.asarray(g))
    np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-5, atol=1e-4)
