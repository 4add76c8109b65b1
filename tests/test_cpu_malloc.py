"""skeljax.cpu_malloc: the trainer restarts itself with glibc's malloc tuned, on CPU-only installs only, keeping the
user's own values and command line."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from skeljax import cpu_malloc

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_cpu_is_decided_from_jax_platforms_or_the_installed_plugins(monkeypatch):
    assert cpu_malloc.runs_on_cpu({"JAX_PLATFORMS": "cpu"})
    assert not cpu_malloc.runs_on_cpu({"JAX_PLATFORMS": "cuda"})
    assert not cpu_malloc.runs_on_cpu({"JAX_PLATFORMS": "cuda,cpu"})
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert cpu_malloc.runs_on_cpu({})
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "libtpu" else None)
    assert not cpu_malloc.runs_on_cpu({})
    assert cpu_malloc.runs_on_cpu({"JAX_PLATFORMS": " cpu "})  # an explicit CPU wins over an installed plugin


def _execs(monkeypatch, env):
    calls = []
    monkeypatch.setattr(os, "execve", lambda path, argv, new_env: calls.append((path, argv, new_env)))
    cpu_malloc.reexec_with_malloc_env(["/bin/python", "-m", "skeljax.main", "--workdir", "w"], env)
    return calls


def test_a_cpu_run_restarts_with_the_missing_settings_and_keeps_the_users(monkeypatch):
    calls = _execs(monkeypatch, {"JAX_PLATFORMS": "cpu", "MALLOC_ARENA_MAX": "4", "HOME": "/h"})
    assert len(calls) == 1
    path, argv, env = calls[0]
    assert path == "/bin/python" and argv == ["/bin/python", "-m", "skeljax.main", "--workdir", "w"]
    assert env["MALLOC_ARENA_MAX"] == "4" and env["HOME"] == "/h"
    assert env["MALLOC_MMAP_MAX_"] == "0" and env["MALLOC_TOP_PAD_"] == "536870912"
    assert set(cpu_malloc.MALLOC_ENV) <= set(env)


@pytest.mark.parametrize(
    "env",
    [
        {"JAX_PLATFORMS": "cpu", **cpu_malloc.MALLOC_ENV},  # nothing missing
        {"JAX_PLATFORMS": "cpu", "SKELJAX_NO_MALLOC_ENV": "1"},  # turned off
        {"JAX_PLATFORMS": "cuda"},  # the step's memory is the GPU's
    ],
)
def test_no_restart_when_set_turned_off_or_not_on_cpu(monkeypatch, env):
    assert _execs(monkeypatch, env) == []


CONFIG = """
import os

def get_config(arg=None):
    with open({out!r}, "w") as f:
        f.write(repr([os.environ.get(k) for k in ("MALLOC_ARENA_MAX", "MALLOC_TOP_PAD_")]))
    raise ValueError("stop here")
"""


@pytest.mark.parametrize(
    "extra,seen",
    [
        ({}, ["1", "536870912"]),
        ({"MALLOC_ARENA_MAX": "4"}, ["4", "536870912"]),
        ({"SKELJAX_NO_MALLOC_ENV": "1"}, [None, None]),
    ],
)
def test_the_training_command_runs_with_the_settings(tmp_path, extra, seen):
    # the config file records the environment it is loaded in, then fails: the command line survived the restart
    out = tmp_path / "env.txt"
    config = tmp_path / "cfg.py"
    config.write_text(CONFIG.format(out=str(out)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "SKELJAX_NO_MALLOC_ENV"}
    cmd = [sys.executable, "-m", "skeljax.main", "--config", str(config), "--workdir", str(tmp_path / "w")]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=REPO, env={**env, "JAX_PLATFORMS": "cpu", **extra}, timeout=120
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"error: {config}" in proc.stderr and "stop here" in proc.stderr
    assert out.read_text() == repr(seen)


def test_the_benchmarks_restart_on_every_platform_unless_nothing_is_missing(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "execve", lambda path, argv, new_env: calls.append(new_env))
    cpu_malloc.restart_with_malloc_env(["/bin/python", "bench.py"], {"JAX_PLATFORMS": "cuda"})
    assert len(calls) == 1 and calls[0]["MALLOC_ARENA_MAX"] == "1" and calls[0]["JAX_PLATFORMS"] == "cuda"
    cpu_malloc.restart_with_malloc_env(["/bin/python", "bench.py"], dict(cpu_malloc.MALLOC_ENV))
    assert len(calls) == 1
