"""skeljax model checkpoints: a directory with `model_spec.json` and an orbax checkpoint of the model state.

Layout of a model directory (written by `save_model`, by `scripts/convert_checkpoint.py` and as `best/` and
`final/` exports of a training run):

    DIR/model_spec.json   # skeljax.models.stgcn.ModelSpec as JSON, plus the skeljax version and the source file
                          # and, under "test", the settings skeljax.predict tests it with (skeljax.predict.settings)
    DIR/state/            # orbax StandardCheckpointer: parameters, BatchNorm statistics and graph buffers

A directory is written under a temporary name and renamed when complete, so a crash never leaves a directory
that looks finished.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import jax
import numpy as np
from flax import nnx

import skeljax
from skeljax.io.atomic import atomic_directory
from skeljax.models import state_dict
from skeljax.models.layers import Buffer
from skeljax.models.stgcn import ModelSpec, Recognizer, abstract_recognizer, seed_rng_streams

SPEC_FILE = "model_spec.json"
STATE_DIR = "state"
MODEL_STATE = nnx.Any(nnx.Param, nnx.BatchStat, Buffer)
TEST_KEY = "test"  # model_spec.json: the test-time settings (skeljax.predict.settings); older directories lack it


class SkeljaxCheckpointError(ValueError):
    """A skeljax checkpoint directory that is missing, incomplete or does not fit the model."""


def model_state(model: nnx.Module) -> dict[str, Any]:
    """Parameters, BN statistics and buffers as a pure nested dict of arrays."""
    return nnx.to_pure_dict(nnx.state(model, MODEL_STATE))


def save_model(
    directory: str,
    model: Recognizer,
    *,
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
    this_process_only: bool = False,
) -> str:
    """Write `model` to `directory` atomically; returns the absolute path.

    In a multi-process run orbax meets every process at barriers while saving; `this_process_only=True` writes
    from the calling process alone (the others must not call), as the trainer does for its best/ and final/ exports.
    """
    directory = os.path.abspath(directory)
    if os.path.exists(directory) and not overwrite:
        raise FileExistsError(f"{directory} already exists; pass overwrite=True (--overwrite) to replace it")
    with atomic_directory(directory) as tmp:
        meta = {"spec": model.spec.to_json(), "skeljax_version": skeljax.__version__}
        meta.update(extra or {})
        with open(os.path.join(tmp, SPEC_FILE), "w") as f:
            json.dump(meta, f, indent=2)
        state = jax.tree.map(np.asarray, model_state(model))
        import orbax.checkpoint as ocp  # here, not at the top: a .pth prediction starts ~0.15 s sooner without it

        kwargs = {}
        if this_process_only and jax.process_count() > 1:
            me = jax.process_index()
            kwargs["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
                primary_host=me, active_processes={me}
            )
        with ocp.StandardCheckpointer(**kwargs) as ckptr:
            ckptr.save(os.path.join(tmp, STATE_DIR), state)
            ckptr.wait_until_finished()
    return directory


def read_spec(directory: str) -> tuple[ModelSpec, dict[str, Any]]:
    path = os.path.join(directory, SPEC_FILE)
    if not os.path.isdir(directory):
        raise SkeljaxCheckpointError(f"{directory}: no such skeljax checkpoint directory")
    if not os.path.isfile(path):
        raise SkeljaxCheckpointError(f"{directory}: not a skeljax model directory (no {SPEC_FILE})")
    try:
        with open(path) as f:
            meta = json.load(f)
        return ModelSpec.from_json(meta["spec"]), meta
    except (ValueError, KeyError, TypeError) as e:
        raise SkeljaxCheckpointError(f"{path}: malformed model spec ({e})") from e


def abstract_model(spec: ModelSpec) -> Recognizer:
    """A model with the right structure for `spec`, its arrays not yet filled in (restore_into fills them).

    Built abstractly (`abstract_recognizer`): initialising real random weights only to overwrite them costs ~10 s
    of small compilations on a CPU. The graph is a placeholder when it comes from a checkpoint.
    """
    A = None
    if spec.graph_in_weights:
        A = np.zeros((3, spec.num_joints, spec.num_joints), np.float32)
    return abstract_recognizer(spec, A)


def restore_into(model: nnx.Module, state_dir: str) -> None:
    """Restore an orbax model state into `model` in place, checking the tree and shapes.

    A state saved with the positional paths of earlier versions is renamed on the way in (`legacy_renames`).
    """
    import orbax.checkpoint as ocp

    state_dir = os.path.abspath(state_dir)  # orbax reads no item metadata through a relative path
    leaves, treedef = jax.tree_util.tree_flatten_with_path(model_state(model))
    want = {_dotted(p): jax.ShapeDtypeStruct(x.shape, x.dtype) for p, x in leaves}
    try:
        with ocp.StandardCheckpointer() as ckptr:
            metadata = ckptr.metadata(state_dir)
            tree = getattr(metadata, "item_metadata", metadata)
            tree = getattr(tree, "tree", tree)
            saved = {_dotted(p): tuple(v.shape) for p, v in jax.tree_util.tree_leaves_with_path(tree)}
            renames = legacy_renames(saved, want)
            _check_saved_shapes({renames.get(k, k): v for k, v in saved.items()}, want, state_dir)
            # Restored in the saved tree's own structure, then matched to the model by (renamed) dotted names.
            abstract = jax.tree_util.tree_map_with_path(
                lambda p, m: jax.ShapeDtypeStruct(m.shape, want[renames.get(_dotted(p), _dotted(p))].dtype), tree
            )
            restored = ckptr.restore(state_dir, abstract)
    except SkeljaxCheckpointError:
        raise
    except (ValueError, KeyError, FileNotFoundError) as e:
        raise SkeljaxCheckpointError(f"{state_dir}: checkpoint does not match the model ({e})") from e
    by_name = {renames.get(_dotted(p), _dotted(p)): v for p, v in jax.tree_util.tree_leaves_with_path(restored)}
    state = nnx.state(model, MODEL_STATE)
    nnx.replace_by_pure_dict(state, jax.tree_util.tree_unflatten(treedef, [by_name[_dotted(p)] for p, _ in leaves]))
    nnx.update(model, state)


def _dotted(path) -> str:
    """'backbone.blocks.0.spatial.A' from a pytree path (saved trees key list items by '0', live states by 0)."""
    return ".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def legacy_renames(saved: Iterable[str], wanted: Iterable[str], sep: str = ".") -> dict[str, str]:
    """{saved name: wanted name} for model state written before skeljax named its submodules.

    Those versions stored each tensor under its PYSKL key as path ('backbone/gcn/0/tcn/branches/0/3/conv/weight'
    for today's 'backbone/blocks/0/temporal/dilated/0/conv/weight'). A wanted name that is not saved is renamed
    from the saved name with the PYSKL key in place of its model part (from 'backbone' or 'head' on), so prefixed
    and suffixed names (a training state's 'params/.../value' and optimizer moments) migrate too. Used by model directories and by
    the trainer's checkpoints.
    """
    saved = set(saved)
    renames = {}
    for name in wanted:
        parts = name.split(sep)
        root = next((i for i, p in enumerate(parts) if p in ("backbone", "head")), None)
        if name in saved or root is None:
            continue
        for end in range(len(parts), root, -1):  # the model part, before any suffix such as a State's 'value'
            try:
                key = state_dict.pyskl_key(".".join(parts[root:end]))
                break
            except KeyError:
                continue
        else:
            continue
        old = sep.join(parts[:root] + key.split(".") + parts[end:])
        if old in saved:
            renames[old] = name
    return renames


def _check_saved_shapes(saved: dict[str, tuple], want: dict[str, Any], where: str) -> None:
    """Orbax restores into a differently shaped target without complaint: compare names and shapes first."""
    want = {k: tuple(v.shape) for k, v in want.items()}
    problems = [f"missing {k}" for k in sorted(set(want) - set(saved))]
    problems += [f"unexpected {k}" for k in sorted(set(saved) - set(want))]
    problems += [
        f"{k}: saved {saved[k]}, model {want[k]}" for k in sorted(set(saved) & set(want)) if saved[k] != want[k]
    ]
    if problems:
        raise SkeljaxCheckpointError(
            f"{where}: checkpoint does not match the model ({len(problems)} problems: " + "; ".join(problems[:10]) + ")"
        )


def load_model(directory: str) -> Recognizer:
    """Load a skeljax model directory; returns the model in eval mode."""
    spec, _ = read_spec(directory)
    model = abstract_model(spec)
    state_dir = os.path.join(directory, STATE_DIR)
    if not os.path.isdir(state_dir):
        raise SkeljaxCheckpointError(f"{directory}: incomplete checkpoint (no {STATE_DIR}/ directory)")
    restore_into(model, state_dir)
    seed_rng_streams(model)  # dropout streams, never part of a checkpoint
    model.eval()
    return model
