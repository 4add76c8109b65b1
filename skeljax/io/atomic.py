"""Atomic writes: a file or folder appears at its path complete, or not at all.

The data goes to a temporary name in the target's own folder (so the final rename stays on one file system and is
atomic), is flushed to disk, gets the mode a plain ``open()`` / ``mkdir`` would have given it (`file_modes`), and
is renamed over the target. On any exception, KeyboardInterrupt included, the temporary is removed and the target
is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO

from skeljax.io.file_modes import publish_mode

__all__ = ["atomic_directory", "atomic_file", "atomic_path"]


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary file path next to `path` for the caller to write; on success it replaces `path`.

    `suffix` ends the temporary name, for writers that pick the format from the extension (``.tmp.gif``).
    Missing parent folders are created.
    """
    path = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        _fsync(tmp)  # the data is on disk before the rename makes it visible
        publish_mode(tmp, path)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """`atomic_path`, opened: yield the temporary file object (``open(tmp, mode, **open_kwargs)``)."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_file writes a new file; mode {mode!r} is not a 'w' mode")
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as f:
        yield f


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[str]:
    """Yield a new empty folder next to `path` to fill; on success it replaces `path` (an existing one is deleted).

    The temporary folder is named ``<name>.tmp-XXXXXXXX``. Between deleting an existing `path` and the rename a
    crash leaves no `path` but the complete temporary folder, never a half-written one at `path`.
    """
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f"{name}.tmp-", dir=parent)
    try:
        yield tmp
        publish_mode(tmp, path, directory=True)  # mkdtemp creates 0700
        if os.path.exists(path):
            shutil.rmtree(path)  # os.replace cannot rename a folder over a non-empty one
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
