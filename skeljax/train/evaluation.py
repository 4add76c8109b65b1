"""Validation and test of a run's models: `evaluate` (val split, 1 clip) and `test` (test split, score files)."""

from __future__ import annotations

import os

import ml_collections

from skeljax import metrics, sharding
from skeljax.config.run_config import RunConfig, as_run
from skeljax.data.sources import load_split, make_transform
from skeljax.models import model_dir
from skeljax.models.stgcn import Recognizer
from skeljax.train import metrics_writer, scoring
from skeljax.train.checkpoints import BEST_DIR, CKPT_DIR, FINAL_DIR, RunCheckpoints
from skeljax.train.init_from import load_source_model
from skeljax.train.state import TrainParts, create_model, make_tx


def evaluate_model(
    run: RunConfig, workdir, model, tag, step, writer, mesh, split=None, mode="test"
) -> dict[str, float]:
    """Metrics of `model` on a split: 'test' writes score files and plots, 'val' logs one line."""
    split = split or (run.data.test_split if mode == "test" else run.data.val_split)
    source = load_split(run, split)
    scoring.check_labels(source, model.spec.num_classes, f"{run.data.dataset}:{split}")
    bs = run.test_batch_size if mode == "test" else run.eval_batch_size
    average = run.test_average if mode == "test" else "prob"
    transform = make_transform(run, mode)
    pred = scoring.score_model(
        model, source, transform, bs, mesh, average, f"{mode} ({tag})", num_workers=run.data.num_workers
    )
    if mode == "test":
        return scoring.report_test(pred, workdir, tag, step, writer, getattr(source, "class_names", ()))
    result = metrics.classification_metrics(pred, "val")
    metrics_writer.console(f"val ({tag}): {scoring.summary(result)}")
    return result


def _exported_model(workdir: str, name: str) -> tuple[Recognizer, int] | None:
    """(model, step) of the run's best/ or final/ model directory, None when there is none."""
    path = os.path.join(workdir, name)
    if not os.path.isdir(path):
        return None
    _, meta = model_dir.read_spec(path)
    return model_dir.load_model(path), int(meta.get("step", 0))


def _models_to_test(run: RunConfig, workdir) -> list[tuple[str, Recognizer, int]]:
    """(tag, model, step) for --mode eval/test: init_from.path if given, else the run's best and/or last."""
    if run.init_from.path:
        return [("init", load_source_model(run.init_from.path, trusted=run.init_from.trusted), 0)]
    out = []
    if run.test_best:
        found = _exported_model(workdir, BEST_DIR)
        if found:
            out.append(("best", *found))
        else:
            metrics_writer.console(f"no best model in {os.path.join(workdir, BEST_DIR)} (no validation yet?)")
    if run.test_last:
        found = _exported_model(workdir, FINAL_DIR)
        out.append(("last", *found) if found else _latest_checkpoint_model(run, workdir))
    if not out:
        raise FileNotFoundError(
            f"{workdir}: nothing to evaluate (no {BEST_DIR}/ or {FINAL_DIR}/ model, no "
            f"checkpoint; or set config.init_from.path)"
        )
    return out


def _latest_checkpoint_model(run: RunConfig, workdir) -> tuple[str, Recognizer, int]:
    """The model of the newest training checkpoint (a run that has not finished yet)."""
    directory = os.path.join(workdir, CKPT_DIR)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{workdir}: no {FINAL_DIR}/ model and no {CKPT_DIR}/ to evaluate")
    ckpts = RunCheckpoints(directory, run.checkpoint.keep)
    step = ckpts.latest_step()
    if step is None:
        raise FileNotFoundError(f"{directory}: no checkpoint to evaluate")
    model = create_model(run.without_init())
    tx, _ = make_tx(run, max(step, 1), 1)
    parts = TrainParts(model, tx)
    state, _, _ = ckpts.restore(step, parts.state)
    ckpts.close()
    return "last", parts.model(state), step


def evaluate(config: RunConfig | ml_collections.ConfigDict, workdir: str) -> dict[str, dict[str, float]]:
    """Validation metrics (1 clip, val split) of the run's best/last model or of init_from.path."""
    run = as_run(config)
    workdir = os.path.abspath(os.path.expanduser(workdir))
    mesh = sharding.make_mesh()
    writer = metrics_writer.MetricWriter(workdir, tensorboard=False)
    out = {
        tag: evaluate_model(run, workdir, m, tag, step, writer, mesh, mode="val")
        for tag, m, step in _models_to_test(run, workdir)
    }
    writer.close()
    return out


def test(config: RunConfig | ml_collections.ConfigDict, workdir: str) -> dict[str, dict[str, float]]:
    """Test metrics and score files (test split, test_num_clips, test_average) for best/last or init_from."""
    run = as_run(config)
    workdir = os.path.abspath(os.path.expanduser(workdir))
    os.makedirs(workdir, exist_ok=True)
    if not os.path.exists(os.path.join(workdir, metrics_writer.CONFIG_FILE)):
        # a test-only run (init_from): record its config; a training run's own config.json is never replaced
        metrics_writer.write_config(workdir, run.config_json)
    mesh = sharding.make_mesh()
    sharding.check_batch(run.test_batch_size, mesh, "config.test_batch_size")
    writer = metrics_writer.MetricWriter(workdir)
    out = {
        tag: evaluate_model(run, workdir, m, tag, step, writer, mesh) for tag, m, step in _models_to_test(run, workdir)
    }
    writer.close()
    return out
