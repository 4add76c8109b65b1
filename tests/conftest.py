"""Shared test set-up: JAX on CPU with float32 matmuls at full precision (parity needs it), and the fixtures that
several test modules use (found by name; shared plain helpers are in helpers.py)."""

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


@pytest.fixture(scope="session")
def xla_cache(tmp_path_factory):
    """A persistent XLA cache that helpers.cli_env hands to every CLI subprocess of the session; its path."""
    from tests import helpers  # here, not at the top: conftest stays free of skeljax imports

    path = str(tmp_path_factory.getbasetemp() / "skeljax_cli_xla_cache")
    helpers.CLI_XLA_CACHE[:] = [path]
    yield path
    helpers.CLI_XLA_CACHE.clear()


@pytest.fixture
def umask_027():
    """The process umask at 027 for one test (files 640, directories 750), restored after."""
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """An empty TFDS data_dir for helpers.tiny_config, per test module; JAX's persistent compilation cache is on
    meanwhile."""
    # A persistent compilation cache makes the repeated runs (same shapes) skip most of XLA's work.
    cache = tmp_path_factory.mktemp("xla_cache")
    old = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    yield str(tmp_path_factory.mktemp("tfds"))
    jax.config.update("jax_compilation_cache_dir", old[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", old[1])
