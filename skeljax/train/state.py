"""The model of a run, its optimizer, and the split of the model into a jit-able training state."""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from skeljax import sharding
from skeljax.config.run_config import RunConfig, as_run
from skeljax.models.stgcn import Recognizer
from skeljax.train import optim
from skeljax.train.init_from import load_init
from skeljax.train.metrics_writer import console


def create_model(run: RunConfig | ml_collections.ConfigDict) -> Recognizer:
    """A freshly initialised recognizer (seeded by the run's seed), then its `init_from` if given."""
    run = as_run(run)
    # A custom layout's graph comes from the config; the model spec's layout is then 'checkpoint' and the graph is
    # saved with it.
    model = Recognizer(run.spec, A=run.graph, rngs=nnx.Rngs(params=run.seed, dropout=run.seed + 1))
    if run.compute_dtype != "float32":
        if not hasattr(model, "set_compute_dtype"):
            raise ValueError(f"config.compute_dtype={run.compute_dtype!r}: this model computes in float32 only")
        model.set_compute_dtype(run.compute_dtype)
    init = run.init_from
    if init.path:
        loaded, skipped = load_init(model, init.path, init.dont_load, trusted=init.trusted)
        console(
            f"init_from {init.path}: loaded {len(loaded)} tensors, kept the fresh initialisation of "
            f"{len(skipped)} ({', '.join(skipped[:6])}{' ...' if len(skipped) > 6 else ''})"
        )
    return model


def make_tx(run: RunConfig | ml_collections.ConfigDict, total_steps: int, steps_per_epoch: int):
    """(optax SGD as torch, lr schedule) for the run."""
    o = as_run(run).optimizer
    schedule = optim.make_lr_schedule(
        o.schedule,
        o.lr,
        total_steps,
        steps_per_epoch=steps_per_epoch,
        milestones_epochs=o.milestones_epochs,
        gamma=o.gamma,
        min_lr=o.min_lr,
    )
    tx = optim.make_optimizer(schedule, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    return tx, schedule


class TrainParts:
    """The static halves of a model (train/eval graph definitions, non-trained state) and its live state."""

    def __init__(self, model: Recognizer, tx):
        model.train()
        self.graphdef_train, params, stats, self.rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
        model.eval()
        self.graphdef_eval = nnx.split(model, nnx.Param, nnx.BatchStat, ...)[0]
        self.has_dropout = bool(jax.tree.leaves(nnx.state(model, nnx.RngState)))
        self.state = {
            "params": params,
            "batch_stats": stats,
            "opt_state": tx.init(params),
            "step": jnp.zeros((), jnp.int32),
        }

    @property
    def remat(self) -> bool:
        """Whether the training graph rematerialises its blocks (`Recognizer.set_remat`)."""
        return bool(self._training_model().backbone.remat)

    def rematerialised(self, enabled: bool) -> TrainParts:
        """These parts with the training graph rematerialised or not (the choice is static: part of the graph
        definition); the state is shared, not copied."""
        model = self._training_model()
        model.set_remat(enabled)
        other = copy.copy(self)
        other.graphdef_train = nnx.split(model, nnx.Param, nnx.BatchStat, ...)[0]
        return other

    def _training_model(self) -> Recognizer:
        return nnx.merge(self.graphdef_train, self.state["params"], self.state["batch_stats"], self.rest, copy=True)

    def model(self, state: dict, mode: str = "eval") -> Recognizer:
        """A Recognizer holding (host copies of) `state`'s parameters and statistics."""
        g = self.graphdef_eval if mode == "eval" else self.graphdef_train
        host = jax.tree.map(np.asarray, sharding.to_host({"p": state["params"], "s": state["batch_stats"]}))
        return nnx.merge(g, host["p"], host["s"], self.rest, copy=True)

    def num_params(self) -> int:
        return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(self.state["params"]))
