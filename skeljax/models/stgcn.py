"""PYSKL's STGCN backbone, GCN head and recognizer in Flax NNX (`pyskl/models/gcns/stgcn.py`, `utils/gcn_utils.py`).

One network serves four families: ST-GCN++ (`gcn_adaptive='init', gcn_with_res=True, tcn_type='mstcn'`, graph
mode 'spatial'), PYSKL ST-GCN (defaults, graph mode 'stgcn_spatial') and MMAction2 0.x's ST-GCN, which is PYSKL
ST-GCN with the 0.x graph edges; the ST-GCN authors' own network (`net/st_gcn.py` of st-gcn) is the 0.x one with
its own checkpoint keys and initialisation (`stgcn_original_spec`). Submodules are named for what they are; the
PyTorch key names of each family (PYSKL, MMAction2 1.x and 0.x, the original release) are mapped to these state
paths in `convert.py` only.
Input layout (N, M, T, V, C) as in PYSKL. Internally activations are joints-first, (V, N*M, T, C): every 1x1
convolution is then one matmul over the channels and the graph aggregation one matmul over the joints, with no
transposes in between (XLA on CPU spent about a third of the time on transposes with (N*M, T, V, C)).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from skeljax import layouts
from skeljax.models import graph as graph_lib
from skeljax.models import layers
from skeljax.models.layers import (
    BatchNorm,
    Buffer,
    Conv1x1,
    Linear,
    TemporalConv,
    dense,
    graph_dot,
    joint_affine,
    joint_batch_norm,
    linear_bn,
    matmul_dtype,
    max_pool_time,
)

# ST-GCN++ multi-scale temporal branches (PYSKL mstcn defaults): 3x1 convs with these dilations, a 3x1 max
# pool, and a 1x1 conv.
MSTCN_DILATIONS = (1, 2, 3, 4)
MSTCN_KERNEL = 3
MSTCN_MAX_POOL = 3
COMPUTE_DTYPES = ("float32", "bfloat16")
# Internal activation layout (V, B, T, C): samples along axis 1, time along axis 2.
B_AXIS, T_AXIS = 1, 2
ADAPTIVE = (None, "init", "offset", "importance")
# Code bases whose network is an existing family's computation under other checkpoint keys (ModelSpec.origin).
ORIGINS = (None, "stgcn_original")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a recognizer; stored as JSON beside skeljax checkpoints."""

    num_classes: int
    layout: str = "nturgb+d"  # a name in layouts.BUILTIN, or layouts.GRAPH_IN_WEIGHTS (A from the weights)
    graph_mode: str = "spatial"
    num_joints: int | None = None  # only for custom layouts whose A comes from a checkpoint
    in_channels: int = 3
    base_channels: int = 64
    ch_ratio: int = 2
    num_person: int = 2
    num_stages: int = 10
    inflate_stages: tuple[int, ...] = (5, 8)
    down_stages: tuple[int, ...] = (5, 8)
    data_bn_type: str = "VC"
    gcn_adaptive: str | None = "importance"
    gcn_with_res: bool = False
    tcn_type: str = "unit_tcn"
    tcn_dropout: float = 0.0
    head_dropout: float = 0.0
    init: str = "torch"  # 'torch' (PYSKL), 'kaiming_normal' (MMAction2 0.x), 'normal' (original ST-GCN)
    bn_group: int | None = 16  # samples per BatchNorm statistics group in training (one PYSKL GPU)
    origin: str | None = None  # 'stgcn_original': the ST-GCN authors' release (its keys); None: by architecture

    def __post_init__(self):
        if self.gcn_adaptive not in ADAPTIVE:
            raise ValueError(f"gcn_adaptive must be one of {ADAPTIVE}, got {self.gcn_adaptive!r}")
        if self.tcn_type not in ("unit_tcn", "mstcn"):
            raise ValueError(f"tcn_type must be 'unit_tcn' or 'mstcn', got {self.tcn_type!r}")
        if self.data_bn_type not in ("VC", "MVC", None):
            raise ValueError(f"data_bn_type must be 'VC', 'MVC' or None, got {self.data_bn_type!r}")
        if self.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, got {self.origin!r}")

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["origin"] is None:  # files of the other families stay as they were before the field existed
            del d["origin"]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelSpec:
        d = dict(d)
        for k in ("inflate_stages", "down_stages"):
            if k in d:
                d[k] = tuple(d[k])
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown model spec fields {sorted(unknown)}")
        return cls(**d)

    @property
    def family(self) -> str:
        """'stgcn_original', 'mmaction0x', 'stgcnpp' or 'stgcn' (PYSKL ST-GCN, vanilla included)."""
        if self.origin is not None:
            return self.origin
        if self.graph_mode == "mmaction_spatial":
            return "mmaction0x"
        return "stgcnpp" if self.tcn_type == "mstcn" else "stgcn"

    @property
    def graph_in_weights(self) -> bool:
        """Whether the adjacency is stored with the weights (custom layouts, converted checkpoints of unknown V)."""
        return self.layout == layouts.GRAPH_IN_WEIGHTS

    def graph(self) -> np.ndarray:
        if self.graph_in_weights:
            raise ValueError(
                "this model's graph came from a checkpoint (unknown layout): it cannot be regenerated; "
                "load it from the checkpoint or give a known layout"
            )
        return graph_lib.adjacency(self.layout, self.graph_mode)


# Named families as in the reference configs (PYSKL's configs/stgcn++/ and configs/stgcn/, MMAction2 0.x's configs/skeleton/stgcn/).
def stgcnpp_spec(num_classes: int, layout: str = "nturgb+d", **kw) -> ModelSpec:
    return ModelSpec(num_classes, layout, "spatial", gcn_adaptive="init", gcn_with_res=True, tcn_type="mstcn", **kw)


def stgcn_pyskl_spec(num_classes: int, layout: str = "nturgb+d", **kw) -> ModelSpec:
    return ModelSpec(num_classes, layout, "stgcn_spatial", **kw)


def mmaction0x_spec(num_classes: int, layout: str = "coco", **kw) -> ModelSpec:
    graph = layouts.get(layout).mmaction_graph
    if graph is None:
        raise ValueError(f"layout {layout!r} has no MMAction2 0.x graph")
    return ModelSpec(num_classes, graph, "mmaction_spatial", init="kaiming_normal", **kw)


# The original release's graphs (`net/utils/graph.py` of st-gcn, strategy 'spatial', max_hop 1, dilation 1): the
# data layout -> the graph layout with the original edges.
ORIGINAL_GRAPHS = {"openpose": "openpose", "nturgb+d": "ntu-rgb+d", "ntu-rgb+d": "ntu-rgb+d"}


def stgcn_original_spec(num_classes: int, layout: str = "openpose", **kw) -> ModelSpec:
    """The ST-GCN authors' network (`net/st_gcn.py`): MMAction2 0.x's computation, the original keys and init."""
    if layout not in ORIGINAL_GRAPHS:
        raise ValueError(f"the original ST-GCN has graphs for {sorted(ORIGINAL_GRAPHS)}, not {layout!r}")
    kw.setdefault("init", "normal")
    return ModelSpec(num_classes, ORIGINAL_GRAPHS[layout], "mmaction_spatial", origin="stgcn_original", **kw)


class PointwiseConvBN(nnx.Module):
    """A strided 1x1 convolution and BatchNorm: the projection on a residual path whose shape changes."""

    def __init__(self, cin, cout, *, rngs, stride=1, bn_group=None, init="torch"):
        self.conv = Conv1x1(cin, cout, rngs=rngs, stride=stride, init=init)
        self.bn = BatchNorm(cout, group_size=bn_group)

    def __call__(self, x):
        """(V, B, T, C_in) -> (V, B, T', C_out); an eval-mode BN is folded into the matmul."""
        conv = self.conv
        return linear_bn(conv.strided(x, T_AXIS), conv.weight[...], conv.bias[...], self.bn, B_AXIS)


class GraphConv(nnx.Module):
    """Spatial graph convolution: 1x1 conv to K subsets, aggregation over the graph, BN, (+ residual), ReLU.

    The graph `A` (K, V, V) is learned as is ('init'), fixed, or fixed with a learned per-edge `edge_importance`
    (multiplied) or `edge_offset` (added).
    """

    def __init__(self, cin, cout, A: np.ndarray, *, adaptive, with_res, rngs, bn_group=None, init="torch"):
        self.adaptive = adaptive
        A = jnp.asarray(A, jnp.float32)
        self.A = nnx.Param(A) if adaptive == "init" else Buffer(A)
        if adaptive == "importance":
            self.edge_importance = nnx.Param(jnp.ones_like(A))
        elif adaptive == "offset":
            self.edge_offset = nnx.Param(layers.random_uniform(rngs.params(), A.shape, jnp.float32, -1e-6, 1e-6))
        self.conv = Conv1x1(cin, cout * A.shape[0], rngs=rngs, init=init)
        self.bn = BatchNorm(cout, group_size=bn_group)
        self.res_kind = _residual_kind(with_res, cin == cout)
        if self.res_kind == "conv":
            self.residual = PointwiseConvBN(cin, cout, rngs=rngs, bn_group=bn_group, init=init)
        self.cout = cout

    def graph(self) -> jax.Array:
        A = self.A[...]
        if self.adaptive == "importance":
            return A * self.edge_importance[...]
        if self.adaptive == "offset":
            return A + self.edge_offset[...]
        return A

    def __call__(self, x):
        """(V, B, T, C_in) -> (V, B, T, C_out)."""
        res = _residual(self, x)
        A = self.graph()
        K, V, W = A.shape
        cin, cout = x.shape[-1], self.cout
        # Aggregate over the graph first (C_in <= C_out here, so it is never more work), as one matmul over the
        # joints: z[k, w] = sum_v A[k, v, w] x[v].
        z = graph_dot(A.transpose(0, 2, 1).reshape(K * W, V), x.reshape(V, -1))
        z = z.reshape((K, -1, cin))
        # conv output channel k * C_out + c (subset-major, as PyTorch's view) -> weight (K, C_in, C_out).
        w = self.conv.weight[...].reshape(cin, K, cout).transpose(1, 0, 2)
        b = self.conv.bias[...].reshape(K, cout)
        # sum_v A[k, v, w] * bias[k] is what the conv bias becomes after aggregation.
        bias = jnp.einsum("kvw,kc->wc", A, b)[:, None, None, :]
        bn = self.bn
        if bn.use_running_average:
            scale, shift = bn.affine()
            w, bias, bn = w * scale, bias * scale + shift, None
        y = sum(dense(z[k], w[k]) for k in range(K))
        y = y.reshape(x.shape[:-1] + (cout,)) + bias
        if bn is not None:
            y = bn(y, batch_axis=B_AXIS)
        return jax.nn.relu(y + res)


def _residual_kind(enabled: bool, same_shape: bool) -> str:
    """'zero' (no residual), 'identity' or 'conv' (a PointwiseConvBN projection)."""
    if not enabled:
        return "zero"
    return "identity" if same_shape else "conv"


def _residual(module, x):
    """The residual term of `module` (a GraphConv or STGCNBlock) for input x."""
    if module.res_kind == "zero":
        return 0
    return x if module.res_kind == "identity" else module.residual(x)


class TemporalConvBN(nnx.Module):
    """ST-GCN's temporal unit: (k x 1) convolution over time + BN + dropout; no activation."""

    def __init__(self, cin, cout, kernel_size=9, *, rngs, stride=1, dropout=0.0, bn_group=None, init="torch"):
        self.conv = TemporalConv(cin, cout, kernel_size, rngs=rngs, stride=stride, init=init)
        self.bn = BatchNorm(cout, group_size=bn_group)
        self.drop = nnx.Dropout(dropout, rngs=rngs) if dropout else None

    def __call__(self, x):
        """(V, B, T, C) -> (V, B, T', C'): one matmul (shifted copies side by side), eval BN folded into it."""
        conv = self.conv
        w = conv.weight[...].reshape(-1, conv.weight.shape[-1])
        x = linear_bn(conv.im2col(x, T_AXIS), w, conv.bias[...], self.bn, B_AXIS)
        if self.drop is not None:
            x = self.drop(x)
        return x


class ReducedBranch(nnx.Module):
    """Parameters of one MultiScaleTemporalConv branch: 1x1 `reduce` conv, `bn` (then ReLU), and for the dilated
    branches a temporal `conv`; MultiScaleTemporalConv computes all branches at once."""

    def __init__(self, cin, width, *, rngs, bn_group=None, init="torch", dilation=None, stride=1):
        self.reduce = Conv1x1(cin, width, rngs=rngs, init=init)
        self.bn = BatchNorm(width, group_size=bn_group)
        if dilation is not None:
            self.conv = TemporalConv(width, width, MSTCN_KERNEL, rngs=rngs, stride=stride, dilation=dilation, init=init)


class MultiScaleTemporalConv(nnx.Module):
    """ST-GCN++'s multi-scale temporal convolution (PYSKL's mstcn).

    Branches, concatenated in this order: `dilated` (1x1 reduce, BN, ReLU, 3x1 conv with dilation 1..4),
    `max_pool` (1x1 reduce, BN, ReLU, 3x1 max pool) and `pointwise` (a strided 1x1 conv); then `transform_bn`,
    ReLU, `transform_conv` (1x1) and `bn`.
    """

    def __init__(self, cin, cout, *, rngs, stride=1, dropout=0.0, bn_group=None, init="torch"):
        nb = len(MSTCN_DILATIONS) + 2
        mid = cout // nb
        widths = [cout - mid * (nb - 1)] + [mid] * (nb - 1)  # the first branch takes the remainder
        kw = {"rngs": rngs, "bn_group": bn_group, "init": init}
        self.dilated = nnx.List(
            [ReducedBranch(cin, w, dilation=d, stride=stride, **kw) for w, d in zip(widths, MSTCN_DILATIONS)]
        )
        self.max_pool = ReducedBranch(cin, widths[-2], **kw)
        self.pointwise = Conv1x1(cin, widths[-1], rngs=rngs, stride=stride, init=init)
        self.stride = stride
        self.transform_bn = BatchNorm(cout, group_size=bn_group)
        self.transform_conv = Conv1x1(cout, cout, rngs=rngs, init=init)
        self.bn = BatchNorm(cout, group_size=bn_group)
        self.drop = nnx.Dropout(dropout, rngs=rngs) if dropout else None

    def __call__(self, x):
        """(V, B, T, C) -> (V, B, T', C_out).

        Layout of the work (measured on a 2-core CPU, where it halved this module's time): the six branch 1x1
        convs share their input and are one matmul; the branch outputs are concatenated once. Each dilated
        branch's temporal conv is one small matmul, arranged differently for inference and training:
        - eval: to its k taps, which one fused elementwise pass shifts and sums (2-5% faster inference than
          the training form);
        - training: from its k shifted inputs side by side (im2col). The gradient of the taps form is the output
          gradient shifted back into k taps, and XLA on CPU fused the transform BatchNorm's backward into that
          pass, evaluating it k times per element at strided channel slices: a quarter of this module's backward.
          This form's gradient goes straight into matmuls (train step 1.05-1.10x faster, in-process A/B).
        In eval mode every BatchNorm is folded: the branch BNs into the shared matmul, the transform BN into the
        temporal convs and the 1x1 branch (and applied after the max pool, which it does not commute with for
        negative scales), the final BN into the transform conv.
        """
        s = self.stride
        normed = list(self.dilated) + [self.max_pool]  # the branches with a BN after their 1x1 conv
        first = [br.reduce for br in normed] + [self.pointwise]
        offs = np.cumsum([0] + [conv.weight.shape[-1] for conv in first])
        nn_ = int(offs[len(normed)])
        evaluating = self.transform_bn.use_running_average
        w = jnp.concatenate([conv.weight[...] for conv in first], -1)
        b = jnp.concatenate([conv.bias[...] for conv in first], -1)
        bns = [br.bn for br in normed]
        if evaluating:  # fold the branch BNs into the shared matmul
            scale, shift = joint_affine(bns)
            w = w.at[:, :nn_].multiply(scale)
            b = b.at[:nn_].set(b[:nn_] * scale + shift)
        h = dense(x, w) + b
        hn = h[..., :nn_]
        hn = jax.nn.relu(hn if evaluating else joint_batch_norm(bns, hn, B_AXIS))
        if evaluating:  # transform BN as a per-channel affine, folded into each branch below
            s2, b2 = self.transform_bn.affine()
        else:
            s2, b2 = jnp.ones((int(offs[-1]),), jnp.float32), jnp.zeros((int(offs[-1]),), jnp.float32)
        t_out = (x.shape[T_AXIS] - 1) // s + 1
        outs = []
        for i, br in enumerate(self.dilated):
            o, e = int(offs[i]), int(offs[i + 1])
            conv = br.conv
            y = dilated_conv(hn[..., o:e], conv, conv.weight[...] * s2[o:e], taps_first=evaluating)
            outs.append(y + conv.bias[...] * s2[o:e] + b2[o:e])
        o, e = int(offs[-3]), int(offs[-2])
        outs.append(max_pool_time(hn[..., o:e], MSTCN_MAX_POOL, s, time_axis=T_AXIS) * s2[o:e] + b2[o:e])
        o, e = int(offs[-2]), int(offs[-1])
        outs.append(_time_shift(h[..., o:e], 0, s, t_out) * s2[o:e] + b2[o:e])
        y = jnp.concatenate(outs, axis=-1)
        y = jax.nn.relu(y if evaluating else self.transform_bn(y, batch_axis=B_AXIS))
        y = linear_bn(y, self.transform_conv.weight[...], self.transform_conv.bias[...], self.bn, B_AXIS)
        if self.drop is not None:
            y = self.drop(y)
        return y


def dilated_conv(x: jax.Array, conv: TemporalConv, w: jax.Array, *, taps_first: bool) -> jax.Array:
    """(V, B, T, C_in) -> (V, B, T', C_out): the (k x 1) convolution over time of `conv` (its stride, dilation and
    padding) with weight `w` (k, C_in, C_out), no bias, as one matmul: to the k taps, which are then shifted and
    summed (`taps_first`), or from the k shifted inputs side by side (im2col). MultiScaleTemporalConv says which
    one it uses when."""
    k, cin, cout = w.shape
    if not taps_first:
        return dense(conv.im2col(x, T_AXIS), w.reshape(k * cin, cout))
    t_out = conv.out_length(x.shape[T_AXIS])
    taps = dense(x, w.transpose(1, 0, 2).reshape(cin, k * cout)).reshape(x.shape[:-1] + (k, cout))
    shifts = [j * conv.dilation - conv.padding for j in range(k)]
    return sum(_time_shift(taps[..., j, :], shift, conv.stride, t_out) for j, shift in enumerate(shifts))


def _time_shift(a, offset, stride, t_out):
    """out[t] = a[stride * t + offset] along time, zero where that index falls outside a."""
    T = a.shape[T_AXIS]
    lo, hi = max(0, -offset), max(0, offset + (t_out - 1) * stride + 1 - T)
    if lo or hi:
        pad = [(0, 0)] * a.ndim
        pad[T_AXIS] = (lo, hi)
        a = jnp.pad(a, pad)
    start = offset + lo
    return jax.lax.slice_in_dim(a, start, start + (t_out - 1) * stride + 1, stride, axis=T_AXIS)


class STGCNBlock(nnx.Module):
    """Graph convolution -> temporal unit -> + residual -> ReLU."""

    def __init__(self, cin, cout, A, *, stride=1, residual=True, spec: ModelSpec, tcn_dropout=0.0, rngs):
        g = spec.bn_group
        self.spatial = GraphConv(
            cin, cout, A, adaptive=spec.gcn_adaptive, with_res=spec.gcn_with_res, rngs=rngs, bn_group=g, init=spec.init
        )
        if spec.tcn_type == "mstcn":
            self.temporal = MultiScaleTemporalConv(
                cout, cout, rngs=rngs, stride=stride, dropout=tcn_dropout, bn_group=g, init=spec.init
            )
        else:
            self.temporal = TemporalConvBN(
                cout, cout, 9, rngs=rngs, stride=stride, dropout=tcn_dropout, bn_group=g, init=spec.init
            )
        self.res_kind = _residual_kind(residual, cin == cout and stride == 1)
        if self.res_kind == "conv":
            self.residual = PointwiseConvBN(cin, cout, rngs=rngs, stride=stride, bn_group=g, init=spec.init)

    def __call__(self, x):
        return jax.nn.relu(self.temporal(self.spatial(x)) + _residual(self, x))


class STGCN(nnx.Module):
    """The STGCN backbone: data BN over (V, C) (or (M, V, C)), then the stack of ST-GCN blocks."""

    def __init__(self, spec: ModelSpec, A: np.ndarray | None = None, *, rngs: nnx.Rngs):
        A = spec.graph() if A is None else np.asarray(A, np.float32)
        V = A.shape[-1]
        M, C = spec.num_person, spec.in_channels
        group = spec.bn_group
        if spec.data_bn_type == "MVC":
            self.data_bn = BatchNorm((M, V, C), group_size=group)
        elif spec.data_bn_type == "VC":
            self.data_bn = BatchNorm((V, C), group_size=group and group * M)
        self.data_bn_type = spec.data_bn_type
        bspec = dataclasses.replace(spec, bn_group=group and group * M)
        blocks = []
        if spec.in_channels != spec.base_channels:
            blocks.append(STGCNBlock(C, spec.base_channels, A, residual=False, spec=bspec, rngs=rngs))
        inflate_times, cin = 0, spec.base_channels
        start = 2 if spec.in_channels != spec.base_channels else 1
        for i in range(start, spec.num_stages + 1):
            stride = 2 if i in spec.down_stages else 1
            inflate_times += i in spec.inflate_stages
            cout = int(spec.base_channels * spec.ch_ratio**inflate_times + 1e-4)
            blocks.append(STGCNBlock(cin, cout, A, stride=stride, spec=bspec, tcn_dropout=spec.tcn_dropout, rngs=rngs))
            cin = cout
        self.blocks = nnx.List(blocks)
        self.out_channels = cin
        self.remat = False  # Recognizer.set_remat

    def __call__(self, x: jax.Array, compute_dtype: str = "float32") -> jax.Array:
        """(N, M, T, V, C) -> float32 features in the internal layout (V, N*M, T', C_out).

        `compute_dtype` is the dtype of the matrix-product operands (accumulation and everything else: float32).
        """
        if compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}, got {compute_dtype!r}")
        N, M, T, V, C = x.shape
        x = x.astype(jnp.float32)
        if self.data_bn_type == "MVC":
            x = self.data_bn(x.transpose(0, 2, 1, 3, 4)).transpose(0, 2, 1, 3, 4)
        x = x.reshape(N * M, T, V, C)
        if self.data_bn_type == "VC":
            x = self.data_bn(x)
        x = x.transpose(2, 0, 1, 3)
        with matmul_dtype(compute_dtype):
            for block in self.blocks:
                x = _rematerialised(block, x) if self.remat and _training(block) else block(x)
        return x


def _training(block: STGCNBlock) -> bool:
    return not block.spatial.bn.use_running_average


def _rematerialised(block: STGCNBlock, x: jax.Array) -> jax.Array:
    """block(x) keeping only its input and parameters for the backward pass, which recomputes the block's forward
    (same dropout masks: the RNG state is an input); BatchNorm statistics and RNG counters are updated as by
    block(x)."""
    graphdef, params, rest = nnx.split(block, nnx.Param, ...)

    def forward(params, rest, x):
        module = nnx.merge(graphdef, params, rest, copy=True)
        y = module(x)
        return y, nnx.state(module, nnx.Not(nnx.Param))

    y, updated = layers.recompute_in_backward(forward, params, rest, x)
    nnx.update(block, updated)
    return y


class GCNHead(nnx.Module):
    """Mean over (T', V) per person, mean over persons (zero-padded ones included), dropout, linear classifier."""

    def __init__(
        self, num_classes: int, in_channels: int, *, rngs: nnx.Rngs, dropout: float = 0.0, init_std: float = 0.01
    ):
        self.fc = Linear(in_channels, num_classes, rngs=rngs, init_std=init_std)
        self.drop = nnx.Dropout(dropout, rngs=rngs) if dropout else None

    def __call__(self, feats: jax.Array, num_person: int, return_features: bool = False):
        """Backbone features (V, N*M, T', C) -> logits (N, classes) [, pooled features (N, C)], float32."""
        pooled = feats.mean(axis=(0, 2))
        pooled = pooled.reshape(-1, num_person, pooled.shape[-1]).mean(axis=1)
        x = self.drop(pooled) if self.drop is not None else pooled
        logits = self.fc(x)
        return (logits, pooled) if return_features else logits


class Recognizer(nnx.Module):
    """Backbone + head: `model(x)` maps (N, M, T, V, C) float32 to logits (N, num_classes)."""

    def __init__(self, spec: ModelSpec, A: np.ndarray | None = None, *, rngs: nnx.Rngs | None = None):
        rngs = rngs if rngs is not None else nnx.Rngs(0)
        self.spec = spec
        self.backbone = STGCN(spec, A, rngs=rngs)
        self.head = GCNHead(
            spec.num_classes,
            self.backbone.out_channels,
            rngs=rngs,
            dropout=spec.head_dropout,
            init_std=layers.NORMAL_INIT_STD if spec.init == "normal" else 0.01,
        )
        self.compute_dtype = "float32"

    def __call__(self, x: jax.Array, *, return_features: bool = False, compute_dtype: str | None = None):
        """Logits (N, classes), float32; `compute_dtype` overrides the model's (see `set_compute_dtype`)."""
        if x.ndim != 5:
            raise ValueError(f"expected input (N, M, T, V, C), got shape {x.shape}")
        feats = self.backbone(x, compute_dtype or self.compute_dtype)
        return self.head(feats, x.shape[1], return_features)

    @property
    def num_joints(self) -> int:
        """V, the joint count of the model's graph."""
        return int(self.backbone.blocks[0].spatial.A.shape[-1])

    def set_remat(self, enabled: bool) -> None:
        """In training, keep only each block's input for the backward pass and recompute the block there: about
        a tenth of the activation memory for one more forward pass (docs/benchmarks.md); logits and gradients
        are the same computation."""
        self.backbone.remat = bool(enabled)

    def set_compute_dtype(self, dtype: str) -> None:
        """'float32' or 'bfloat16' matrix-product operands (float32 accumulation); activations, parameters, BN
        statistics and logits stay float32."""
        if dtype not in COMPUTE_DTYPES:
            raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}, got {dtype!r}")
        self.compute_dtype = dtype


def count_params(model: nnx.Module) -> int:
    return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param)))


def abstract_recognizer(spec: ModelSpec, A: np.ndarray | None = None) -> Recognizer:
    """A Recognizer for `spec` whose variables hold only shapes and dtypes (`nnx.eval_shape`), for a loader to fill.

    Nothing is initialised, computed or compiled: the random initialisation of a concrete build runs ~60 small eager
    XLA programs on a CPU (seconds) only for a checkpoint to overwrite them. The loader sets every parameter, BN
    statistic and buffer, then `seed_rng_streams` the dropout streams (never part of checkpoints).
    """
    with layers.shapes_only():  # zeros for the random initialisers: nothing of them to trace
        return nnx.eval_shape(lambda: Recognizer(spec, A=A, rngs=_host_counted_rngs()))


def _host_counted_rngs(seed: int = 0) -> nnx.Rngs:
    """nnx.Rngs whose draw counters are NumPy scalars. Under tracing, each draw's counter update (`count[...] += 1`)
    compares the traced value's sharding, which JAX finds by scanning everything traced so far: quadratic, 3-4 s of
    the ST-GCN++ build's 251 draws on a 2-core CPU. On a host counter the update is plain NumPy (0.8 s in all)."""
    rngs = nnx.Rngs(seed)
    for _, count in nnx.to_flat_state(nnx.state(rngs, nnx.RngCount)):
        count.set_value(np.zeros(count.shape, np.uint32))
    return rngs


def seed_rng_streams(model: nnx.Module, seed: int = 0) -> None:
    """Give the dropout streams of an abstractly built model concrete state: key i is the raw threefry key
    (seed, i), counts start at 0. Built from host arrays (`wrap_key_data`, `device_put`), so nothing is compiled."""
    for i, (_, var) in enumerate(nnx.to_flat_state(nnx.state(model, nnx.RngState))):
        if isinstance(var, nnx.RngKey):
            var.set_value(jax.random.wrap_key_data(np.array([seed, i], np.uint32), impl="threefry2x32"))
        else:
            var.set_value(jax.device_put(np.zeros(var.shape, var.dtype)))
