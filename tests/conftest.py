"""Shared test set-up: JAX on CPU with float32 matmuls at full precision (parity needs it)."""

import os

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

jax.config.update("jax_default_matmul_precision", "highest")

try:  # PyTorch references: one thread per test worker (pytest -n 2 on 2 cores; more threads only contend).
    import torch

    torch.set_num_threads(1)
except ImportError:  # the PyTorch tests themselves fail loudly on import; nothing to tune here
    pass


@pytest.fixture(scope="session", autouse=True)
def compilation_cache_in_a_session_directory(tmp_path_factory):
    """`python -m skeljax.main` run by tests caches compiled programs (config.compilation_cache_dir, default
    $XDG_CACHE_HOME/skeljax/jax) in this session's temporary directory, never in the user's ~/.cache; the runs of
    one session (one pytest-xdist worker) share it. JAX_COMPILATION_CACHE_DIR, where a test sets it, still wins."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
        yield
