"""glibc malloc settings under which XLA (and PyTorch) run faster on a CPU, and the trainer's start with them.

Each training step takes hundreds of MB of scratch memory from malloc. With glibc's defaults every large request
is a fresh mmap that the kernel then page-faults in, and frees return it at once; these settings keep one heap that
grows once and is reused. glibc reads them only at process start, so `python -m skeljax.main` on a CPU-only install
re-executes itself with the missing ones before it imports JAX (`reexec_with_malloc_env`). Measured on the 2-core
CPU, ST-GCN++ train step at batch 16 (one process each, 2026-12-07): 5.12 s without them, 4.56 s with them; setting
the same values at run time through `mallopt` (5.24 s) does not help, hence the new process. The benchmarks give
both frameworks the same settings (docs/benchmarks.md, "Environment: glibc malloc").

Values the user has set are kept; `SKELJAX_NO_MALLOC_ENV=1` turns the re-execution off. Hosts with a GPU or TPU
JAX plugin are left alone (their step's memory is the device's).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence

MALLOC_ENV = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "8589934592",
    "MALLOC_TOP_PAD_": "536870912",
}
OPT_OUT_ENV = "SKELJAX_NO_MALLOC_ENV"
# JAX's accelerator plugins and TPU runtime: with one of these installed, JAX may not run on the CPU.
ACCELERATOR_MODULES = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin", "libtpu")


def with_malloc_env(env: dict) -> dict:
    """`env` plus those of `MALLOC_ENV`'s variables it lacks."""
    return {**env, **{k: env.get(k, v) for k, v in MALLOC_ENV.items()}}


def runs_on_cpu(env: dict) -> bool:
    """Whether JAX will run on the CPU, decided without importing it: `JAX_PLATFORMS` says only 'cpu', or no
    accelerator plugin is installed."""
    platforms = [p.strip() for p in env.get("JAX_PLATFORMS", "").split(",") if p.strip()]
    if platforms:
        return platforms == ["cpu"]
    return not any(importlib.util.find_spec(m) is not None for m in ACCELERATOR_MODULES)


def restart_with_malloc_env(command: Sequence[str], env: dict | None = None) -> None:
    """Replace this process by `command` (argv, executable first) with `MALLOC_ENV`'s missing variables added;
    return when none is missing. glibc reads them only at start-up, hence the new process. The benchmark scripts
    call this directly (`skeljax.testing.benchmarking.use_malloc_env`), on every platform."""
    env = dict(os.environ if env is None else env)
    if all(k in env for k in MALLOC_ENV):
        return
    os.execve(command[0], list(command), with_malloc_env(env))


def reexec_with_malloc_env(command: Sequence[str], env: dict | None = None) -> None:
    """The trainer's restart: `restart_with_malloc_env` when JAX will run on the CPU and `SKELJAX_NO_MALLOC_ENV` is
    not set; otherwise return. Call it before anything large is allocated."""
    env = dict(os.environ if env is None else env)
    if env.get(OPT_OUT_ENV, "") not in ("", "0") or not runs_on_cpu(env):
        return
    try:
        restart_with_malloc_env(command, env)
    except OSError:  # cannot re-execute (an unusual launcher): run on with glibc's defaults
        return
