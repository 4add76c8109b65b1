"""Layers with PyTorch semantics in a channels-last layout: BatchNorm, 1x1 and temporal convolutions, Linear.

Activations are (rows, T, V, C). Parameters are stored in the layout the computation wants (1x1 convolutions
as (C_in, C_out) matrices, temporal kernels as (k, C_in, C_out)); the checkpoint converter maps PyTorch's
(O, I, kT, 1) tensors to these once at load time. Attribute and variable names follow PyTorch's state_dict
keys so that a module path joined with dots is the PyTorch key.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx


class Buffer(nnx.Variable):
    """A non-trainable tensor stored in checkpoints (PyTorch `register_buffer`), e.g. a fixed graph `A`."""


def torch_uniform_init(key, shape, fan_in, dtype=jnp.float32):
    """PyTorch's default conv/linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5))."""
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, dtype, -bound, bound)


class BatchNorm(nnx.Module):
    """BatchNorm with PyTorch semantics (eps 1e-5, momentum 0.1, unbiased running variance).

    `features` may span several trailing axes (data_bn normalises (V, C) or (M, V, C) features). In training the
    statistics are computed per group of `group_size` leading rows, as each GPU of a PYSKL DDP run does with its
    own 16 videos; running statistics are updated with the mean over groups.
    """

    def __init__(self, features: int | tuple[int, ...], *, group_size: int | None = None,
                 eps: float = 1e-5, momentum: float = 0.1):
        shape = (features,) if isinstance(features, int) else tuple(features)
        self.weight = nnx.Param(jnp.ones(shape, jnp.float32))
        self.bias = nnx.Param(jnp.zeros(shape, jnp.float32))
        self.running_mean = nnx.BatchStat(jnp.zeros(shape, jnp.float32))
        self.running_var = nnx.BatchStat(jnp.ones(shape, jnp.float32))
        self.num_batches_tracked = nnx.BatchStat(jnp.zeros((), jnp.int32))
        self.eps = eps
        self.momentum = momentum
        self.group_size = group_size
        self.use_running_average = False

    def __call__(self, x: jax.Array) -> jax.Array:
        nf = self.weight.ndim
        if self.use_running_average:
            mean, var = self.running_mean[...], self.running_var[...]
            return (x - mean) * (self.weight[...] * jax.lax.rsqrt(var + self.eps)) + self.bias[...]
        rows = x.shape[0]
        gs = self.group_size if self.group_size and self.group_size < rows else rows
        if rows % gs:
            raise ValueError(f"BatchNorm: batch of {rows} rows is not a multiple of the BN group size {gs}")
        xg = x.reshape((rows // gs, gs) + x.shape[1:])
        axes = tuple(range(1, xg.ndim - nf))
        xf = xg.astype(jnp.float32)
        mean = jnp.mean(xf, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(xf - mean), axis=axes, keepdims=True)
        y = (xg - mean) * jax.lax.rsqrt(var + self.eps) * self.weight[...] + self.bias[...]
        n = math.prod(xg.shape[a] for a in axes)
        m = self.momentum
        bmean = jnp.mean(mean, axis=(0,) + axes)
        bvar = jnp.mean(var, axis=(0,) + axes) * (n / max(n - 1, 1))
        self.running_mean[...] = (1 - m) * self.running_mean[...] + m * jax.lax.stop_gradient(bmean)
        self.running_var[...] = (1 - m) * self.running_var[...] + m * jax.lax.stop_gradient(bvar)
        self.num_batches_tracked[...] = self.num_batches_tracked[...] + 1
        return y.reshape(x.shape).astype(x.dtype)


class Conv1x1(nnx.Module):
    """A 1x1 convolution as a matrix product over channels: weight (C_in, C_out), optional temporal stride."""

    def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs, stride: int = 1, init: str = "torch"):
        self.weight = nnx.Param(_conv_weight(rngs, (cin, cout), fan_in=cin, fan_out=cout, init=init))
        self.bias = nnx.Param(_conv_bias(rngs, cout, fan_in=cin, init=init))
        self.stride = stride

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.stride > 1:
            x = x[:, ::self.stride]
        return jnp.dot(x, self.weight[...].astype(x.dtype)) + self.bias[...].astype(x.dtype)


class TemporalConv(nnx.Module):
    """A (k x 1) convolution over time with zero padding (k + (k-1)(d-1) - 1) // 2, like PyTorch's unit_tcn."""

    def __init__(self, cin: int, cout: int, kernel_size: int, *, rngs: nnx.Rngs, stride: int = 1,
                 dilation: int = 1, init: str = "torch"):
        k = kernel_size
        self.weight = nnx.Param(_conv_weight(rngs, (k, cin, cout), fan_in=cin * k, fan_out=cout * k, init=init))
        self.bias = nnx.Param(_conv_bias(rngs, cout, fan_in=cin * k, init=init))
        self.stride = stride
        self.dilation = dilation
        self.padding = (k + (k - 1) * (dilation - 1) - 1) // 2

    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.weight[...].astype(x.dtype)[:, None]  # (k, 1, C_in, C_out): HWIO with H = time, W = joints
        y = jax.lax.conv_general_dilated(
            x, w, window_strides=(self.stride, 1), padding=((self.padding, self.padding), (0, 0)),
            rhs_dilation=(self.dilation, 1), dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + self.bias[...].astype(x.dtype)


class Linear(nnx.Module):
    """A fully connected layer, weight (in, out); PyTorch init unless a normal std is given (mmcv normal_init)."""

    def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs, init_std: float | None = None):
        if init_std is None:
            self.weight = nnx.Param(torch_uniform_init(rngs.params(), (cin, cout), cin))
            self.bias = nnx.Param(torch_uniform_init(rngs.params(), (cout,), cin))
        else:
            self.weight = nnx.Param(init_std * jax.random.normal(rngs.params(), (cin, cout), jnp.float32))
            self.bias = nnx.Param(jnp.zeros((cout,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.dot(x, self.weight[...].astype(x.dtype)) + self.bias[...].astype(x.dtype)


def max_pool_time(x: jax.Array, window: int = 3, stride: int = 1) -> jax.Array:
    """Max pooling over time with -inf padding (window - 1) // 2, as PyTorch's MaxPool2d((3, 1), padding=(1, 0))."""
    pad = (window - 1) // 2
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, 1, 1), (1, stride, 1, 1),
                                 ((0, 0), (pad, pad), (0, 0), (0, 0)))


def _conv_weight(rngs, shape, *, fan_in, fan_out, init):
    if init == "torch":  # PYSKL never calls sub-module init_weights: PyTorch defaults apply.
        return torch_uniform_init(rngs.params(), shape, fan_in)
    if init == "kaiming_normal":  # MMAction2 0.x: kaiming_init(mode='fan_out', nonlinearity='relu').
        return math.sqrt(2.0 / fan_out) * jax.random.normal(rngs.params(), shape, jnp.float32)
    raise ValueError(f"unknown init {init!r}")


def _conv_bias(rngs, cout, *, fan_in, init):
    if init == "torch":
        return torch_uniform_init(rngs.params(), (cout,), fan_in)
    return jnp.zeros((cout,), jnp.float32)
