"""JAX's persistent compilation cache for `python -m skeljax.main` and the command lines that compile (skeljax-predict,
-export, -visualize, `zoo get`): a second run loads its XLA programs from disk.

A resumed run, `--mode test` after training or a rerun on other data compiles the same programs again (the training
step takes ~45 s to compile on an H200 and ~21 s on a 2-core CPU); with the cache they load in a few seconds.
`setup(config.compilation_cache_dir)` turns it on before anything is compiled; `python -m skeljax.main` calls it,
a notebook may call it too. `JAX_COMPILATION_CACHE_DIR` in the environment wins over the config field. The
command lines take `add_flag` (`--no-cache`) and `setup_for_command`: the same default directory, reported on
stderr through logging (their stdout is their output, e.g. skeljax-predict --json).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from collections.abc import Callable

JAX_ENV = "JAX_COMPILATION_CACHE_DIR"
MIN_TIME_ENV = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"
# Programs that compile faster than this are not written. jax 0.10.2's default, 1.0 s, keeps the train step and
# the predict functions but not the ~80 small programs of the eager model initialisation (0.1-0.3 s each on CPU).
# Measured on the 2-core CPU (demo model, 1 step + val + test; a shared, noisy machine): 73 s without the cache;
# a warm rerun took 45 s at 1.0 s (4-7 entries, 2.3 MB), 32 s at 0.1 s (33-40, 2.9 MB), 27 s at 0 (86, 3.2 MB).
MIN_COMPILE_TIME_SECS = 0.0


def default_dir() -> str:
    """`$XDG_CACHE_HOME/skeljax/jax` when XDG_CACHE_HOME is an absolute path, else `~/.cache/skeljax/jax`."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative value is invalid and ignored
        return os.path.join(xdg, "skeljax", "jax")
    return "~/.cache/skeljax/jax"


def _console(msg: str) -> None:
    from skeljax.train import metrics_writer

    metrics_writer.console(msg)


def _writable(path: str) -> str | None:
    """None when `path` can be created and written, else the reason."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test."):  # unique: hosts may share the dir
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def _set_dir(path: str | None) -> None:
    """Point JAX at `path` (None: no cache); a cache JAX already opened is dropped so that the change applies."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache as jax_cc

    if jax.config.jax_compilation_cache_dir != path:
        jax.config.update("jax_compilation_cache_dir", path)
        jax_cc.reset_cache()


def setup(
    path: str | os.PathLike | None,
    *,
    min_compile_time_secs: float | None = MIN_COMPILE_TIME_SECS,
    log: Callable[[str], None] | None = None,
    off_hint: str = "--config.compilation_cache_dir=''",
) -> str | None:
    """Use `path` (`~` expanded) as JAX's persistent compilation cache; `''` or None turns it off.

    Call before the programs to cache are compiled. Returns the directory in use (None: no cache). An environment
    JAX_COMPILATION_CACHE_DIR is left to JAX; a directory that cannot be created or written is logged as a warning
    and the run goes on without the cache. `min_compile_time_secs` (None: JAX's value) is applied unless
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS is set. Logs one line through `log` (default: the trainer's console)
    naming `off_hint`, the setting that turns the cache off.
    """
    import jax

    _log = log or _console

    path = os.fspath(path) if path is not None else ""
    if path in ("''", '""'):  # quotes that reached the value (a quoted shell line): no directory named ''
        path = ""
    if os.environ.get(JAX_ENV):
        active = jax.config.jax_compilation_cache_dir or None
        _log(f"compilation cache: {active} (from ${JAX_ENV}, which wins over the setting)")
        return active if jax.config.jax_enable_compilation_cache else None
    if not path:
        _set_dir(None)
        _log(f"compilation cache: off ({off_hint})")
        return None
    if not jax.config.jax_enable_compilation_cache:
        _log("compilation cache: off (jax_enable_compilation_cache is False)")
        return None
    path = os.path.abspath(os.path.expanduser(path))
    problem = _writable(path)
    if problem is not None:
        _set_dir(None)
        _log(
            f"warning: compilation cache: {path}: cannot be created or written ({problem}); continuing without "
            f"it (set ${JAX_ENV} to a writable directory, or {off_hint} to turn it off)"
        )
        return None
    if min_compile_time_secs is not None and MIN_TIME_ENV not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_secs))
    _set_dir(path)
    _log(f"compilation cache: {path} (later runs load the compiled programs from there; {off_hint} turns it off)")
    return path


def add_flag(p: argparse.ArgumentParser) -> None:
    """`--no-cache` for a command line that compiles (skeljax-predict, -export, -visualize, `zoo get`)."""
    p.add_argument(
        "--no-cache",
        action="store_true",
        help=f"do not use JAX's persistent compilation cache ({default_dir()}, or ${JAX_ENV}); without it every "
        "run compiles its programs again",
    )


def setup_for_command(no_cache: bool) -> str | None:
    """The cache of a command line: `default_dir()` ($JAX_COMPILATION_CACHE_DIR wins), or off with --no-cache.
    Call before anything is compiled. Reported at INFO level on stderr (-v), warnings always."""
    logger = logging.getLogger("skeljax.compilation_cache")

    def log(msg: str) -> None:
        (logger.warning if msg.startswith("warning:") else logger.info)(msg.removeprefix("warning: "))

    if no_cache:
        _set_dir(None)  # also over $JAX_COMPILATION_CACHE_DIR, which JAX read at import
        log("compilation cache: off (--no-cache)")
        return None
    return setup(default_dir(), log=log, off_hint="--no-cache")
