"""Layers with PyTorch semantics in a channels-last layout: BatchNorm, 1x1 and temporal convolutions, Linear.

Activations are (rows, T, V, C). Parameters are stored in the layout the computation wants (1x1 convolutions
as (C_in, C_out) matrices, temporal kernels as (k, C_in, C_out)); the checkpoint converter maps PyTorch's
(O, I, kT, 1) tensors to these once at load time, and maps the PyTorch key names to the state paths.
The convolutions hold parameters only: the fused forwards in `stgcn.py` read their weights.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class Buffer(nnx.Variable):
    """A non-trainable tensor stored in checkpoints (PyTorch `register_buffer`), e.g. a fixed graph `A`."""


# True while a model is built only for its shapes and dtypes (`stgcn.abstract_recognizer`, under nnx.eval_shape):
# the initialisers then give zeros of the right shape instead of tracing a random-number program per parameter
# (~0.2 s of a 0.25 s ST-GCN++ build), values a checkpoint overwrites anyway.
_SHAPES_ONLY: contextvars.ContextVar = contextvars.ContextVar("skeljax_shapes_only", default=False)


@contextlib.contextmanager
def shapes_only():
    """Build modules for their shapes only: `random_uniform` and `random_normal` give zeros inside."""
    token = _SHAPES_ONLY.set(True)
    try:
        yield
    finally:
        _SHAPES_ONLY.reset(token)


def random_uniform(key, shape, dtype=jnp.float32, minval=0.0, maxval=1.0):
    """jax.random.uniform, or zeros under `shapes_only`."""
    if _SHAPES_ONLY.get():
        return jnp.zeros(shape, dtype)
    return jax.random.uniform(key, shape, dtype, minval, maxval)


def random_normal(key, shape, dtype=jnp.float32):
    """jax.random.normal, or zeros under `shapes_only`."""
    if _SHAPES_ONLY.get():
        return jnp.zeros(shape, dtype)
    return jax.random.normal(key, shape, dtype)


def torch_uniform_init(key, shape, fan_in, dtype=jnp.float32):
    """PyTorch's default conv/linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5))."""
    bound = 1.0 / math.sqrt(fan_in)
    return random_uniform(key, shape, dtype, -bound, bound)


# The dtype of matrix-product operands (None: as given). Mixed precision is "bfloat16 operands, float32
# accumulation and float32 everywhere else": activations, BatchNorm, residual sums and the loss stay float32, and
# only the products (where the FLOPs are) round their inputs. On CPUs with AVX512-BF16 such products run about twice
# as fast, while bfloat16 elementwise work brings nothing there (XLA computes it in float32 with conversions).
_MATMUL_DTYPE: contextvars.ContextVar = contextvars.ContextVar("skeljax_matmul_dtype", default=None)


@contextlib.contextmanager
def matmul_dtype(dtype: str | None):
    """Within this context (at trace time) `dense` and `graph_dot` multiply `dtype` operands ('float32': as given)."""
    token = _MATMUL_DTYPE.set(None if dtype in (None, "float32") else jnp.dtype(dtype))
    try:
        yield
    finally:
        _MATMUL_DTYPE.reset(token)


def _cast(a: jax.Array, dt) -> jax.Array:
    return a if dt is None else a.astype(dt)


def _product(x, w, dt):
    """x @ w with `dt` operands (None: as given) and a float32 result: the forward of `dense` on every backend."""
    return jnp.dot(_cast(x, dt), _cast(w, dt), preferred_element_type=jnp.float32)


def _graph_product(a, x, dt):
    """a @ x over x's leading (joints) axis, as `_product`: the forward of `graph_dot` on every backend."""
    return jnp.tensordot(_cast(a, dt), _cast(x, dt), axes=1, preferred_element_type=jnp.float32)


def dense(x: jax.Array, w: jax.Array) -> jax.Array:
    """x (..., C_in) @ w (C_in, C_out) -> float32, operands in the `matmul_dtype`; on CPU with a backward pass that
    keeps XLA's transposes cheap.

    The weight gradient contracts over every row of x and of the output gradient. XLA on CPU feeds that product
    with transposed copies and, left alone, fuses the producers of the gradient (BatchNorm's backward, ReLU
    masks) into the transposing copy, which then reads several arrays in column order: on a 2-core CPU those
    copies took 40% of the training step. An optimization barrier makes them plain transposes of materialised
    arrays. That product stays in float32 on CPU whatever the `matmul_dtype`: XLA runs it outside the fast
    (YNNPACK) kernels, and bfloat16 operands there only add conversion passes. GPUs multiply transposed operands
    natively, and XLA 0.11's GPU compiler aborts on the barrier form (triton_tiling_propagation check failure), so
    elsewhere it is a plain product.
    """
    dt = _MATMUL_DTYPE.get()
    if jax.default_backend() == "cpu":
        return _dense_cpu(x, w, dt)
    return _product(x, w, dt)


def _cpu_backward(product, backward):
    """`product(a, b, dt)` as a custom-VJP function with the hand-written `backward(dt, (a, b), g)`."""
    fn = jax.custom_vjp(product, nondiff_argnums=(2,))
    fn.defvjp(lambda a, b, dt: (product(a, b, dt), (a, b)), backward)
    return fn


def _dense_bwd(dt, res, g):
    x, w = res
    dx = _product(g, w.T, dt)
    x2, g2 = jax.lax.optimization_barrier((x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])))
    dw = jax.lax.dot_general(x2, g2, (((0,), (0,)), ((), ())))
    return dx.astype(x.dtype), dw.astype(w.dtype)


_dense_cpu = _cpu_backward(_product, _dense_bwd)


def graph_dot(a: jax.Array, x: jax.Array) -> jax.Array:
    """a (P, V) @ x (V, ...) -> (P, ...) float32: the graph aggregation over joints, as `dense` (operand dtype,
    CPU backward)."""
    dt = _MATMUL_DTYPE.get()
    if jax.default_backend() == "cpu":
        return _graph_dot_cpu(a, x, dt)
    return _graph_product(a, x, dt)


def _graph_dot_bwd(dt, res, g):
    a, x = res
    dx = _graph_product(a.T, g, dt)
    g2, x2 = jax.lax.optimization_barrier((g.reshape(g.shape[0], -1), x.reshape(x.shape[0], -1)))
    da = jax.lax.dot_general(g2, x2, (((1,), (1,)), ((), ())))
    return da.astype(a.dtype), dx.astype(x.dtype)


_graph_dot_cpu = _cpu_backward(_graph_product, _graph_dot_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def recompute_in_backward(fn, *args):
    """fn(*args), saving only `args` for the backward pass, which runs fn's forward again to differentiate it.

    The recomputation must wait for the output cotangent, or XLA merges it with the forward pass (CSE) and keeps
    every intermediate alive again: that is what happened to jax.checkpoint on every ST-GCN++ block (XLA on CPU
    drops its optimization barriers before scheduling; the training step's 4 GB of scratch stayed). So the
    recomputation reads its inputs plus 0 * (one element of the cotangent): XLA does not fold x * 0 for floats
    (NaN and inf), the values are unchanged, and the dependency orders the recomputation after the cotangent.
    """
    return fn(*args)


def _recompute_fwd(fn, *args):
    return fn(*args), args


def _is_float(a) -> bool:
    return isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.floating)


def _recompute_bwd(fn, args, cts):
    first = next(c for c in jax.tree.leaves(cts) if _is_float(c) and c.size)
    zero = jnp.ravel(first)[0].astype(jnp.float32) * 0.0
    tied = jax.tree.map(lambda a: a + zero.astype(a.dtype) if _is_float(a) else a, args)
    _, vjp = jax.vjp(fn, *tied)
    return vjp(cts)


recompute_in_backward.defvjp(_recompute_fwd, _recompute_bwd)


class BatchNorm(nnx.Module):
    """BatchNorm with PyTorch semantics (eps 1e-5, momentum 0.1, unbiased running variance).

    `features` may span several trailing axes (data_bn normalises (V, C) or (M, V, C) features). In training the
    statistics are computed per group of `group_size` leading rows, as each GPU of a PYSKL DDP run does with its
    own 16 videos; running statistics are updated with the mean over groups.
    """

    def __init__(
        self,
        features: int | tuple[int, ...],
        *,
        group_size: int | None = None,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ):
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

    def __call__(self, x: jax.Array, batch_axis: int = 0) -> jax.Array:
        """Normalise `x`; its rows (samples) lie along `batch_axis`, the features are the trailing axes."""
        if self.use_running_average:
            scale, shift = self.affine()
            return x * scale + shift
        y, mean, var = batch_norm_train(
            x, self.weight[...], self.bias[...], self.eps, self.group_size, batch_axis, self.weight.ndim
        )
        self.update_stats(mean, var)
        return y

    def affine(self) -> tuple[jax.Array, jax.Array]:
        """Eval-mode BN as y = x * scale + shift (float32), for folding into a preceding linear op."""
        scale = self.weight[...] * jax.lax.rsqrt(self.running_var[...] + self.eps)
        return scale, self.bias[...] - self.running_mean[...] * scale

    def update_stats(self, mean: jax.Array, var: jax.Array) -> None:
        """Running-statistics update from a batch's mean and unbiased variance (PyTorch's momentum rule)."""
        m = self.momentum
        _replace(self.running_mean, (1 - m) * self.running_mean[...] + m * jax.lax.stop_gradient(mean))
        _replace(self.running_var, (1 - m) * self.running_var[...] + m * jax.lax.stop_gradient(var))
        _replace(self.num_batches_tracked, self.num_batches_tracked[...] + 1)


def _replace(variable: nnx.Variable, value: jax.Array) -> None:
    """variable[...] = value for a value of the variable's own shape and dtype, without that path's sharding check:
    under tracing, reading a tracer's sharding builds an error message that searches the whole jaxpr traced so far,
    which made BatchNorm's statistics updates half of the training step's tracing time (5.5 of 11 s)."""
    old = variable[...]
    if value.shape != old.shape or value.dtype != old.dtype:
        raise ValueError(f"BatchNorm statistics: {value.shape} {value.dtype} for a {old.shape} {old.dtype} variable")
    variable.set_value(value)


def batch_norm_train(x, weight, bias, eps, group_size, batch_axis, nf):
    """Training-mode BN with statistics per group of `group_size` rows along `batch_axis`.

    Returns (y in x's dtype, mean over groups of the batch means, mean over groups of the unbiased variances);
    statistics are computed in float32 whatever the compute dtype.
    """
    rows = x.shape[batch_axis]
    gs = group_size if group_size and group_size < rows else rows
    if rows % gs:
        raise ValueError(f"BatchNorm: batch of {rows} rows is not a multiple of the BN group size {gs}")
    ba = batch_axis % x.ndim
    xg = x.reshape(x.shape[:ba] + (rows // gs, gs) + x.shape[ba + 1 :])
    axes = tuple(a for a in range(xg.ndim - nf) if a != ba)
    y, mean, var = _bn_normalize(xg, weight, bias, eps, axes)
    n = math.prod(xg.shape[a] for a in axes)
    bmean = jnp.mean(mean, axis=(ba,) + axes)
    bvar = jnp.mean(var, axis=(ba,) + axes) * (n / max(n - 1, 1))
    return y.reshape(x.shape), bmean, bvar


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _bn_normalize(xf, weight, bias, eps, axes):
    """(x - mean) * rsqrt(var + eps) * weight + bias with per-group statistics over `axes`; returns (y, mean, var).

    The hand-written backward is the textbook one (two reductions, one elementwise pass); autodiff of the
    forward made XLA emit several passes over the activations, a large share of a CPU training step. The mean
    and variance outputs feed only the running statistics (under stop_gradient): their cotangents are ignored.
    """
    return _bn_normalize_fwd(xf, weight, bias, eps, axes)[0]


def _bn_normalize_fwd(xf, weight, bias, eps, axes):
    mean = jnp.mean(xf, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(xf - mean), axis=axes, keepdims=True)
    rstd = jax.lax.rsqrt(var + eps)
    y = (xf - mean) * (rstd * weight) + bias
    return (y, mean, var), (xf, mean, rstd, weight)


def _bn_normalize_bwd(eps, axes, res, cts):
    xf, mean, rstd, weight = res
    gy = cts[0]
    xhat = (xf - mean) * rstd
    n = math.prod(xf.shape[a] for a in axes)
    sum_g = jnp.sum(gy, axis=axes, keepdims=True)
    sum_gx = jnp.sum(gy * xhat, axis=axes, keepdims=True)
    dx = (rstd * weight / n) * (n * gy - sum_g - xhat * sum_gx)
    feat = tuple(range(xf.ndim - weight.ndim))
    dw = jnp.sum(sum_gx, axis=feat).reshape(weight.shape)
    db = jnp.sum(sum_g, axis=feat).reshape(weight.shape)
    return dx, dw, db


_bn_normalize.defvjp(_bn_normalize_fwd, _bn_normalize_bwd)


def joint_batch_norm(bns: list[BatchNorm], x: jax.Array, batch_axis: int = 0) -> jax.Array:
    """Apply several 1-D BatchNorms to consecutive channel slices of `x` at once (per-channel stats are unchanged)."""
    if bns[0].use_running_average:
        scale, shift = joint_affine(bns)
        return x * scale + shift
    w = jnp.concatenate([bn.weight[...] for bn in bns])
    b = jnp.concatenate([bn.bias[...] for bn in bns])
    y, mean, var = batch_norm_train(x, w, b, bns[0].eps, bns[0].group_size, batch_axis, 1)
    off = 0
    for bn in bns:
        n = bn.weight.shape[0]
        bn.update_stats(mean[off : off + n], var[off : off + n])
        off += n
    return y


def joint_affine(bns: list[BatchNorm]) -> tuple[jax.Array, jax.Array]:
    parts = [bn.affine() for bn in bns]
    return jnp.concatenate([p[0] for p in parts]), jnp.concatenate([p[1] for p in parts])


def linear_bn(x: jax.Array, w: jax.Array, b: jax.Array, bn: BatchNorm | None, batch_axis: int = 0) -> jax.Array:
    """x @ w + b, then `bn`; an eval-mode BN is folded into (w, b) at trace time (one matmul, no extra pass)."""
    if bn is not None and bn.use_running_average:
        scale, shift = bn.affine()
        w, b, bn = w * scale, b * scale + shift, None
    y = dense(x, w) + b
    return y if bn is None else bn(y, batch_axis=batch_axis)


class Conv1x1(nnx.Module):
    """Parameters of a 1x1 convolution, a matrix product over channels: weight (C_in, C_out), temporal stride."""

    def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs, stride: int = 1, init: str = "torch"):
        self.weight = nnx.Param(_conv_weight(rngs, (cin, cout), fan_in=cin, fan_out=cout, init=init))
        self.bias = nnx.Param(_conv_bias(rngs, cout, fan_in=cin, init=init))
        self.stride = stride

    def strided(self, x: jax.Array, time_axis: int = 1) -> jax.Array:
        """The input rows this convolution sees (every stride-th frame)."""
        if self.stride == 1:
            return x
        return jax.lax.slice_in_dim(x, 0, x.shape[time_axis], self.stride, axis=time_axis)


class TemporalConv(nnx.Module):
    """Parameters of a (k x 1) convolution over time, zero padding (k + (k-1)(d-1) - 1) // 2 as PYSKL's unit_tcn."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        *,
        rngs: nnx.Rngs,
        stride: int = 1,
        dilation: int = 1,
        init: str = "torch",
    ):
        k = kernel_size
        self.weight = nnx.Param(_conv_weight(rngs, (k, cin, cout), fan_in=cin * k, fan_out=cout * k, init=init))
        self.bias = nnx.Param(_conv_bias(rngs, cout, fan_in=cin * k, init=init))
        self.stride = stride
        self.dilation = dilation
        self.padding = (k + (k - 1) * (dilation - 1) - 1) // 2

    def out_length(self, t: int) -> int:
        """Frames out for t frames in."""
        k = self.weight.shape[0]
        return (t + 2 * self.padding - self.dilation * (k - 1) - 1) // self.stride + 1

    def im2col(self, x: jax.Array, time_axis: int = 1) -> jax.Array:
        """The k shifted (and strided) copies of x side by side on the channel axis: the conv is then one matmul."""
        k, p, d, s = self.weight.shape[0], self.padding, self.dilation, self.stride
        t_out = self.out_length(x.shape[time_axis])
        pad = [(0, 0)] * x.ndim
        pad[time_axis] = (p, p)
        xp = jnp.pad(x, pad)
        cols = [jax.lax.slice_in_dim(xp, j * d, j * d + (t_out - 1) * s + 1, s, axis=time_axis) for j in range(k)]
        return jnp.concatenate(cols, axis=-1)


class Linear(nnx.Module):
    """A fully connected layer, weight (in, out); PyTorch init unless a normal std is given (mmcv normal_init)."""

    def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs, init_std: float | None = None):
        if init_std is None:
            self.weight = nnx.Param(torch_uniform_init(rngs.params(), (cin, cout), cin))
            self.bias = nnx.Param(torch_uniform_init(rngs.params(), (cout,), cin))
        else:
            self.weight = nnx.Param(init_std * random_normal(rngs.params(), (cin, cout), jnp.float32))
            self.bias = nnx.Param(jnp.zeros((cout,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.dot(x, self.weight[...]) + self.bias[...]


def max_pool_time(x: jax.Array, window: int = 3, stride: int = 1, time_axis: int = 1) -> jax.Array:
    """Max pooling over time with -inf padding (window - 1) // 2, as PyTorch's MaxPool2d((3, 1), padding=(1, 0))."""
    pad = (window - 1) // 2
    dims, strides, pads = [1] * x.ndim, [1] * x.ndim, [(0, 0)] * x.ndim
    dims[time_axis], strides[time_axis], pads[time_axis] = window, stride, (pad, pad)
    return jax.lax.reduce_window(x, np.array(-np.inf, x.dtype), jax.lax.max, dims, strides, pads)


# The original ST-GCN's `weights_init` (`processor/recognition.py` of st-gcn): conv weights N(0, 0.02), zero biases.
NORMAL_INIT_STD = 0.02


def _conv_weight(rngs, shape, *, fan_in, fan_out, init):
    if init == "torch":  # PYSKL never calls sub-module init_weights: PyTorch defaults apply.
        return torch_uniform_init(rngs.params(), shape, fan_in)
    if init == "kaiming_normal":  # MMAction2 0.x: kaiming_init(mode='fan_out', nonlinearity='relu').
        return math.sqrt(2.0 / fan_out) * random_normal(rngs.params(), shape, jnp.float32)
    if init == "normal":
        return NORMAL_INIT_STD * random_normal(rngs.params(), shape, jnp.float32)
    raise ValueError(f"unknown init {init!r}")


def _conv_bias(rngs, cout, *, fan_in, init):
    if init == "torch":
        return torch_uniform_init(rngs.params(), (cout,), fan_in)
    return jnp.zeros((cout,), jnp.float32)
