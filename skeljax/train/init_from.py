"""Starting a model from another: a skeljax model directory or a PyTorch .pth, tensor by tensor."""

from __future__ import annotations

import os
import re

import jax
import numpy as np
from flax import nnx

from skeljax.models import model_dir
from skeljax.models.state_dict import pyskl_key
from skeljax.models.stgcn import Recognizer


def load_source_model(path: str, *, trusted: bool = False) -> Recognizer:
    """A skeljax model directory or a PyTorch .pth (PYSKL / MMAction2, through the converter)."""
    from skeljax import zoo

    path = os.path.expanduser(zoo.resolve(path))  # 'zoo:NAME' -> its model directory, fetched on first use
    if os.path.isdir(path):
        return model_dir.load_model(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint (expected a skeljax model directory or a .pth file)")
    from skeljax.models.state_dict import load_pytorch_checkpoint

    return load_pytorch_checkpoint(path, trusted=trusted)


def flat_model_state(model: nnx.Module) -> dict[str, np.ndarray]:
    """{'backbone.gcn.0.gcn.A': array, ...}: parameters, BN statistics and buffers under PyTorch-style names."""
    pure = model_dir.model_state(model)
    return {
        pyskl_key(".".join(str(getattr(k, "key", k)) for k in path)): leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(pure)[0]
    }


def load_init(
    model: nnx.Module, path: str, dont_load: str = "", *, trusted: bool = False
) -> tuple[list[str], list[str]]:
    """Copy a checkpoint's tensors into `model`, except names matching the `dont_load` regex (e.g. a new head).

    Every other tensor must exist in the checkpoint with the same shape; returns (loaded, not loaded) names.
    """
    source = flat_model_state(load_source_model(path, trusted=trusted))
    pattern = re.compile(dont_load) if dont_load else None
    pure = model_dir.model_state(model)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(pure)
    loaded, skipped, problems, values = [], [], [], []
    for p, leaf in leaves:
        name = pyskl_key(".".join(str(getattr(k, "key", k)) for k in p))  # dont_load matches PyTorch names
        if pattern is not None and pattern.search(name):
            skipped.append(name)
            values.append(leaf)
        elif name not in source:
            problems.append(f"missing {name}")
            values.append(leaf)
        elif np.shape(source[name]) != np.shape(leaf):
            problems.append(f"{name}: checkpoint {np.shape(source[name])}, model {np.shape(leaf)}")
            values.append(leaf)
        else:
            loaded.append(name)
            values.append(jax.device_put(np.asarray(source[name], leaf.dtype)))  # a copy; jnp.asarray compiles
    used = set(loaded) | set(skipped)
    unexpected = [k for k in source if k not in used and not (pattern is not None and pattern.search(k))]
    problems += [f"unexpected {k}" for k in unexpected]
    if problems:
        raise ValueError(
            f"{path}: checkpoint does not fit the configured model ({len(problems)} problems: "
            f"{'; '.join(problems[:10])}{' ...' if len(problems) > 10 else ''}); check config.model "
            "or exclude tensors with config.init_from.dont_load (e.g. 'cls_head')"
        )
    state = nnx.state(model, model_dir.MODEL_STATE)
    nnx.replace_by_pure_dict(state, jax.tree_util.tree_unflatten(treedef, values))
    nnx.update(model, state)
    return loaded, skipped
