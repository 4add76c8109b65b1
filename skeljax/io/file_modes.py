"""Permissions for files skeljax writes atomically.

`tempfile.mkstemp` / `mkdtemp` create 0600 files and 0700 folders; renamed into place they would stay private to
their owner, so data and checkpoints on a shared file system could not be read by the rest of a lab. They get the
modes `open()` / `os.makedirs` would have given them under the process's umask.
"""

from __future__ import annotations

import os


def _umask() -> int:
    try:  # Linux >= 4.7 reports it without changing it
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """0o666 (files) or 0o777 (folders) less the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


def publish_mode(tmp: str, path: str, directory: bool = False) -> None:
    """chmod `tmp` (about to be renamed to `path`) to `path`'s current mode if it exists, else the umask default."""
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else default_mode(directory)
    os.chmod(tmp, mode)
