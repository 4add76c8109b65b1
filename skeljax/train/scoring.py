"""Validation and test: per-sample class scores over a whole split, PYSKL metrics, score files and plots.

Test averages the clips as the recipe says (`skeljax.models.forward`): PYSKL the softmax probabilities of
`data.test_num_clips` clips (`test_average='prob'`), MMAction2 0.x the raw logits of one clip (`'score'`).
Every sample of the split is scored exactly once (the input pipeline pads the last batch with masked rows;
this module drops them and checks that the sample indices are exactly 0..N-1).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from flax import nnx

from skeljax import ensemble, metrics, sharding
from skeljax.data import input_pipeline
from skeljax.metrics import Scores
from skeljax.models.forward import Forward, model_forward
from skeljax.train import metrics_writer


def predict_split(
    predict: Forward, params, batch_stats, batches: input_pipeline.EvalBatches, source, desc: str = "eval"
) -> Scores:
    """Run the compiled forward over every batch; returns the unpadded scores in source order."""
    scores, labels, index, mask, names = [], [], [], [], []
    multi = jax.process_count() > 1
    batch_iter = iter(batches)
    try:
        for batch in metrics_writer.progress(batch_iter, len(batches), desc):
            out = predict(params, batch_stats, batch["keypoint"])
            host = sharding.to_host({"s": out, "y": batch["label"], "i": batch["index"], "m": batch["mask"]})
            scores.append(host["s"])
            labels.append(host["y"])
            index.append(host["i"])
            mask.append(host["m"])
            if not multi:
                names.append(np.asarray(batch["frame_dir"]))
    finally:  # an error mid-way: the batches' worker processes stop now, not when the generator is collected
        if hasattr(batch_iter, "close"):
            batch_iter.close()
    keep = np.concatenate(mask)
    idx = np.concatenate(index)[keep]
    n = len(source)
    if idx.shape[0] != n or not np.array_equal(np.sort(idx), np.arange(n)):
        raise RuntimeError(f"evaluation covered {idx.shape[0]} rows for {n} samples (lost or duplicated samples)")
    order = np.argsort(idx)
    if multi:  # frame_dir is host-local; read it from the source, which every process shares
        all_names = np.asarray([source[int(i)]["frame_dir"] for i in idx])
    else:
        all_names = np.concatenate(names)[keep]
    return Scores(
        names=all_names[order].astype(str),
        scores=np.concatenate(scores)[keep][order],
        labels=np.concatenate(labels)[keep][order].astype(np.int64),
    )


def check_labels(source, num_classes: int, where: str) -> None:
    """A dataset with more classes than the model's head cannot be evaluated: say so before running."""
    names = getattr(source, "class_names", ())
    if names and len(names) > num_classes:
        raise ValueError(
            f"{where}: the dataset has {len(names)} classes, the model only {num_classes} outputs "
            "(set config.model.num_classes, or fine-tune with init_from.dont_load='cls_head')"
        )


def report_test(
    pred: Scores, workdir: str, tag: str, step: int, writer: metrics_writer.MetricWriter, class_names=()
) -> dict[str, float]:
    """Metrics, `test_scores_<tag>.npz`, a metrics.jsonl line and the confusion-matrix/curve PNGs."""
    result = metrics.classification_metrics(pred, "test")
    if metrics_writer.is_main_process():
        ensemble.write_scores(os.path.join(workdir, f"test_scores_{tag}.npz"), pred.names, pred.scores, pred.labels)
        writer.write(step, {**result, "checkpoint": tag}, tb_prefix=f"{tag}_" if tag else "")
        cm = metrics.confusion_matrix(np.argmax(pred.scores, axis=1), pred.labels, pred.scores.shape[1])
        metrics_writer.plot_confusion(
            cm,
            class_names,
            os.path.join(workdir, f"confusion_matrix_{tag}.png"),
            f"test ({tag}): top-1 {result['test/top1']:.4f}",
        )
        metrics_writer.plot_training_curves(workdir, os.path.join(workdir, "training_curves.png"))
    metrics_writer.console(f"test ({tag}): " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
    return result


def score_model(
    model: nnx.Module, source, transform, batch_size: int, mesh, average: str, desc: str, *, num_workers: int = 0
) -> Scores:
    """Scores of a model (any mode; switched to eval) over a whole source (read by `num_workers` grain processes)."""
    forward, params, stats = model_forward(model, mesh, average)
    batches = input_pipeline.make_eval_batches(source, transform, batch_size, mesh, num_workers=num_workers)
    return predict_split(forward, params, stats, batches, source, desc)


def summary(values: dict[str, Any]) -> str:
    return "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
