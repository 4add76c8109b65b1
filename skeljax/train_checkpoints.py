"""Training checkpoints: orbax CheckpointManager in `workdir/checkpoints`, last N plus the best by val/top1.

Each step directory holds three items: `state` (model parameters, BN statistics, optimizer state and step, as a
flat dict keyed by pytree paths), `data` (the input iterator state, JSON) and `meta` (epoch, best accuracy, JSON).
A flat dict of named arrays restores into any template with the same paths, so a checkpoint does not depend on
how NNX or optax lay out their pytrees internally, and a mismatch names the missing or extra entries.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

BEST_METRIC = "val/top1"


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
        raise TrainCheckpointError(f"{where}: training state does not match this run; missing {missing[:8]}, "
                                   f"unexpected {extra[:8]}")
    return jax.tree_util.tree_unflatten(treedef, [flat[n] for n in names])


def _key_name(k) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


class RunCheckpoints:
    """Save/restore of the full training state; `keep` latest steps plus the best by val/top1 survive."""

    def __init__(self, directory: str, keep: int = 3):
        self.directory = os.path.abspath(directory)
        policy = ocp.checkpoint_managers.AnyPreservationPolicy([
            ocp.checkpoint_managers.LatestN(n=max(int(keep), 1)),
            ocp.checkpoint_managers.BestN(get_metric_fn=lambda m: m[BEST_METRIC], n=1,
                                          keep_checkpoints_without_metrics=False),
        ])
        options = ocp.CheckpointManagerOptions(preservation_policy=policy, enable_async_checkpointing=False,
                                               create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_names=("state", "data", "meta"))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state: Any, data_state: dict, meta: dict, metrics: dict | None = None) -> None:
        if step in self.manager.all_steps():
            return  # already saved (e.g. an epoch end that is also a step-interval save)
        args = ocp.args.Composite(state=ocp.args.StandardSave(flatten(state)),
                                  data=ocp.args.JsonSave(data_state), meta=ocp.args.JsonSave(meta))
        self.manager.save(step, args=args, metrics=metrics, force=True)
        self.manager.wait_until_finished()

    def restore(self, step: int, template: Any) -> tuple[Any, dict, dict]:
        """(state shaped and sharded like `template`, data iterator state, meta) of `step`."""
        flat_template = flatten(template)
        abstract = {k: jax.ShapeDtypeStruct(np.shape(v), v.dtype, sharding=getattr(v, "sharding", None))
                    for k, v in flat_template.items()}
        where = os.path.join(self.directory, str(step))
        try:
            saved = self.manager.item_metadata(step)["state"]
            if saved is not None and set(saved) != set(abstract):
                unflatten(template, dict.fromkeys(saved), where)  # raises, naming the differences
            restored = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore(),
                meta=ocp.args.JsonRestore()))
        except (ValueError, KeyError, FileNotFoundError) as e:
            if isinstance(e, TrainCheckpointError):
                raise
            raise TrainCheckpointError(f"{where}: cannot restore the training state ({e})") from e
        return unflatten(template, dict(restored["state"]), where), dict(restored["data"]), dict(restored["meta"])

    def close(self) -> None:
        self.manager.close()
