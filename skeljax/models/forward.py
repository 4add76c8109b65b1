"""The one compiled forward: eval-mode model, clips of a batch of samples -> per-sample class scores.

Validation, test, prediction and the benchmark call `make_forward`; export traces `forward_rows`, the same
model application without the clip axis (its artifacts take (N, M, T, V, C) and return logits).
Clip averaging follows `average_clip` of `pyskl/models/recognizers/base.py` and MMAction2 0.x's
`mmaction/models/recognizers/base.py`: 'prob' (PYSKL) is the mean over clips of the softmax probabilities,
'score' (MMAction2 0.x) the mean over clips of the raw logits.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh

from skeljax import sharding

AVERAGES = ("prob", "score")


def split_eval(model: nnx.Module):
    """(graphdef, params, BN statistics, other state) of a model, switched to eval mode."""
    model.eval()
    return nnx.split(model, nnx.Param, nnx.BatchStat, ...)


def forward_rows(graphdef, params, batch_stats, rest, x, features: bool = False):
    """Model rows (R, M, T, V, C) -> logits (R, K) float32 [, pooled features (R, D)]."""
    model = nnx.merge(graphdef, params, batch_stats, rest, copy=True)
    out = model(x, return_features=features)
    logits, feats = out if features else (out, None)
    logits = logits.astype(jnp.float32)
    return (logits, feats) if features else logits


def check_average(average: str) -> str:
    if average not in AVERAGES:
        raise ValueError(f"average must be 'prob' or 'score', got {average!r}")
    return average


def rows_per_pass(mesh: Mesh) -> int | None:
    """How many model rows (clips) the compiled forward runs through the network at a time; None: all of them.

    On one CPU device, one: a clip's activations (~1.3 MB per tensor at T=100) stay in the CPU's cache from layer to
    layer, where a batch of 16 (~20 MB per tensor) goes through memory. On a 2-core EPYC that made batch-16
    inference 1.3-1.4x faster (docs/benchmarks.md). GPUs and TPUs want the whole batch in each kernel, and a batch
    sharded over several devices is split by the mesh already.
    """
    devices = mesh.devices.flat
    return 1 if mesh.devices.size == 1 and devices[0].platform == "cpu" else None


def apply_in_passes(apply, rows: jax.Array, per_pass: int | None):
    """`apply(rows)` over the leading axis `per_pass` rows at a time, in a compiled loop; outputs concatenated."""
    n = rows.shape[0]
    if per_pass is None or n <= per_pass or n % per_pass:
        return apply(rows)
    out = jax.lax.map(apply, rows.reshape((n // per_pass, per_pass) + rows.shape[1:]))
    return jax.tree.map(lambda a: a.reshape((n,) + a.shape[2:]), out)


def forward_in_passes(
    graphdef, rest, params, batch_stats, keypoint, *, average: str, features: bool, per_pass: int | None
):
    """keypoint (B, clips, M, T, V, C) -> per-sample scores (B, K) [, clip-mean pooled features (B, D)]."""
    b, nc = keypoint.shape[:2]
    rows = keypoint.reshape((b * nc,) + keypoint.shape[2:])
    out = apply_in_passes(lambda x: forward_rows(graphdef, params, batch_stats, rest, x, features), rows, per_pass)
    logits, feats = out if features else (out, None)
    logits = logits.reshape(b, nc, -1)
    scores = jax.nn.softmax(logits, axis=-1).mean(axis=1) if average == "prob" else logits.mean(axis=1)
    return (scores, feats.reshape(b, nc, -1).mean(axis=1)) if features else scores


@functools.cache
def jitted_forward(mesh: Mesh, average: str, features: bool):
    """One jit per (mesh, average, features); it compiles once per architecture (graphdef) and input shape."""
    repl, data = sharding.replicated(mesh), sharding.data_sharding(mesh)
    fn = functools.partial(forward_in_passes, average=average, features=features, per_pass=rows_per_pass(mesh))
    return jax.jit(
        fn,
        static_argnums=0,
        in_shardings=(repl, repl, repl, data),
        out_shardings=(data, data) if features else data,
        compiler_options=sharding.compiler_options(mesh),
    )


@dataclasses.dataclass(frozen=True)
class Forward:
    """`forward(params, batch_stats, keypoint)`: the compiled forward with a model's graph and other state bound."""

    jitted: Any
    graphdef: Any
    rest: Any

    def __call__(self, params, batch_stats, keypoint):
        return self.jitted(self.graphdef, self.rest, params, batch_stats, keypoint)

    def lower(self, params, batch_stats, keypoint):
        """`jax.jit(...).lower` of the same call (compile time and memory analysis in the benchmark)."""
        return self.jitted.lower(self.graphdef, self.rest, params, batch_stats, keypoint)


def make_forward(graphdef, rest, mesh: Mesh, average: str = "prob", features: bool = False) -> Forward:
    """jit(params, batch_stats, keypoint (B, clips, M, T, V, C)) -> per-sample scores (B, K) float32.

    Parameters and statistics are replicated over `mesh`, the batch is sharded over its 'data' axis (B must be a
    multiple of the device count). With `features`, also the pooled features averaged over clips (B, D).
    """
    return Forward(jitted_forward(mesh, check_average(average), bool(features)), graphdef, rest)


def model_forward(model: nnx.Module, mesh: Mesh, average: str = "prob", features: bool = False):
    """(forward, params, batch_stats) of a model in eval mode, its weights replicated on `mesh`."""
    graphdef, params, stats, rest = split_eval(model)
    forward = make_forward(graphdef, rest, mesh, average, features)
    return forward, sharding.put_replicated(params, mesh), sharding.put_replicated(stats, mesh)
