"""Training, validation and test of ST-GCN / ST-GCN++ (spec section 6), importable from a notebook.

`train_and_evaluate(config, workdir)` reads top to bottom in stages: logging, mesh, input pipeline, model and
optimizer, sharding, update step, checkpoint, evals, loop. Data parallelism is one `jax.jit` over a ('data',)
mesh of every device: the state is replicated, batches are sharded on their first axis, and the update step
donates the state. BatchNorm statistics are computed per group of `model.bn_group` samples (PYSKL: 16 videos per
GPU); the groups are defined on global batch rows, so the result does not depend on the number of devices.
A run restarted with the same workdir resumes from its last checkpoint, data iterator included; SIGTERM makes
the loop save a checkpoint at the next step and return (docs/reliability.md).
"""

from __future__ import annotations

import os
import re
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from skeljax import checkpoint as model_ckpt
from skeljax import config_base, sharding
from skeljax.train import metrics_writer as logging_utils
from skeljax.train import optim
from skeljax import evaluate as evaluation
from skeljax.data import input_pipeline
from skeljax.data.pipelines import make_pipeline
from skeljax.models.stgcn import Recognizer
from skeljax.train.checkpoints import (
    RunCheckpoints,
    StopRequest,
    check_resumable,
    run_signature,
)

BEST_DIR, FINAL_DIR, CKPT_DIR = "best", "final", "checkpoints"


# ------------------------------------------------------------------------------------------------------------
# Data.
# ------------------------------------------------------------------------------------------------------------

def load_split(config: ml_collections.ConfigDict, split: str):
    """Random-access annotations of one split of `config.data.dataset` (built on first use), or of the
    annotation pickle `config.data.ann_file` when the dataset is 'pickle' (validated once against the config)."""
    from skeljax.data import pickle_source
    from skeljax.data.tfds_builders import load_source

    d = config.data
    if d.dataset == pickle_source.DATASET:  # every process reads the file itself: nothing to build
        return pickle_source.load_split(d.ann_file, split, config_base.data_layout(config), config.model.num_classes)

    def load():
        try:
            return load_source(d.dataset, split, os.path.expanduser(d.data_dir),
                               manual_dir=os.path.expanduser(d.manual_dir) if d.manual_dir else None,
                               **dict(d.builder_kwargs))
        except AssertionError as e:  # TFDS asserts on a missing/empty manual_dir; it is a missing path
            if "Manual directory" not in str(e):
                raise
            raise FileNotFoundError(f"{d.dataset}: {e}") from e

    if jax.process_count() == 1:
        source = load()
    else:  # process 0 builds the dataset on first use; the others open it once it is complete
        from jax.experimental import multihost_utils

        source = load() if jax.process_index() == 0 else None
        multihost_utils.sync_global_devices(f"skeljax:dataset {d.dataset} {split}")
        source = source if source is not None else load()
    check_layout(source, config_base.data_layout(config), f"{d.dataset}:{split} ({os.path.expanduser(d.data_dir)})")
    return source


def check_layout(source, layout, where: str) -> None:
    """Data of another skeleton layout than the config's (2D HRNet for a 3D model...) fails here, not in XLA."""
    from skeljax.data.transforms import layout_name, raw_layout

    if len(source) == 0:
        return
    want, layout = raw_layout(layout)[:2], layout_name(layout)
    kp = np.shape(source[0]["keypoint"])
    if tuple(kp[-2:]) != want:
        raise ValueError(f"{where}: config.model.layout={layout!r} expects {want[0]} joints x {want[1]} channels, "
                         f"got {kp[-2]} x {kp[-1]} (keypoint shape {kp}); use a config for this data "
                         "(e.g. '..._2d' datasets with layout 'coco') or the matching dataset")


def make_transform(config: ml_collections.ConfigDict, mode: str):
    """The per-sample pipeline of `mode` ('train' 1 clip, 'val' val_num_clips, 'test' test_num_clips)."""
    d = config.data
    clips = {"train": 1, "val": d.val_num_clips, "test": d.test_num_clips}[mode]
    return make_pipeline(config_base.data_layout(config), d.feat, d.clip_len, clips, mode, recipe=d.recipe)


# ------------------------------------------------------------------------------------------------------------
# Model, initialisation and optimizer.
# ------------------------------------------------------------------------------------------------------------

def create_model(config: ml_collections.ConfigDict) -> Recognizer:
    """A freshly initialised recognizer (seeded by config.seed), then `config.init_from` if given."""
    # A custom layout's graph comes from the config; the spec then says 'checkpoint' and the graph is saved with it.
    model = Recognizer(config_base.model_spec(config), A=config_base.model_graph(config),
                       rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1))
    if config.compute_dtype != "float32":
        if not hasattr(model, "set_compute_dtype"):
            raise ValueError(f"config.compute_dtype={config.compute_dtype!r}: this model computes in float32 only")
        model.set_compute_dtype(config.compute_dtype)
    if config.init_from.path:
        loaded, skipped = load_init(model, config.init_from.path, config.init_from.dont_load,
                                    trusted=config.init_from.trusted)
        logging_utils.console(f"init_from {config.init_from.path}: loaded {len(loaded)} tensors, kept the fresh "
                              f"initialisation of {len(skipped)} ({', '.join(skipped[:6])}"
                              f"{' ...' if len(skipped) > 6 else ''})")
    return model


def load_source_model(path: str, *, trusted: bool = False) -> Recognizer:
    """A skeljax model directory or a PyTorch .pth (PYSKL / MMAction2, through the converter)."""
    path = os.path.expanduser(path)
    if os.path.isdir(path):
        return model_ckpt.load_model(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint (expected a skeljax model directory or a .pth file)")
    from skeljax.models.convert import load_pytorch_checkpoint

    return load_pytorch_checkpoint(path, trusted=trusted)


def flat_model_state(model: nnx.Module) -> dict[str, np.ndarray]:
    """{'backbone.gcn.0.gcn.A': array, ...}: parameters, BN statistics and buffers under PyTorch-style names."""
    pure = model_ckpt.model_state(model)
    return {".".join(str(getattr(k, "key", k)) for k in path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(pure)[0]}


def load_init(model: nnx.Module, path: str, dont_load: str = "", *, trusted: bool = False
              ) -> tuple[list[str], list[str]]:
    """Copy a checkpoint's tensors into `model`, except names matching the `dont_load` regex (e.g. a new head).

    Every other tensor must exist in the checkpoint with the same shape; returns (loaded, not loaded) names.
    """
    source = flat_model_state(load_source_model(path, trusted=trusted))
    pattern = re.compile(dont_load) if dont_load else None
    pure = model_ckpt.model_state(model)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(pure)
    loaded, skipped, problems, values = [], [], [], []
    for p, leaf in leaves:
        name = ".".join(str(getattr(k, "key", k)) for k in p)
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
            values.append(jnp.asarray(source[name], leaf.dtype))
    used = set(loaded) | set(skipped)
    unexpected = [k for k in source if k not in used and not (pattern is not None and pattern.search(k))]
    problems += [f"unexpected {k}" for k in unexpected]
    if problems:
        raise ValueError(f"{path}: checkpoint does not fit the configured model ({len(problems)} problems: "
                         f"{'; '.join(problems[:10])}{' ...' if len(problems) > 10 else ''}); check config.model "
                         "or exclude tensors with config.init_from.dont_load (e.g. 'cls_head')")
    state = nnx.state(model, model_ckpt.MODEL_STATE)
    nnx.replace_by_pure_dict(state, jax.tree_util.tree_unflatten(treedef, values))
    nnx.update(model, state)
    return loaded, skipped


def learning_rate(config: ml_collections.ConfigDict) -> float:
    """config.optimizer.lr, or the linear scaling rule base_lr * batch_size / reference_batch when it is < 0."""
    o = config.optimizer
    return float(o.lr) if o.lr >= 0 else optim.scaled_lr(o.base_lr, config.batch_size, o.reference_batch)


def make_tx(config: ml_collections.ConfigDict, total_steps: int, steps_per_epoch: int):
    """(optax SGD as torch, lr schedule) for the run."""
    o = config.optimizer
    schedule = optim.make_lr_schedule(o.schedule, learning_rate(config), total_steps, steps_per_epoch=steps_per_epoch,
                                      milestones_epochs=tuple(o.milestones_epochs), gamma=o.gamma, min_lr=o.min_lr)
    tx = optim.make_optimizer(schedule, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    return tx, schedule


# ------------------------------------------------------------------------------------------------------------
# Update step.
# ------------------------------------------------------------------------------------------------------------

class TrainParts:
    """The static halves of a model (train/eval graph definitions, non-trained state) and its live state."""

    def __init__(self, model: Recognizer, tx):
        model.train()
        self.graphdef_train, params, stats, self.rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
        model.eval()
        self.graphdef_eval = nnx.split(model, nnx.Param, nnx.BatchStat, ...)[0]
        self.has_dropout = bool(jax.tree.leaves(nnx.state(model, nnx.RngState)))
        self.state = {"params": params, "batch_stats": stats, "opt_state": tx.init(params),
                      "step": jnp.zeros((), jnp.int32)}

    def model(self, state: dict, mode: str = "eval") -> Recognizer:
        """A Recognizer holding (host copies of) `state`'s parameters and statistics."""
        g = self.graphdef_eval if mode == "eval" else self.graphdef_train
        host = jax.tree.map(np.asarray, sharding.to_host({"p": state["params"], "s": state["batch_stats"]}))
        return nnx.merge(g, host["p"], host["s"], self.rest, copy=True)


def make_train_step(parts: TrainParts, tx, schedule, seed: int):
    """Pure train_step(state, batch) -> (state, metrics): cross-entropy, SGD update, new BN statistics."""
    dropout_key = jax.random.fold_in(jax.random.key(seed), 0x5EED)

    def train_step(state: dict, batch: dict) -> tuple[dict, dict]:
        x, labels = batch["keypoint"][:, 0], batch["label"]

        def loss_fn(params):
            model = nnx.merge(parts.graphdef_train, params, state["batch_stats"], parts.rest, copy=True)
            if parts.has_dropout:  # a key per step: resuming reproduces the masks of an uninterrupted run
                nnx.reseed(model, dropout=jax.random.fold_in(dropout_key, state["step"]))
            logits = model(x).astype(jnp.float32)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return loss, (logits, nnx.state(model, nnx.BatchStat))

        (loss, (logits, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics = {"train/loss": loss, "train/top1": jnp.mean(jnp.argmax(logits, -1) == labels),
                   "train/lr": schedule(state["step"]), "train/grad_norm": optax.tree.norm(grads),
                   "train/param_norm": optax.tree.norm(params), "train/update_norm": optax.tree.norm(updates)}
        return {"params": params, "batch_stats": stats, "opt_state": opt_state, "step": state["step"] + 1}, metrics

    return train_step


def jit_train_step(train_step, mesh):
    """jax.jit with explicit shardings: state replicated and donated, batch sharded over 'data'."""
    repl, data = sharding.replicated(mesh), input_pipeline.data_sharding(mesh)
    return jax.jit(train_step, in_shardings=(repl, data), out_shardings=(repl, repl), donate_argnums=0)


# ------------------------------------------------------------------------------------------------------------
# The training run.
# ------------------------------------------------------------------------------------------------------------

def export_model(directory: str, model: Recognizer, extra: dict) -> None:
    """Write a best/ or final/ model directory from process 0 (a no-op on the others)."""
    if not logging_utils.is_main_process():
        return
    model_ckpt.save_model(directory, model, overwrite=True, extra=extra, this_process_only=True)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
    """Train with validation every `eval_every_epochs`, checkpoints, best/final exports, then test."""
    config_base.validate(config)
    workdir = os.path.abspath(os.path.expanduser(workdir))
    log = logging_utils.console

    # --- Workdir: writable, and any checkpoint in it is one of this run (checked before anything is written) ---
    logging_utils.check_writable(workdir)
    ckpts = RunCheckpoints(os.path.join(workdir, CKPT_DIR), config.checkpoint.keep)
    for path in ckpts.set_aside:
        log(f"warning: {path}: an incomplete checkpoint (no commit marker, e.g. a crash while saving) was moved "
            "aside and is not used")
    for path in ckpts.deleted:
        log(f"deleted {path}: a checkpoint whose saving was interrupted")
    start = ckpts.latest_step()
    if start is not None:
        where = os.path.join(ckpts.directory, str(start))
        check_resumable(ckpts.read_meta(start).get("run"), config, where)

    # --- Mesh ------------------------------------------------------------------------------------------------
    mesh = sharding.make_mesh()
    per_device = sharding.check_batch(config.batch_size, mesh)
    sharding.check_batch(config.eval_batch_size, mesh, "config.eval_batch_size")
    layout = sharding.bn_groups_per_device(config.batch_size, config.model.bn_group, mesh)
    log(f"{jax.process_count()} process(es), {mesh.shape['data']} device(s) ({jax.devices()[0].platform}); "
        f"batch {config.batch_size} = {per_device} per device; BN groups of {config.model.bn_group or 'all'} "
        f"samples ({layout})")

    # --- Input pipeline --------------------------------------------------------------------------------------
    train_source = load_split(config, config.data.train_split)
    val_source = load_split(config, config.data.val_split)
    evaluation.check_labels(train_source, config.model.num_classes, config.data.dataset)
    d = config.data
    train_iter = input_pipeline.make_train_iterator(
        train_source, make_transform(config, "train"), config.batch_size, config.seed, mesh,
        repeat_times=d.repeat_times, num_workers=d.num_workers, read_threads=d.read_threads)
    steps_per_epoch = train_iter.steps_per_epoch
    total_steps = config.num_epochs * steps_per_epoch
    train_iter.num_steps = total_steps
    val_batches = input_pipeline.make_eval_batches(val_source, make_transform(config, "val"), config.eval_batch_size,
                                                   mesh, num_workers=d.num_workers, read_threads=d.read_threads)
    log(f"{config.data.dataset}: {len(train_source)} train x {d.repeat_times} repeats = {steps_per_epoch} steps per "
        f"epoch, {total_steps} steps; {len(val_source)} val samples")

    # --- Model and optimizer ---------------------------------------------------------------------------------
    model = create_model(config)
    tx, schedule = make_tx(config, total_steps, steps_per_epoch)
    parts = TrainParts(model, tx)
    log(f"model {config.model.family} ({model.spec.layout}, {model.spec.num_classes} classes): "
        f"{sum(int(np.prod(x.shape)) for x in jax.tree.leaves(parts.state['params'])):,} parameters; "
        f"lr {learning_rate(config):g} ({config.optimizer.schedule})")

    o = config.optimizer
    if o.lr >= 0 and not np.isclose(o.lr, optim.scaled_lr(o.base_lr, config.batch_size, o.reference_batch)):
        log(f"note: optimizer.lr {o.lr:g} is not base_lr x batch_size / reference_batch = "
            f"{optim.scaled_lr(o.base_lr, config.batch_size, o.reference_batch):g} (a command-line batch size does "
            "not rescale an lr fixed in the config; set --config.optimizer.lr=-1 for the linear scaling rule)")

    # --- Sharding --------------------------------------------------------------------------------------------
    state = sharding.put_replicated(parts.state, mesh)

    # --- Update step -----------------------------------------------------------------------------------------
    train_step = jit_train_step(make_train_step(parts, tx, schedule, config.seed), mesh)

    # --- Checkpoint ------------------------------------------------------------------------------------------
    best = {"val/top1": -1.0, "step": -1}
    pending: list[dict] = []  # per-step metrics of the current logging window
    if start is not None:
        state, data_state, meta = ckpts.restore(start, state)
        train_iter.set_state(data_state)
        best = meta.get("best", best)
        pending = [{k: np.float32(v) for k, v in m.items()} for m in meta.get("pending", [])]
        log(f"resumed from {ckpts.directory}/{start} (epoch {start // steps_per_epoch}, best val/top1 "
            f"{best['val/top1']:.4f})")
    step = int(start or 0)
    signature = run_signature(config)

    def save(step_: int, val: dict | None) -> None:
        # The unlogged part of the logging window goes with the checkpoint, so a resumed run logs the same means.
        window = [{k: float(v) for k, v in m.items()} for m in jax.device_get(pending)]
        meta = {"step": step_, "epoch": step_ // steps_per_epoch, "best": best, "val": val or {}, "run": signature,
                "pending": window}
        ckpts.save(step_, state, train_iter.get_state(), meta, metrics=val)

    # --- Logging: only now that data, model and checkpoint are known to fit is the workdir written -----------
    logging_utils.write_config(workdir, config)
    writer = logging_utils.MetricWriter(workdir)
    if start is not None:
        dropped = writer.discard_after(start)  # lines a killed run wrote after its last checkpoint
        if dropped:
            log(f"metrics.jsonl: dropped {dropped} line(s) written after the checkpoint of step {start}")

    # --- Evals -----------------------------------------------------------------------------------------------
    predict = evaluation.make_predict_fn(parts.graphdef_eval, parts.rest, mesh, "prob")

    def validate(step_: int) -> dict[str, float]:
        pred = evaluation.predict_split(predict, state["params"], state["batch_stats"], val_batches, val_source,
                                      f"val {step_}")
        result = evaluation.classification_metrics(pred, "val")
        writer.write(step_, result)
        return result

    # --- Loop ------------------------------------------------------------------------------------------------
    stop = min(total_steps, config.stop_after_steps) if config.stop_after_steps > 0 else total_steps
    meter = logging_utils.Throughput(step, total_steps, config.batch_size)
    stop_request = StopRequest()
    while step < stop:
        if stop_request.requested():
            break
        batch = next(train_iter)
        state, metrics = train_step(state, {"keypoint": batch["keypoint"], "label": batch["label"]})
        step += 1
        pending.append(metrics)
        if meter.t0 is None:
            jax.block_until_ready(metrics)
            meter.start(step)
        epoch_end = step % steps_per_epoch == 0
        if step % config.log_every_steps == 0 or epoch_end or step == stop:
            means = {k: float(np.mean([m[k] for m in jax.device_get(pending)])) for k in pending[0]}
            pending = []
            rate, eta = meter.report(step)
            writer.write(step, {**means, "train/samples_per_sec": rate} if np.isfinite(rate) else means)
            log(f"step {step}/{total_steps} (epoch {(step - 1) // steps_per_epoch + 1}/{config.num_epochs})  "
                f"loss {means['train/loss']:.4f}  top1 {means['train/top1']:.3f}  lr {means['train/lr']:.5f}  "
                f"| {rate:.1f} samples/s  ETA {logging_utils.format_duration(eta)}")
        t_other = time.perf_counter()
        val = None
        epoch = step // steps_per_epoch
        if epoch_end and (epoch % config.eval_every_epochs == 0 or step == total_steps):
            val = validate(step)
            improved = val["val/top1"] > best["val/top1"]
            if improved:
                best = {"val/top1": val["val/top1"], "step": step}
                best_model = parts.model(state)  # on every process: gathering is collective
                export_model(os.path.join(workdir, BEST_DIR), best_model, {"step": step, **val})
            log(f"epoch {epoch} val: {evaluation.summary(val)}  (best top1 {best['val/top1']:.4f} at step "
                f"{best['step']}{', new best' if improved else ''})")
        every = config.checkpoint.every_steps
        if ((epoch_end and epoch % config.checkpoint.every_epochs == 0) or (every and step % every == 0)
                or step == stop or val is not None):
            save(step, val)
        meter.pause(time.perf_counter() - t_other)
    train_iter.close()

    results: dict[str, float] = {"step": step, "best/val_top1": best["val/top1"]}
    preempted = stop_request.requested()
    stop_request.close()
    if preempted and step < stop:
        save(step, None)  # a no-op when this step was just saved
        log(f"{stop_request.received or 'a stop signal on another process'}: saved the checkpoint of step {step} "
            f"in {ckpts.directory}; exiting (run the same command to resume)")
    if step < total_steps:
        if not preempted:
            log(f"stopped at step {step} of {total_steps} (config.stop_after_steps); run again to resume")
        ckpts.close()
        writer.close()
        return {**results, "preempted": float(preempted)}
    final_model = parts.model(state)
    export_model(os.path.join(workdir, FINAL_DIR), final_model, {"step": step})
    ckpts.close()
    if preempted:  # training is complete and saved; the test runs when the same command is run again
        log(f"{stop_request.received or 'a stop signal on another process'}: training finished at step {step}; "
            "exiting before the test (run the same command to test)")
        writer.close()
        return {**results, "preempted": 1.0}

    # --- Test ------------------------------------------------------------------------------------------------
    if config.test_last:
        results.update({f"last/{k}": v for k, v in _test_model(config, workdir, final_model, "last", step,
                                                               writer, mesh).items()})
    if config.test_best and os.path.isdir(os.path.join(workdir, BEST_DIR)):
        best_model = model_ckpt.load_model(os.path.join(workdir, BEST_DIR))
        results.update({f"best/{k}": v for k, v in _test_model(config, workdir, best_model, "best", step, writer,
                                                               mesh).items()})
    writer.close()
    return results


# ------------------------------------------------------------------------------------------------------------
# Evaluation and test entry points.
# ------------------------------------------------------------------------------------------------------------

def _test_model(config, workdir, model, tag, step, writer, mesh, split=None, mode="test") -> dict[str, float]:
    split = split or (config.data.test_split if mode == "test" else config.data.val_split)
    source = load_split(config, split)
    evaluation.check_labels(source, model.spec.num_classes, f"{config.data.dataset}:{split}")
    bs = config.test_batch_size if mode == "test" else config.eval_batch_size
    average = config.test_average if mode == "test" else "prob"
    pred = evaluation.score_model(model, source, make_transform(config, mode), bs, mesh, average, f"{mode} ({tag})")
    if mode == "test":
        return evaluation.report_test(pred, workdir, tag, step, writer, getattr(source, "class_names", ()))
    result = evaluation.classification_metrics(pred, "val")
    logging_utils.console(f"val ({tag}): {evaluation.summary(result)}")
    return result


def _models_to_test(config, workdir) -> list[tuple[str, Recognizer, int]]:
    """(tag, model, step) for --mode eval/test: init_from.path if given, else the run's best and/or last."""
    if config.init_from.path:
        return [("init", load_source_model(config.init_from.path, trusted=config.init_from.trusted), 0)]
    out = []
    if config.test_best:
        path = os.path.join(workdir, BEST_DIR)
        if os.path.isdir(path):
            _, meta = model_ckpt.read_spec(path)
            out.append(("best", model_ckpt.load_model(path), int(meta.get("step", 0))))
        else:
            logging_utils.console(f"no best model in {path} (no validation yet?)")
    if config.test_last:
        path = os.path.join(workdir, FINAL_DIR)
        if os.path.isdir(path):
            _, meta = model_ckpt.read_spec(path)
            out.append(("last", model_ckpt.load_model(path), int(meta.get("step", 0))))
        else:
            out.append(_latest_checkpoint_model(config, workdir))
    if not out:
        raise FileNotFoundError(f"{workdir}: nothing to evaluate (no {BEST_DIR}/ or {FINAL_DIR}/ model, no "
                                f"checkpoint; or set config.init_from.path)")
    return out


def _latest_checkpoint_model(config, workdir) -> tuple[str, Recognizer, int]:
    """The model of the newest training checkpoint (a run that has not finished yet)."""
    directory = os.path.join(workdir, CKPT_DIR)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{workdir}: no {FINAL_DIR}/ model and no {CKPT_DIR}/ to evaluate")
    ckpts = RunCheckpoints(directory, config.checkpoint.keep)
    step = ckpts.latest_step()
    if step is None:
        raise FileNotFoundError(f"{directory}: no checkpoint to evaluate")
    model = create_model(_without_init(config))
    tx, _ = make_tx(config, max(step, 1), 1)
    parts = TrainParts(model, tx)
    state, _, _ = ckpts.restore(step, parts.state)
    ckpts.close()
    return "last", parts.model(state), step


def _without_init(config):
    c = ml_collections.ConfigDict(config.to_dict())
    c.init_from.path = ""
    return c


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, dict[str, float]]:
    """Validation metrics (1 clip, val split) of the run's best/last model or of init_from.path."""
    config_base.validate(config)
    workdir = os.path.abspath(os.path.expanduser(workdir))
    mesh = sharding.make_mesh()
    writer = logging_utils.MetricWriter(workdir, tensorboard=False)
    out = {tag: _test_model(config, workdir, m, tag, step, writer, mesh, mode="val")
           for tag, m, step in _models_to_test(config, workdir)}
    writer.close()
    return out


def test(config: ml_collections.ConfigDict, workdir: str) -> dict[str, dict[str, float]]:
    """Test metrics and score files (test split, test_num_clips, test_average) for best/last or init_from."""
    config_base.validate(config)
    workdir = os.path.abspath(os.path.expanduser(workdir))
    os.makedirs(workdir, exist_ok=True)
    if not os.path.exists(os.path.join(workdir, logging_utils.CONFIG_FILE)):
        # a test-only run (init_from): record its config; a training run's own config.json is never replaced
        logging_utils.write_config(workdir, config)
    mesh = sharding.make_mesh()
    sharding.check_batch(config.test_batch_size, mesh, "config.test_batch_size")
    writer = logging_utils.MetricWriter(workdir)
    out = {tag: _test_model(config, workdir, m, tag, step, writer, mesh)
           for tag, m, step in _models_to_test(config, workdir)}
    writer.close()
    return out
