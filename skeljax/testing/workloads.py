"""The work the benchmarks time, built the way the package builds it: the eval-mode forward of evaluation and
prediction, the trainer's compiled step, and the training input pipeline (`scripts/benchmark.py`,
`scripts/compile_probe.py`, `scripts/benchmark_pipeline.py`)."""

from __future__ import annotations

import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from skeljax import sharding
from skeljax.data import input_pipeline
from skeljax.data.input_pipeline import make_train_iterator, sample_seed
from skeljax.data.pipelines import make_pipeline
from skeljax.data.tfds_builders import load_source
from skeljax.models.forward import model_forward
from skeljax.models.stgcn import Recognizer, stgcnpp_spec
from skeljax.train.compile_step import compile_train_step, memory_plan
from skeljax.train.optim import make_optimizer
from skeljax.train.state import TrainParts
from skeljax.train.step import jit_train_step, make_train_step

NUM_CLASSES = 60  # NTU-60


def stgcnpp(compute_dtype: str) -> Recognizer:
    """ST-GCN++ for NTU-60 (seed 0) computing in `compute_dtype`."""
    model = Recognizer(stgcnpp_spec(NUM_CLASSES), rngs=nnx.Rngs(0))
    if compute_dtype != "float32":
        model.set_compute_dtype(compute_dtype)
    return model


def skeljax_infer(x_shape, compute_dtype):
    """(call(keypoint (B, 1, M, T, V, C)) -> scores, compile seconds, XLA memory analysis, compiled) for eval-mode
    inference: the forward that evaluation and prediction run (`skeljax.models.forward`), one clip per sample."""
    mesh = sharding.make_mesh()
    forward, params, stats = model_forward(stgcnpp(compute_dtype), mesh, "prob")
    clips = jax.ShapeDtypeStruct((x_shape[0], 1) + tuple(x_shape[1:]), jnp.float32)
    t = time.perf_counter()
    compiled = forward.lower(params, stats, clips).compile()
    compile_s = time.perf_counter() - t

    def call(keypoint):
        return compiled(forward.rest, params, stats, keypoint)

    return call, compile_s, xla_memory(compiled), compiled


def skeljax_train(x_shape, compute_dtype, remat="auto"):
    """(step(batch) -> metrics, batch sharding, compile seconds, memory, compiled, remat chosen): the trainer's own
    jitted step (`skeljax.train.make_train_step` / `jit_train_step`: forward, backward, SGD with Nesterov momentum
    and weight decay, donated state) at a constant learning rate, compiled as the trainer compiles it
    (`skeljax.train.compile_step`, which decides `remat` = config.remat); `step` keeps the updated state for the
    next call."""
    schedule = optax.constant_schedule(0.1)
    tx = make_optimizer(schedule, momentum=0.9, nesterov=True, weight_decay=5e-4)
    parts = TrainParts(stgcnpp(compute_dtype), tx)
    mesh = sharding.make_mesh()
    batch = {
        "keypoint": jax.ShapeDtypeStruct((x_shape[0], 1) + tuple(x_shape[1:]), jnp.float32),
        "label": jax.ShapeDtypeStruct(x_shape[:1], jnp.int32),
    }
    state = sharding.put_replicated(parts.state, mesh)
    built = compile_train_step(
        lambda r: jit_train_step(make_train_step(parts, tx, schedule, seed=0, remat=r), mesh), remat, state, batch
    )
    compiled = built.compiled
    box = [state]

    def step(arrays):
        box[0], metrics = compiled(box[0], arrays)
        return metrics

    return step, input_pipeline.data_sharding(mesh), built.seconds, xla_memory(compiled), compiled, built.remat


def xla_memory(compiled) -> dict | None:
    """XLA's memory plan per device (`skeljax.train.compile_step.memory_plan`) as the benchmarks' JSON keys (MB)."""
    try:
        plan = memory_plan(compiled)
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if plan is None:
        return None
    # alias: outputs written into donated arguments; total: arguments plus what a call allocates beyond them
    keys = {"temp_mb": plan.temp, "argument_mb": plan.argument, "output_mb": plan.output, "alias_mb": plan.alias}
    return {**keys, "total_mb": plan.argument + plan.new}


# ------------------------------------------------------------------------------------------------------------------
# The training input pipeline
# ------------------------------------------------------------------------------------------------------------------


def bare_rate(source, transform, n: int) -> float:
    """Samples/s of read + transform in a plain loop (no grain)."""
    transform(source[0], seed=0)  # warm-up
    t = time.perf_counter()
    for i in range(n):
        transform(source[i % len(source)], seed=sample_seed(0, 0, i))
    return n / (time.perf_counter() - t)


def iterator_stats(source, transform, batch: int, steps: int, workers: int, mesh) -> dict[str, float]:
    """Seconds to the first batch of a `TrainIterator`, then over the following ``steps`` batches: samples/s and
    the CPU time of this (the trainer's) process per batch, all threads (the work that workers take off it)."""
    t0 = time.perf_counter()
    it = make_train_iterator(
        source, transform, batch, 0, mesh, repeat_times=5, num_workers=workers, num_steps=steps + 1
    )
    next(it)["keypoint"].block_until_ready()
    t1, cpu1 = time.perf_counter(), time.process_time()
    for b in it:
        b["keypoint"].block_until_ready()
    t2, cpu2 = time.perf_counter(), time.process_time()
    it.close()
    return {
        "first_batch_s": t1 - t0,
        "samples_per_s": steps * batch / (t2 - t1),
        "main_cpu_ms_per_batch": (cpu2 - cpu1) / steps * 1e3,
    }


def pipeline_rate(batch: int, quick: bool) -> dict:
    """Samples/s of the ST-GCN++ train transform ('j') on synthetic data: bare loop and grain with 0 workers."""
    per_class, steps = (10, 5) if quick else (50, 30)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    with tempfile.TemporaryDirectory() as tmp:
        source = load_source("skeljax_synthetic/3d", "train", tmp, num_per_class=per_class)
        transform = make_pipeline("nturgb+d", "j", clip_len=100, mode="train")
        bare = bare_rate(source, transform, steps * batch)
        grain0 = iterator_stats(source, transform, batch, steps, 0, mesh)["samples_per_s"]
    return {"bare_samples_per_s": bare, "grain_0_workers_samples_per_s": grain0}
