"""Compiling the update step once, and what `config.remat='auto'` decides from XLA's memory plan.

'on' and 'off' compile the step with or without rematerialisation (`Recognizer.set_remat`). 'auto' compiles the
faster step without remat, compares XLA's memory plan of it with the memory free per device (on a GPU or TPU what
the device's allocator has left; on the CPU backend the host's available memory, cgroup limits included, shared by
its devices), and compiles the rematerialised step instead only when the plain one would not fit: PYSKL's batch of
128 on a 23 GB CPU host (a single 34 GB allocation without remat, docs/benchmarks.md) or on a 16 GB Colab GPU, for
instance. The choice is logged and written to the first metrics record."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from skeljax.config.schema import REMAT_MODES
from skeljax.train.metrics_writer import console

# The share of the free memory per device the step without remat may plan to use before 'auto' turns remat on: the
# rest stays for the allocator's fragmentation, the next batch, the validation forward (and on a CPU host for the
# input pipeline and everything else running there).
FIT_SHARE = 0.8


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """XLA's memory plan of a compiled program, per device, in MB."""

    temp: float
    argument: float
    output: float
    alias: float  # outputs written into donated arguments

    @property
    def new(self) -> float:
        """What running it allocates beyond its (already resident) arguments."""
        return self.temp + self.output - self.alias

    def as_record(self) -> dict[str, float]:
        return {"temp": self.temp, "argument": self.argument, "output": self.output}


@dataclasses.dataclass(frozen=True)
class CompiledStep:
    """The update step compiled for the first batch, and what was decided and spent on the way."""

    compiled: Any  # jax.stages.Compiled
    remat: bool
    seconds: float  # tracing, lowering and XLA, of every program compiled on the way
    tracing_seconds: float
    memory: MemoryPlan | None


def memory_plan(compiled) -> MemoryPlan | None:
    """XLA's memory plan of `compiled` per device; None when the backend does not report one."""
    stats = compiled.memory_analysis()
    fields = ("temp", "argument", "output", "alias")
    if stats is None or not all(hasattr(stats, f"{f}_size_in_bytes") for f in fields):
        return None
    return MemoryPlan(*(getattr(stats, f"{f}_size_in_bytes") / 2**20 for f in fields))


def free_device_memory_mb(devices=None) -> float | None:
    """The least memory free for new allocations on any of `devices` (default: this process's), in MB: the
    allocator's limit less what is in use (GPU, TPU); None where the backend keeps no such statistics (CPU)."""
    free = []
    for device in devices if devices is not None else jax.local_devices():
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            free.append((stats["bytes_limit"] - stats.get("bytes_in_use", 0)) / 2**20)
    return min(free) if free else None


# Where the memory of a container is capped: (limit, usage) files of cgroup v2, then v1.
CGROUP_MEMORY_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def available_host_memory_mb(meminfo: str = "/proc/meminfo", cgroups=CGROUP_MEMORY_FILES) -> float | None:
    """The host memory available to new allocations without swapping (MB): the kernel's MemAvailable, or what is
    left under this process's cgroup limit when that is less. None where neither can be read (not Linux)."""
    free = []
    try:
        with open(meminfo) as f:
            free += [int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in cgroups:
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None:  # 'max' (v2) or a huge number (v1) is no limit
            free.append(max(0, limit - usage))
    return min(free) / 2**20 if free else None


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def free_host_memory_mb_per_device() -> float | None:
    """The CPU backend's counterpart of `free_device_memory_mb`: its devices share the host's available memory."""
    available = available_host_memory_mb()
    return None if available is None else available / max(1, jax.local_device_count())


def compile_train_step(
    jitted_for: Callable[[bool], Any],
    mode: str,
    state,
    batch,
    *,
    backend: str | None = None,
    free_mb: Callable[[], float | None] | None = None,
    log: Callable[[str], None] | None = None,
) -> CompiledStep:
    """Compile `jitted_for(remat)` (the jitted update step, rematerialised or not) for (state, batch), choosing
    remat as `mode` ('auto' | 'on' | 'off') says for `backend` (default: JAX's). `free_mb` gives the memory free
    per device, read before the step first runs (default: `free_device_memory_mb` on a GPU or TPU,
    `free_host_memory_mb_per_device` on the CPU backend)."""
    backend = backend or _backend()
    free_mb = free_mb or (free_host_memory_mb_per_device if backend == "cpu" else free_device_memory_mb)
    log = log or console
    spent = [0.0, 0.0]  # all compile seconds, tracing seconds

    def compile_(remat: bool):
        t0 = time.perf_counter()
        lowered = jitted_for(remat).lower(state, batch)
        t1 = time.perf_counter()
        compiled = lowered.compile()
        spent[0] += time.perf_counter() - t0
        spent[1] += t1 - t0
        return compiled

    if mode not in REMAT_MODES:
        raise ValueError(f"config.remat must be one of {REMAT_MODES}, got {mode!r}")
    remat = mode == "on"
    compiled = compile_(remat)
    plan = memory_plan(compiled)
    room = free_mb()
    where = "of available host memory per device" if backend == "cpu" else "free on the device"
    if mode == "auto" and not remat and _any_process(_exceeds(plan, room, FIT_SHARE)):
        log(
            f"config.remat='auto': the training step without remat plans {plan.new:.0f} MB per device "
            f"(XLA: temp {plan.temp:.0f} MB, outputs {plan.output:.0f} MB), more than {FIT_SHARE:.0%} of the "
            f"{room:.0f} MB {where}; compiling it with remat instead"
        )
        remat, compiled = True, compile_(True)
        plan = memory_plan(compiled)
    if _exceeds(plan, room, 1.0):  # XLA's out-of-memory error follows later and does not say what to change
        hint = "" if remat else ", set config.remat='on'"
        log(
            f"warning: the training step plans {plan.new:.0f} MB per device (XLA: temp {plan.temp:.0f} MB), more "
            f"than the {room:.0f} MB {where}; expect an out-of-memory error. Lower config.batch_size (the batch "
            f"per device){hint} or use more devices."
        )
    return CompiledStep(compiled, remat, spent[0], spent[1], plan)


def _backend() -> str:
    return jax.default_backend()


def _exceeds(plan: MemoryPlan | None, room: float | None, share: float) -> bool:
    return plan is not None and room is not None and plan.new > share * room


def _any_process(flag: bool) -> bool:
    """Whether `flag` holds on any process: every process of a multi-host run must compile the same program."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))
