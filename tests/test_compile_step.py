"""skeljax.train.compile_step: config.remat 'on' / 'off' / 'auto', where 'auto' keeps the plain step when XLA's
memory plan fits the free memory per device (a GPU's or TPU's allocator, the CPU host's available memory) and
compiles the rematerialised step when it does not. The paths run here on the CPU backend with the backend name and
the free memory given."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from skeljax import sharding
from skeljax.models.stgcn import Recognizer, stgcnpp_spec
from skeljax.train import compile_step
from skeljax.train.optim import make_optimizer
from skeljax.train.state import TrainParts
from skeljax.train.step import jit_train_step, make_train_step

BATCH = (4, 2, 24, 25, 3)


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """The tests compile the same two programs many times: from the second time on, a load from JAX's cache."""
    old = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    yield
    jax.config.update("jax_compilation_cache_dir", old[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", old[1])


@pytest.fixture(scope="module")
def step_parts():
    """(remat -> jitted step, state, batch, a concrete batch) of a small ST-GCN++ training step."""
    # Two ST-GCN++ blocks (one strided), as the trainer's tests use: seconds to compile.
    spec = dataclasses.replace(
        stgcnpp_spec(6), base_channels=8, num_stages=2, inflate_stages=(2,), down_stages=(2,), bn_group=2
    )
    model = Recognizer(spec, rngs=nnx.Rngs(0))
    schedule = optax.constant_schedule(0.1)
    tx = make_optimizer(schedule, momentum=0.9, nesterov=True, weight_decay=5e-4)
    parts = TrainParts(model, tx)
    mesh = sharding.make_mesh()

    def jitted_for(remat):
        return jit_train_step(make_train_step(parts, tx, schedule, seed=0, remat=remat), mesh)

    rng = np.random.default_rng(0)
    arrays = {
        "keypoint": rng.normal(size=(BATCH[0], 1) + BATCH[1:]).astype(np.float32),
        "label": rng.integers(0, 6, BATCH[0]).astype(np.int32),
    }
    shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), arrays)
    return jitted_for, parts, mesh, shapes, arrays


def _compile(step_parts, mode, backend, free=None, logs=None):
    jitted_for, parts, mesh, shapes, _ = step_parts
    state = sharding.put_replicated(parts.state, mesh)

    def free_mb():
        return free  # None: the backend keeps no statistics

    return compile_step.compile_train_step(
        jitted_for, mode, state, shapes, backend=backend, free_mb=free_mb, log=(logs if logs is not None else []).append
    )


@pytest.fixture(scope="module")
def plain_and_remat(step_parts):
    return _compile(step_parts, "off", "cpu"), _compile(step_parts, "on", "cpu")


def test_the_rematerialised_step_plans_less_memory_and_computes_the_same_update(step_parts, plain_and_remat):
    plain, remat = plain_and_remat
    assert (plain.remat, remat.remat) == (False, True)
    assert remat.memory.temp < 0.8 * plain.memory.temp
    _, parts, mesh, _, arrays = step_parts
    before = [np.asarray(a, np.float64) for a in jax.tree.leaves(jax.device_get(parts.state["params"]))]
    results = []
    for built in plain_and_remat:
        state = sharding.put_replicated(parts.state, mesh)
        new_state, metrics = built.compiled(state, jax.device_put(arrays))
        results.append((jax.device_get(new_state["params"]), jax.device_get(metrics)))
    assert results[0][1]["train/loss"] == pytest.approx(results[1][1]["train/loss"], rel=1e-5)
    for a, b in zip(jax.tree.leaves(results[0][0]), jax.tree.leaves(results[1][0])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # The logged norms against NumPy. The first torch-style SGD step (Nesterov momentum 0.9, weight decay 5e-4,
    # lr 0.1) moves the parameters by -0.1 * 1.9 * (g + 5e-4 * p), which gives the gradient back.
    after = [np.asarray(a, np.float64) for a in jax.tree.leaves(results[0][0])]
    updates = [b - a for a, b in zip(before, after)]
    grads = [-u / (0.1 * 1.9) - 5e-4 * p for u, p in zip(updates, before)]
    norm = lambda arrays: np.sqrt(sum(np.sum(a * a) for a in arrays))  # noqa: E731
    metrics = results[0][1]
    assert metrics["train/param_norm"] == pytest.approx(norm(after), rel=1e-5)
    assert metrics["train/update_norm"] == pytest.approx(norm(updates), rel=1e-4)
    assert metrics["train/grad_norm"] == pytest.approx(norm(grads), rel=1e-3)


@pytest.mark.parametrize("backend", ["cpu", "gpu", "tpu"])
def test_auto_turns_remat_on_exactly_when_the_plain_step_does_not_fit(step_parts, plain_and_remat, backend):
    need = plain_and_remat[0].memory.new  # what the plain step allocates beyond its arguments, per device
    logs = []
    fits = _compile(step_parts, "auto", backend, free=need / compile_step.FIT_SHARE * 1.01, logs=logs)
    assert fits.remat is False and logs == []
    tight = need / compile_step.FIT_SHARE * 0.99
    too_large = _compile(step_parts, "auto", backend, free=tight, logs=logs)
    assert too_large.remat is True
    assert too_large.memory.temp == pytest.approx(plain_and_remat[1].memory.temp)
    where = "MB of available host memory per device" if backend == "cpu" else "MB free on the device"
    assert len(logs) == 1 and "compiling it with remat instead" in logs[0] and f"{tight:.0f} {where}" in logs[0]
    assert too_large.seconds > too_large.tracing_seconds > 0  # both programs' compile time is counted


def test_explicit_modes_do_not_depend_on_memory_and_auto_without_statistics_is_plain(step_parts):
    assert _compile(step_parts, "on", "gpu", free=1e9).remat is True
    assert _compile(step_parts, "off", "gpu", free=1.0).remat is False
    assert _compile(step_parts, "on", "cpu", free=1e9).remat is True
    assert _compile(step_parts, "off", "cpu", free=1.0).remat is False
    assert _compile(step_parts, "auto", "cpu", free=None).remat is False
    with pytest.raises(ValueError, match=r"config.remat must be one of \('auto', 'on', 'off'\), got 'yes'"):
        _compile(step_parts, "yes", "cpu")


def test_a_step_that_cannot_fit_is_named_before_it_runs(step_parts, plain_and_remat):
    logs = []
    built = _compile(step_parts, "off", "gpu", free=1.0, logs=logs)
    assert built.remat is False
    assert len(logs) == 1 and logs[0].startswith("warning: the training step plans")
    assert "set config.remat='on'" in logs[0] and "1 MB free on the device" in logs[0]
    logs.clear()
    _compile(step_parts, "auto", "gpu", free=1.0, logs=logs)  # remat chosen and still too large
    assert len(logs) == 2 and "set config.remat" not in logs[1] and "Lower config.batch_size" in logs[1]


def test_memory_plan_reads_xla_and_free_memory_reads_the_allocator():
    compiled = jax.jit(lambda x: jnp.sin(x) @ x).lower(jnp.zeros((256, 256))).compile()
    plan = compile_step.memory_plan(compiled)
    stats = compiled.memory_analysis()
    assert plan.argument == stats.argument_size_in_bytes / 2**20 == 0.25
    assert plan.new == pytest.approx((stats.temp_size_in_bytes + stats.output_size_in_bytes) / 2**20)

    class Device:
        def __init__(self, stats):
            self.stats = stats

        def memory_stats(self):
            return self.stats

    gib = 2**30
    two = [Device({"bytes_limit": 16 * gib, "bytes_in_use": 2 * gib}), Device({"bytes_limit": 16 * gib})]
    assert compile_step.free_device_memory_mb(two) == 14 * 1024  # the fuller device decides
    assert compile_step.free_device_memory_mb([Device(None)]) is None  # the CPU backend keeps no statistics
    with open("/proc/meminfo") as f:
        available_kb = int(next(ln for ln in f if ln.startswith("MemAvailable:")).split()[1])
    # The live figure moves as other processes allocate; within 2 GB of the kernel's figure read just now.
    assert 0 < compile_step.available_host_memory_mb() <= available_kb / 1024 + 2048


def test_available_host_memory_is_meminfo_or_what_the_cgroup_leaves(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683772 kB\nMemFree:  1000 kB\nMemAvailable:   20971520 kB\n")
    limit, usage = tmp_path / "memory.max", tmp_path / "memory.current"
    cgroup = ((str(limit), str(usage)),)
    assert compile_step.available_host_memory_mb(str(meminfo), ()) == 20 * 1024  # 20 GiB in kB
    limit.write_text("max\n")  # cgroup v2 without a limit
    usage.write_text(f"{3 * 2**30}\n")
    assert compile_step.available_host_memory_mb(str(meminfo), cgroup) == 20 * 1024
    limit.write_text(f"{8 * 2**30}\n")  # 8 GiB limit, 3 GiB used: 5 GiB left, less than MemAvailable
    assert compile_step.available_host_memory_mb(str(meminfo), cgroup) == 5 * 1024
    usage.write_text(f"{9 * 2**30}\n")  # over the limit (page cache counts): nothing left
    assert compile_step.available_host_memory_mb(str(meminfo), cgroup) == 0
    assert compile_step.available_host_memory_mb(str(tmp_path / "absent"), ()) is None
