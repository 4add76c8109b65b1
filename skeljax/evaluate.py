"""Validation and test: per-sample class scores over a whole split, PYSKL metrics, score files and plots.

Test follows spec 6.5: PYSKL averages the softmax probabilities of `data.test_num_clips` clips
(`test_average='prob'`); MMAction2 0.x evaluates the raw logits of one clip (`test_average='score'`).
Every sample of the split is scored exactly once (the input pipeline pads the last batch with masked rows;
this module drops them and checks that the sample indices are exactly 0..N-1).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from skeljax import ensemble, metrics, sharding
from skeljax.train import metrics_writer as logging_utils
from skeljax.data import input_pipeline

CLASS_METRICS = ("top1", "top5", "mean_class_acc")


@dataclasses.dataclass
class Predictions:
    """Scores of every sample of a split, in source order."""

    names: np.ndarray    # (N,) str, the annotations' frame_dir
    scores: np.ndarray   # (N, num_classes) float32
    labels: np.ndarray   # (N,) int64


def split_for_eval(model: nnx.Module):
    """(eval graphdef, params, BN statistics, other state) of a model, in eval mode."""
    model.eval()
    return nnx.split(model, nnx.Param, nnx.BatchStat, ...)


def make_predict_fn(graphdef, rest, mesh, average: str = "prob"):
    """jit(params, batch_stats, keypoint (B, clips, M, T, V, C)) -> per-sample scores (B, num_classes).

    'prob': mean over clips of softmax probabilities; 'score': mean over clips of raw logits.
    """
    if average not in ("prob", "score"):
        raise ValueError(f"average must be 'prob' or 'score', got {average!r}")

    def predict(params, batch_stats, keypoint):
        model = nnx.merge(graphdef, params, batch_stats, rest, copy=True)
        b, nc = keypoint.shape[:2]
        logits = model(keypoint.reshape((b * nc,) + keypoint.shape[2:])).reshape(b, nc, -1)
        logits = logits.astype(jnp.float32)
        return jax.nn.softmax(logits, axis=-1).mean(axis=1) if average == "prob" else logits.mean(axis=1)

    repl, data = sharding.replicated(mesh), input_pipeline.data_sharding(mesh)
    return jax.jit(predict, in_shardings=(repl, repl, data), out_shardings=data)


def predict_split(predict, params, batch_stats, batches: input_pipeline.EvalBatches, source,
                  desc: str = "eval") -> Predictions:
    """Run `predict` over every batch; returns the unpadded scores in source order."""
    scores, labels, index, mask, names = [], [], [], [], []
    multi = jax.process_count() > 1
    for batch in logging_utils.progress(batches, len(batches), desc):
        out = predict(params, batch_stats, batch["keypoint"])
        host = sharding.to_host({"s": out, "y": batch["label"], "i": batch["index"], "m": batch["mask"]})
        scores.append(host["s"])
        labels.append(host["y"])
        index.append(host["i"])
        mask.append(host["m"])
        if not multi:
            names.append(np.asarray(batch["frame_dir"]))
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
    return Predictions(names=all_names[order].astype(str), scores=np.concatenate(scores)[keep][order],
                       labels=np.concatenate(labels)[keep][order].astype(np.int64))


def classification_metrics(pred: Predictions, prefix: str) -> dict[str, float]:
    """top1, top5 (top-k with k <= num_classes) and mean class accuracy under `prefix/`."""
    k5 = min(5, pred.scores.shape[1])
    top1, top5 = metrics.top_k_accuracy(pred.scores, pred.labels, (1, k5))
    return {f"{prefix}/top1": top1, f"{prefix}/top5": top5,
            f"{prefix}/mean_class_acc": metrics.mean_class_accuracy(pred.scores, pred.labels)}


def check_labels(source, num_classes: int, where: str) -> None:
    """A dataset with more classes than the model's head cannot be evaluated: say so before running."""
    names = getattr(source, "class_names", ())
    if names and len(names) > num_classes:
        raise ValueError(f"{where}: the dataset has {len(names)} classes, the model only {num_classes} outputs "
                         "(set config.model.num_classes, or fine-tune with init_from.dont_load='cls_head')")


def report_test(pred: Predictions, workdir: str, tag: str, step: int, writer: logging_utils.MetricWriter,
                class_names=()) -> dict[str, float]:
    """Metrics, `test_scores_<tag>.npz`, a metrics.jsonl line and the confusion-matrix/curve PNGs."""
    result = classification_metrics(pred, "test")
    if logging_utils.is_main_process():
        ensemble.write_scores(os.path.join(workdir, f"test_scores_{tag}.npz"), pred.names, pred.scores, pred.labels)
        writer.write(step, {**result, "checkpoint": tag}, tb_prefix=f"{tag}_" if tag else "")
        cm = metrics.confusion_matrix(np.argmax(pred.scores, axis=1), pred.labels, pred.scores.shape[1])
        logging_utils.plot_confusion(cm, class_names, os.path.join(workdir, f"confusion_matrix_{tag}.png"),
                                     f"test ({tag}): top-1 {result['test/top1']:.4f}")
        logging_utils.plot_training_curves(workdir, os.path.join(workdir, "training_curves.png"))
    logging_utils.console(f"test ({tag}): " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
    return result


def score_model(model: nnx.Module, source, transform, batch_size: int, mesh, average: str,
                desc: str) -> Predictions:
    """Predictions of a model (any mode; switched to eval) over a whole source."""
    graphdef, params, stats, rest = split_for_eval(model)
    predict = make_predict_fn(graphdef, rest, mesh, average)
    batches = input_pipeline.make_eval_batches(source, transform, batch_size, mesh)
    params, stats = sharding.put_replicated(params, mesh), sharding.put_replicated(stats, mesh)
    return predict_split(predict, params, stats, batches, source, desc)


def summary(values: dict[str, Any]) -> str:
    return "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
