"""The released models skeljax reproduces, by name: the rows (`skeljax.zoo.rows`: name, reference top-1, checkpoint
URL, the config that trains it), their download, verification and conversion (`skeljax.zoo.download`), and `zoo:NAME`
paths (`resolve`), which the entry points (skeljax-convert, prediction, init_from, `skeljax.load_pytorch_checkpoint`)
turn into local files; `python -m skeljax.zoo list|get NAME`.
"""

from __future__ import annotations

from skeljax.zoo.rows import ZOO_PREFIX, ZooRow, all_rows, find_row, zoo_rows

__all__ = ["ZOO_PREFIX", "ZooRow", "all_rows", "find_row", "load_pytorch_checkpoint", "resolve", "zoo_rows"]


def resolve(path, *, want: str = "model"):
    """`path` unchanged, or for 'zoo:NAME' the local copy (fetched on first use): the skeljax model directory, or the
    verified released `.pth` with want='pth'."""
    if not (isinstance(path, str) and path.startswith(ZOO_PREFIX)):
        return path
    from skeljax.zoo import download

    name = path[len(ZOO_PREFIX) :]
    return download.get(name) if want == "model" else download.fetch(find_row(name))


def load_pytorch_checkpoint(path: str, *, trusted: bool = False, **overrides):
    """`skeljax.load_pytorch_checkpoint`: `models.convert.load_pytorch_checkpoint` of a file or of a released model
    named 'zoo:NAME' (its verified `.pth`, fetched on first use)."""
    from skeljax.models import state_dict

    return state_dict.load_pytorch_checkpoint(resolve(path, want="pth"), trusted=trusted, **overrides)
