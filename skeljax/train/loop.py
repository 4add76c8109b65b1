"""The training run: `train_and_evaluate(config, workdir)`, set up, restore or initialise, train loop, finish.

Data parallelism is one `jax.jit` over a ('data',) mesh of every device: the state is replicated, batches are
sharded on their first axis, and the update step donates the state. BatchNorm statistics are computed per group of
`model.bn_group` samples (PYSKL: 16 videos per GPU); the groups are defined on global batch rows, so the result
does not depend on the number of devices. A run restarted with the same workdir resumes from its last checkpoint,
data iterator included; SIGTERM makes the loop save a checkpoint at the next step and return (docs/reliability.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from skeljax import metrics, sharding
from skeljax.config.run_config import RunConfig, as_run
from skeljax.data import input_pipeline
from skeljax.data.sources import load_split, make_transform
from skeljax.models import forward, model_dir
from skeljax.models.stgcn import Recognizer
from skeljax.predict.settings import test_settings
from skeljax.train import compile_step, metrics_writer, scoring
from skeljax.train.checkpoints import (
    BEST_DIR,
    CKPT_DIR,
    FINAL_DIR,
    RunCheckpoints,
    StopRequest,
    check_resumable,
)
from skeljax.train.evaluation import evaluate_model
from skeljax.train.state import TrainParts, create_model, make_tx
from skeljax.train.step import jit_train_step, make_train_step

log = metrics_writer.console


def train_and_evaluate(config: RunConfig | ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
    """Train with validation every `eval_every_epochs`, checkpoints, best/final exports, then test."""
    session = _set_up(as_run(config), os.path.abspath(os.path.expanduser(workdir)))
    try:
        _restore_or_initialise(session)
        preempted = _train_loop(session)
        results = _finish(session, preempted)
    finally:  # the input workers stop on every way out, an exception included (the loop closes them on a stop)
        session.train_iter.close()
    session.writer.close()
    return results


@dataclasses.dataclass
class _Session:
    """The live parts of one training run, passed between the stages of `train_and_evaluate`."""

    run: RunConfig
    workdir: str
    ckpts: RunCheckpoints
    start: int | None  # the step of the checkpoint to resume from
    mesh: Any
    train_iter: Any
    val_source: Any
    val_batches: Any
    steps_per_epoch: int
    total_steps: int
    parts: TrainParts
    state: dict
    jitted_step_for: Any  # remat -> the jitted update step, compiled for the first batch (compile_step)
    train_step: Any = None  # the compiled update step
    step: int = 0
    stop: int = 0  # the last step of this session (config.stop_after_steps or total_steps)
    best: dict = dataclasses.field(default_factory=lambda: {"val/top1": -1.0, "step": -1})
    pending: list = dataclasses.field(default_factory=list)  # per-step metrics of the current logging window
    first_record: dict = dataclasses.field(default_factory=dict)  # compile time and XLA memory, for the first log
    writer: metrics_writer.MetricWriter | None = None
    predict: Any = None
    stop_signal: str | None = None


# ------------------------------------------------------------------------------------------------------------
# Set up: workdir, mesh, data, model. Nothing is written to the workdir before all of it is known to fit.
# ------------------------------------------------------------------------------------------------------------


def _set_up(run: RunConfig, workdir: str) -> _Session:
    ckpts, start = _open_checkpoints(run, workdir)
    mesh = _make_mesh(run)
    train_iter, val_source, val_batches = _make_data(run, mesh)
    steps_per_epoch = train_iter.steps_per_epoch
    total_steps = run.num_epochs * steps_per_epoch
    train_iter.num_steps = total_steps
    parts, jitted_step_for = _make_model(run, mesh, total_steps, steps_per_epoch)
    return _Session(
        run,
        workdir,
        ckpts,
        start,
        mesh,
        train_iter,
        val_source,
        val_batches,
        steps_per_epoch,
        total_steps,
        parts,
        sharding.put_replicated(parts.state, mesh),
        jitted_step_for,
        stop=min(total_steps, run.stop_after_steps) if run.stop_after_steps > 0 else total_steps,
    )


def _open_checkpoints(run: RunConfig, workdir: str) -> tuple[RunCheckpoints, int | None]:
    """The workdir is writable, and any checkpoint in it is one of this run (checked before anything is written)."""
    metrics_writer.check_writable(workdir)
    ckpts = RunCheckpoints(os.path.join(workdir, CKPT_DIR), run.checkpoint.keep)
    for path in ckpts.set_aside:
        log(
            f"warning: {path}: an incomplete checkpoint (no commit marker, e.g. a crash while saving) was moved "
            "aside and is not used"
        )
    for path in ckpts.deleted:
        log(f"deleted {path}: a checkpoint whose saving was interrupted")
    start = ckpts.latest_step()
    if start is not None:
        check_resumable(ckpts.read_meta(start).get("run"), run.signature, os.path.join(ckpts.directory, str(start)))
    return ckpts, start


def _make_mesh(run: RunConfig):
    mesh = sharding.make_mesh()
    per_device = sharding.check_batch(run.batch_size, mesh)
    sharding.check_batch(run.eval_batch_size, mesh, "config.eval_batch_size")
    layout = sharding.bn_groups_per_device(run.batch_size, run.bn_group, mesh)
    log(
        f"{jax.process_count()} process(es), {mesh.shape['data']} device(s) ({jax.devices()[0].platform}); "
        f"batch {run.batch_size} = {per_device} per device; BN groups of {run.bn_group or 'all'} "
        f"samples ({layout})"
    )
    return mesh


def _make_data(run: RunConfig, mesh):
    """(train iterator, val source, val batches)."""
    d = run.data
    train_source = load_split(run, d.train_split)
    val_source = load_split(run, d.val_split)
    scoring.check_labels(train_source, run.num_classes, d.dataset)
    train_iter = input_pipeline.make_train_iterator(
        train_source,
        make_transform(run, "train"),
        run.batch_size,
        run.seed,
        mesh,
        repeat_times=d.repeat_times,
        num_workers=d.num_workers,
        read_threads=d.read_threads,
    )
    val_batches = input_pipeline.make_eval_batches(
        val_source,
        make_transform(run, "val"),
        run.eval_batch_size,
        mesh,
        num_workers=d.num_workers,
        read_threads=d.read_threads,
    )
    log(
        f"{d.dataset}: {len(train_source)} train x {d.repeat_times} repeats = {train_iter.steps_per_epoch} steps "
        f"per epoch, {run.num_epochs * train_iter.steps_per_epoch} steps; {len(val_source)} val samples; "
        + (f"{d.num_workers} input worker process(es)" if d.num_workers else "input read in this process")
    )
    return train_iter, val_source, val_batches


def _make_model(run: RunConfig, mesh, total_steps: int, steps_per_epoch: int):
    """(TrainParts, remat -> jitted update step) of a freshly created (or init_from) model."""
    model = create_model(run)
    tx, schedule = make_tx(run, total_steps, steps_per_epoch)
    parts = TrainParts(model, tx)
    o = run.optimizer
    log(
        f"model {run.family} ({model.spec.layout}, {model.spec.num_classes} classes): {parts.num_params():,} "
        f"parameters; lr {o.lr:g} ({o.schedule})"
    )
    if o.lr_fixed and not np.isclose(o.lr, o.linear_rule_lr):
        log(
            f"note: optimizer.lr {o.lr:g} is not base_lr x batch_size / reference_batch = "
            f"{o.linear_rule_lr:g} (a command-line batch size does not rescale an lr fixed in the config; set "
            "--config.optimizer.lr=-1 for the linear scaling rule)"
        )

    def jitted_step_for(remat: bool):
        return jit_train_step(make_train_step(parts, tx, schedule, run.seed, remat=remat), mesh)

    return parts, jitted_step_for


# ------------------------------------------------------------------------------------------------------------
# Restore or initialise, then the workdir's config, metrics and the validation forward.
# ------------------------------------------------------------------------------------------------------------


def _restore_or_initialise(s: _Session) -> None:
    if s.start is not None:
        s.state, data_state, meta = s.ckpts.restore(s.start, s.state)
        s.train_iter.set_state(data_state)
        s.best = meta.get("best", s.best)
        s.pending = [{k: np.float32(v) for k, v in m.items()} for m in meta.get("pending", [])]
        log(
            f"resumed from {s.ckpts.directory}/{s.start} (epoch {s.start // s.steps_per_epoch}, best val/top1 "
            f"{s.best['val/top1']:.4f})"
        )
    s.step = int(s.start or 0)
    # Only now that data, model and checkpoint are known to fit is the workdir written.
    metrics_writer.write_config(s.workdir, s.run.config_json)
    s.writer = metrics_writer.MetricWriter(s.workdir)
    if s.start is not None:
        dropped = s.writer.discard_after(s.start)  # lines a killed run wrote after its last checkpoint
        if dropped:
            log(f"metrics.jsonl: dropped {dropped} line(s) written after the checkpoint of step {s.start}")
    s.predict = forward.make_forward(s.parts.graphdef_eval, s.parts.rest, s.mesh, "prob")


def _save(s: _Session, val: dict | None) -> None:
    # The unlogged part of the logging window goes with the checkpoint, so a resumed run logs the same means.
    window = [{k: float(v) for k, v in m.items()} for m in jax.device_get(s.pending)]
    meta = {
        "step": s.step,
        "epoch": s.step // s.steps_per_epoch,
        "best": s.best,
        "val": val or {},
        "run": dict(s.run.signature),
        "pending": window,
    }
    s.ckpts.save(s.step, s.state, s.train_iter.get_state(), meta, metrics=val)


# ------------------------------------------------------------------------------------------------------------
# The train loop.
# ------------------------------------------------------------------------------------------------------------


def _train_loop(s: _Session) -> bool:
    """Train to `s.stop` or a stop signal (then checkpoint); returns whether a stop signal ended it."""
    meter = metrics_writer.Throughput(s.step, s.total_steps, s.run.batch_size)
    stop_request = StopRequest()
    while s.step < s.stop and not stop_request.requested():
        _train_step(s, meter)
        t_other = time.perf_counter()
        val = _validate_at_epoch_end(s)
        every = s.run.checkpoint.every_steps
        epoch_end, epoch = s.step % s.steps_per_epoch == 0, s.step // s.steps_per_epoch
        if (
            (epoch_end and epoch % s.run.checkpoint.every_epochs == 0)
            or (every and s.step % every == 0)
            or s.step == s.stop
            or val is not None
        ):
            _save(s, val)
        meter.pause(time.perf_counter() - t_other)
    s.train_iter.close()
    preempted = stop_request.requested()
    stop_request.close()
    s.stop_signal = stop_request.received or "a stop signal on another process"
    if preempted and s.step < s.stop:
        _save(s, None)  # a no-op when this step was just saved
        log(
            f"{s.stop_signal}: saved the checkpoint of step {s.step} in {s.ckpts.directory}; exiting (run the same "
            "command to resume)"
        )
    return preempted


def _train_step(s: _Session, meter: metrics_writer.Throughput) -> None:
    """One update; at the end of a logging window, the window's mean metrics to metrics.jsonl and the console.

    The time spent in `next(train_iter)` is the loop waiting for its input (`train/input_wait_fraction`: that time
    over the window's wall time, without the validation and checkpoint pauses). On the CPU backend the loop waits for
    each step before fetching the next batch (`bound_run_ahead`), so the fraction is the share of time the device
    (the host's cores) had nothing to do. On a GPU or TPU one step stays queued while the loop fetches the next
    batch, so the device runs the step before during part of that wait: the fraction says *whether* the input sets
    the pace (near 0: it keeps ahead), not exactly how long the device idles (the demo on CPU with the unbounded
    run-ahead of before and its transform slowed to 1.9 s per batch against a 1 s step: 90% input wait, the device
    idle about half the time).
    """
    t = time.perf_counter()
    batch = next(s.train_iter)
    waited = time.perf_counter() - t
    meter.input_wait(waited)
    inputs = {"keypoint": batch["keypoint"], "label": batch["label"]}
    if s.train_step is None:
        log(f"first training batch after {waited:.2f} s")
        _compile_train_step(s, inputs)
    s.state, metrics = s.train_step(s.state, inputs)
    s.step += 1
    bound_run_ahead(metrics, s.pending)
    s.pending.append(metrics)
    if meter.t0 is None:
        jax.block_until_ready(metrics)
        meter.start(s.step)
    if s.step % s.run.log_every_steps == 0 or s.step % s.steps_per_epoch == 0 or s.step == s.stop:
        means = {k: float(np.mean([m[k] for m in jax.device_get(s.pending)])) for k in s.pending[0]}
        s.pending = []
        rate, eta, wait = meter.report(s.step)
        record = {**means, **s.first_record}
        s.first_record = {}
        if np.isfinite(rate):
            record.update({"train/samples_per_sec": rate, "train/input_wait_fraction": wait})
        peak = _peak_device_mb()
        if peak is not None:
            record["train/peak_device_mb"] = peak
        s.writer.write(s.step, record)
        log(
            f"step {s.step}/{s.total_steps} (epoch {(s.step - 1) // s.steps_per_epoch + 1}/{s.run.num_epochs})  "
            f"loss {means['train/loss']:.4f}  top1 {means['train/top1']:.3f}  lr {means['train/lr']:.5f}  "
            f"| {rate:.1f} samples/s  input wait {_percent(wait)}  ETA {metrics_writer.format_duration(eta)}"
            + (f"  peak device memory {peak:.0f} MB" if peak is not None else "")
        )


def bound_run_ahead(metrics: dict, pending: list) -> None:
    """Wait for the step just dispatched on the CPU backend, for the one before it elsewhere.

    Left alone, the loop runs ahead of the device until the next log step. On a GPU or TPU one queued step keeps the
    device busy while the host fetches the next batch. On the CPU backend the device is the host's own cores, and
    queued steps only overlap with each other: ST-GCN++ at batch 16 with remat and log_every_steps=3 reached 5.1 GB
    and 2.2 samples/s that way, against 3.2 GB and 2.9 samples/s waiting for every step."""
    if jax.default_backend() == "cpu":
        jax.block_until_ready(metrics)
    elif pending:
        jax.block_until_ready(pending[-1])


def _compile_train_step(s: _Session, inputs: dict) -> None:
    """Compile the update step for the first batch, once: the compiled program runs every step of this session (a
    batch of other shapes or shardings would be an error, not a silent second compilation). `config.remat` is
    decided here (`compile_step`: 'auto' may need the plain step's memory plan). The compile time (tracing and
    lowering, then XLA, which is a load when JAX's persistent cache has the program), the remat choice and XLA's
    memory plan per device are logged and go into the session's first metrics.jsonl record."""
    step = compile_step.compile_train_step(s.jitted_step_for, s.run.remat, s.state, inputs)
    s.train_step = step.compiled
    s.first_record = {"train/compile_s": step.seconds, "train/remat": float(step.remat)}
    took = (
        f"train step compiled in {step.seconds:.1f} s (tracing {step.tracing_seconds:.1f} s, XLA "
        f"{step.seconds - step.tracing_seconds:.1f} s), remat {'on' if step.remat else 'off'} "
        f"(config.remat={s.run.remat!r})"
    )
    if step.memory is None:
        log(f"{took}; XLA memory: not reported by the {jax.default_backend()} backend")
        return
    memory = step.memory.as_record()
    s.first_record.update({f"train/xla_{k}_mb": v for k, v in memory.items()})
    log(
        f"{took}; XLA memory: temp {memory['temp']:.0f} MB, arguments {memory['argument']:.0f} MB, outputs "
        f"{memory['output']:.0f} MB"
    )


def _peak_device_mb() -> float | None:
    """The highest device memory in use since the process started, over this process's devices (MB); None where
    the backend keeps no such statistic (CPU)."""
    peaks = [(d.memory_stats() or {}).get("peak_bytes_in_use") for d in jax.local_devices()]
    peaks = [p for p in peaks if p is not None]
    return max(peaks) / 2**20 if peaks else None


def _percent(fraction: float) -> str:
    return f"{fraction:.0%}" if np.isfinite(fraction) else "?"


def _validate_at_epoch_end(s: _Session) -> dict[str, float] | None:
    """Validation metrics at the end of every `eval_every_epochs`-th epoch and of training (else None); the best
    model so far is exported to best/."""
    epoch = s.step // s.steps_per_epoch
    if s.step % s.steps_per_epoch or not (epoch % s.run.eval_every_epochs == 0 or s.step == s.total_steps):
        return None
    pred = scoring.predict_split(
        s.predict, s.state["params"], s.state["batch_stats"], s.val_batches, s.val_source, f"val {s.step}"
    )
    val = metrics.classification_metrics(pred, "val")
    s.writer.write(s.step, val)
    improved = val["val/top1"] > s.best["val/top1"]
    if improved:
        s.best = {"val/top1": val["val/top1"], "step": s.step}
        best_model = s.parts.model(s.state)  # on every process: gathering is collective
        export_model(os.path.join(s.workdir, BEST_DIR), best_model, {"step": s.step, **val}, s.run, s.val_source)
    log(
        f"epoch {epoch} val: {scoring.summary(val)}  (best top1 {s.best['val/top1']:.4f} at step "
        f"{s.best['step']}{', new best' if improved else ''})"
    )
    return val


# ------------------------------------------------------------------------------------------------------------
# Finish: the final model and the test, or a note on why the run stopped early.
# ------------------------------------------------------------------------------------------------------------


def _finish(s: _Session, preempted: bool) -> dict[str, float]:
    results: dict[str, float] = {"step": s.step, "best/val_top1": s.best["val/top1"]}
    done = s.step >= s.total_steps
    final_model = s.parts.model(s.state) if done else None
    if done:
        export_model(os.path.join(s.workdir, FINAL_DIR), final_model, {"step": s.step}, s.run, s.val_source)
    elif not preempted:
        log(f"stopped at step {s.step} of {s.total_steps} (config.stop_after_steps); run again to resume")
    s.ckpts.close()
    if done and preempted:  # training is complete and saved; the test runs when the same command is run again
        log(
            f"{s.stop_signal}: training finished at step {s.step}; exiting before the test (run the same command "
            "to test)"
        )
    if preempted or not done:
        results["preempted"] = float(preempted)
    else:
        results.update(_test_after_training(s, final_model))
    return results


def _test_after_training(s: _Session, final_model: Recognizer) -> dict[str, float]:
    """Test metrics of the final ('last/...') and best-validation ('best/...') models, as configured."""
    results = {}
    if s.run.test_last:
        results.update(
            {
                f"last/{k}": v
                for k, v in evaluate_model(s.run, s.workdir, final_model, "last", s.step, s.writer, s.mesh).items()
            }
        )
    if s.run.test_best and os.path.isdir(os.path.join(s.workdir, BEST_DIR)):
        best_model = model_dir.load_model(os.path.join(s.workdir, BEST_DIR))
        results.update(
            {
                f"best/{k}": v
                for k, v in evaluate_model(s.run, s.workdir, best_model, "best", s.step, s.writer, s.mesh).items()
            }
        )
    return results


def export_model(
    directory: str, model: Recognizer, extra: dict, run: RunConfig | None = None, source: Any = None
) -> None:
    """Write a best/ or final/ model directory from process 0 (a no-op on the others); with the run's config, its
    model_spec.json carries the test settings (`predict.settings.test_settings`) and the class names of `source`."""
    if not metrics_writer.is_main_process():
        return
    if run is not None:
        d = run.data
        config = {
            "model": json.loads(run.config_json or "{}").get("model") or {"layout": run.spec.layout},
            "data": {k: getattr(d, k) for k in ("dataset", "feat", "recipe", "clip_len", "test_num_clips")},
            "test_average": run.test_average,
        }
        settings = test_settings(config, class_names=getattr(source, "class_names", ()))
        extra = {**extra, model_dir.TEST_KEY: settings}
    model_dir.save_model(directory, model, overwrite=True, extra=extra, this_process_only=True)
