"""Compiling the update step once, and what `config.remat='auto'` decides from XLA's memory plan.

'on' and 'off' compile the step with or without rematerialisation (`Recognizer.set_remat`). 'auto' is on for the
CPU backend: there the step is memory-bound, and PYSKL's batch of 128 needs a single 34 GB allocation without remat
(docs/benchmarks.md). On a GPU or TPU, 'auto' compiles the faster step without remat, compares its memory plan with
the memory free on the devices, and compiles the rematerialised step instead only when the plain one would not fit:
the recipe's batch on a 16 GB Colab GPU, for instance. The choice is logged and written to the first metrics record.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from skeljax.config_base import REMAT_MODES
from skeljax.train.metrics_writer import console

# The share of the free device memory the step without remat may plan to use before 'auto' turns remat on: the
# rest stays for the allocator's fragmentation, the next batch and the validation forward.
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


def host_memory_mb() -> float | None:
    """The host's physical memory, or the cgroup's limit when lower (MB): what the CPU backend's devices share."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                limit = f.read().strip()
        except OSError:
            continue
        if limit.isdigit():
            total = min(total, int(limit))
    return total / 2**20


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
    remat as `mode` ('auto' | 'on' | 'off') says for `backend` (default: JAX's). `free_mb` gives the device
    memory free per device (default `free_device_memory_mb`), read before the step first runs."""
    backend = backend or _backend()
    free_mb = free_mb or free_device_memory_mb
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
    remat = mode == "on" or (mode == "auto" and backend == "cpu")
    compiled = compile_(remat)
    plan = memory_plan(compiled)
    room, where = _room_mb(backend, free_mb)
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


def _room_mb(backend: str, free_mb) -> tuple[float | None, str]:
    """(MB a device can give the step, what that is): the free device memory of a GPU or TPU; on the CPU backend
    the host's memory, shared by its devices."""
    if backend != "cpu":
        return free_mb(), "free on the device"
    total = host_memory_mb()
    return (None if total is None else total / max(1, jax.local_device_count())), "of host memory per device"


def _exceeds(plan: MemoryPlan | None, room: float | None, share: float) -> bool:
    return plan is not None and room is not None and plan.new > share * room


def _any_process(flag: bool) -> bool:
    """Whether `flag` holds on any process: every process of a multi-host run must compile the same program."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))
