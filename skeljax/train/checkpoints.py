"""Training checkpoints: orbax CheckpointManager in `workdir/checkpoints`, last N plus the best by val/top1.

Each step directory holds three items: `state` (model parameters, BN statistics, optimizer state and step, as a
flat dict keyed by pytree paths), `data` (the input iterator state, JSON) and `meta` (epoch, best accuracy, JSON).
A flat dict of named arrays restores into any template with the same paths, so a checkpoint does not depend on
how NNX or optax lay out their pytrees internally, and a mismatch names the missing, extra or reshaped entries.

Crash safety: orbax writes a step under a temporary name, puts `commit_success.txt` in it, then renames it. A
step directory without that marker (a copy interrupted half way, a file system without atomic rename) is moved
aside as `<step>.incomplete-<time>` when the directory is opened, so it is never restored or mistaken for a
saved step; orbax's temporary directories (a save that never finished) are deleted then too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from skeljax.models.model_dir import legacy_renames

BEST_DIR, FINAL_DIR, CKPT_DIR = "best", "final", "checkpoints"  # in a run's workdir: model exports, training state
BEST_METRIC = "val/top1"
COMMIT_MARKER = "commit_success.txt"  # orbax's marker of a finished step directory
TMP_MARK = ".orbax-checkpoint-tmp"  # in the name of a step directory orbax is still writing


class TrainCheckpointError(ValueError):
    """A training checkpoint that does not fit the current run (other model, optimizer or data settings)."""


def flatten(tree: Any) -> dict[str, Any]:
    """{'params/backbone/gcn/0/...': leaf} from any pytree (paths as '/'-joined keys)."""
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        flat["/".join(_key_name(k) for k in path)] = leaf
    return flat


def unflatten(template: Any, flat: dict[str, Any], where: str = "<checkpoint>") -> Any:
    """Fill `template`'s structure with the values of `flat` (as produced by `flatten`)."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    names = ["/".join(_key_name(k) for k in path) for path, _ in leaves]
    missing = sorted(set(names) - set(flat))
    extra = sorted(set(flat) - set(names))
    if missing or extra:
        raise TrainCheckpointError(
            f"{where}: training state does not match this run; missing {missing[:8]}, unexpected {extra[:8]}"
        )
    return jax.tree_util.tree_unflatten(treedef, [flat[n] for n in names])


def _key_name(k) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def set_aside_incomplete(directory: str) -> tuple[list[str], list[str]]:
    """Delete orbax's temporary step directories and rename step directories that lack the commit marker to
    `<step>.incomplete-<ns>`; returns (renamed, deleted) paths."""
    moved, deleted = [], []
    if not os.path.isdir(directory):
        return moved, deleted
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not os.path.isdir(path):
            continue
        if TMP_MARK in name:  # a save that never finished (orbax would also delete it, but asynchronously)
            shutil.rmtree(path)
            deleted.append(path)
        elif name.isdigit() and not os.path.isfile(os.path.join(path, COMMIT_MARKER)):
            target = f"{path}.incomplete-{time.time_ns()}"
            os.replace(path, target)  # kept for inspection, invisible to orbax (not an integer name)
            moved.append(target)
    return moved, deleted


class RunCheckpoints:
    """Save/restore of the full training state; `keep` latest steps plus the best by val/top1 survive."""

    def __init__(self, directory: str, keep: int = 3):
        self.directory = os.path.abspath(directory)
        self.set_aside: list[str] = []
        self.deleted: list[str] = []
        if jax.process_index() == 0:
            self.set_aside, self.deleted = set_aside_incomplete(self.directory)
        if jax.process_count() > 1:  # nobody lists steps before process 0 has moved the incomplete ones
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("skeljax:set_aside_incomplete")
        policy = ocp.checkpoint_managers.AnyPreservationPolicy(
            [
                ocp.checkpoint_managers.LatestN(n=max(int(keep), 1)),
                ocp.checkpoint_managers.BestN(
                    get_metric_fn=lambda m: m[BEST_METRIC], n=1, keep_checkpoints_without_metrics=False
                ),
            ]
        )
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policy, enable_async_checkpointing=False, create=True, cleanup_tmp_directories=True
        )
        # Handlers registered up front: a fresh process can then read a step's metadata (array names and shapes)
        # before restoring, which is how a checkpoint of another model is recognised.
        handlers = {
            "state": ocp.StandardCheckpointHandler(),
            "data": ocp.JsonCheckpointHandler(),
            "meta": ocp.JsonCheckpointHandler(),
        }
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state: Any, data_state: dict, meta: dict, metrics: dict | None = None) -> None:
        if step in self.manager.all_steps():
            return  # already saved (e.g. an epoch end that is also a step-interval save)
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(flatten(state)),
            data=ocp.args.JsonSave(data_state),
            meta=ocp.args.JsonSave(meta),
        )
        self.manager.save(step, args=args, metrics=metrics, force=True)
        self.manager.wait_until_finished()

    def read_meta(self, step: int) -> dict:
        """The `meta` item of `step` alone (cheap: no arrays are read)."""
        where = os.path.join(self.directory, str(step))
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        except (ValueError, KeyError, FileNotFoundError) as e:
            raise TrainCheckpointError(f"{where}: cannot read the checkpoint's metadata ({e})") from e
        return dict(restored["meta"])

    def restore(self, step: int, template: Any) -> tuple[Any, dict, dict]:
        """(state shaped and sharded like `template`, data iterator state, meta) of `step`."""
        flat_template = flatten(template)
        abstract = {
            k: jax.ShapeDtypeStruct(np.shape(v), v.dtype, sharding=getattr(v, "sharding", None))
            for k, v in flat_template.items()
        }
        where = os.path.join(self.directory, str(step))
        try:
            saved = self.manager.item_metadata(step)["state"]
            renames = {}  # state paths of earlier skeljax versions -> today's
            if saved is not None:
                renames = legacy_renames(saved, abstract, sep="/")
                saved = {renames.get(k, k): v for k, v in saved.items()}
                if set(saved) != set(abstract):
                    unflatten(template, dict.fromkeys(saved), where)  # raises, naming the differences
                _check_shapes(saved, abstract, where)
            restored = self.manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(
                        {old: abstract[new] for old, new in renames.items()}
                        | {k: v for k, v in abstract.items() if k not in renames.values()}
                    ),
                    data=ocp.args.JsonRestore(),
                    meta=ocp.args.JsonRestore(),
                ),
            )
        except (ValueError, KeyError, FileNotFoundError) as e:
            if isinstance(e, TrainCheckpointError):
                raise
            raise TrainCheckpointError(f"{where}: cannot restore the training state ({e})") from e
        state = {renames.get(k, k): v for k, v in restored["state"].items()}
        return unflatten(template, state, where), dict(restored["data"]), dict(restored["meta"])

    def close(self) -> None:
        self.manager.close()


def _check_shapes(saved: dict, abstract: dict, where: str) -> None:
    """Orbax would restore an array into a template of another shape without complaint: refuse first."""
    bad = [
        f"{k}: saved {tuple(saved[k].shape)}, run {tuple(v.shape)}"
        for k, v in sorted(abstract.items())
        if getattr(saved[k], "shape", None) is not None and tuple(saved[k].shape) != tuple(v.shape)
    ]
    if bad:
        raise TrainCheckpointError(
            f"{where}: training state does not match this run ({len(bad)} arrays of "
            f"another shape: {'; '.join(bad[:6])}{' ...' if len(bad) > 6 else ''})"
        )


# ------------------------------------------------------------------------------------------------------------
# Resuming only what belongs to this run, and stopping cleanly on SIGTERM.
# ------------------------------------------------------------------------------------------------------------


def run_signature(config, spec=None) -> dict:
    """What a checkpoint shares with every run that may resume it: the model and the order of training data.

    `spec`: the config's ModelSpec when already resolved (else derived from `config`).
    """
    from skeljax.config import schema

    d = config.data
    data = {
        "dataset": d.dataset,
        "builder_kwargs": d.builder_kwargs.to_dict(),
        "train_split": d.train_split,
        "batch_size": config.batch_size,
        "repeat_times": d.repeat_times,
        "seed": config.seed,
    }
    # Keys that exist only for these set-ups, so that checkpoints of the other runs keep their signature.
    if d.dataset == "pickle":  # the file by name and size: a moved copy resumes, another pickle does not
        path = os.path.expanduser(d.ann_file)
        data["ann_file"] = {
            "name": os.path.basename(path),
            "bytes": os.path.getsize(path) if os.path.isfile(path) else None,
        }
    if config.model.layout == "custom":  # the model spec has only the joint count; the edges define the graph
        data["custom_layout"] = config.model.custom_layout.to_dict()
    spec = spec if spec is not None else schema.model_spec(config)
    return json.loads(json.dumps({"model": spec.to_json(), "data": data}))


def check_resumable(saved: dict | None, want, where: str) -> None:
    """Refuse to resume a checkpoint of another model or data order (`saved`: its stored run signature; `want`:
    this run's signature, or its config)."""
    if not saved:
        return  # older checkpoints carry no signature; restore() still compares every array's name and shape
    want = want if isinstance(want, Mapping) else run_signature(want)
    diffs = [
        f"{part}.{k}: checkpoint {saved.get(part, {}).get(k)!r}, config {v!r}"
        for part in ("model", "data")
        for k, v in want[part].items()
        if saved.get(part, {}).get(k) != v
    ]
    if diffs:
        what = "another model" if any(d.startswith("model.") for d in diffs) else "another training set-up"
        raise TrainCheckpointError(
            f"{where}: the workdir holds a checkpoint of {what} ({'; '.join(diffs[:8])}). Use a new --workdir "
            "(or start from that run's best/ model with config.init_from.path), or the config it was trained with"
        )


class StopRequest:
    """SIGTERM (preemption, scancel, eviction) asks the training loop to checkpoint at the next step and stop."""

    def __init__(self, signals=(signal.SIGTERM,)):
        self.received: str | None = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            for s in signals:
                self._previous[s] = signal.signal(s, self._handle)

    def _handle(self, signum, frame) -> None:
        self.received = signal.Signals(signum).name

    def requested(self) -> bool:
        """Whether any process got the signal; every process must call this at the same steps (collective)."""
        flag = self.received is not None
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            flag = bool(np.any(multihost_utils.process_allgather(np.array([flag], np.int32))))
        return flag

    def close(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
