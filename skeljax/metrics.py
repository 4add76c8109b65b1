"""Per-sample score records and classification metrics with PYSKL's semantics, in NumPy.

The metrics follow `pyskl/core/evaluation.py` (`top_k_accuracy`, `mean_class_accuracy`). Their names, `top1`,
`top5` and `mean_class_acc`, are the keys of the trainer's metrics.jsonl (`val/...`, `test/...`) and of
`skeljax.ensemble.evaluate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

CLASS_METRICS = ("top1", "top5", "mean_class_acc")


@dataclasses.dataclass(frozen=True)
class Scores:
    """Per-sample class scores in sample order; `path` names their origin (a score file) in error messages."""

    names: np.ndarray  # (N,) str, the annotations' frame_dir
    scores: np.ndarray  # (N, C) float: mean softmax over test clips (PYSKL), or mean raw logits (MMAction2 0.x)
    labels: np.ndarray  # (N,) int64, ground truth in [0, C)
    path: str = "<memory>"

    @property
    def num_classes(self) -> int:
        return int(self.scores.shape[1])


def classification_metrics(scores: Scores, prefix: str = "") -> dict[str, float]:
    """top1, top5 (top-k with k <= C) and mean_class_acc, as fractions; keys `prefix/name` with a prefix."""
    top1, top5 = top_k_accuracy(scores.scores, scores.labels, (1, min(5, scores.num_classes)))
    values = (top1, top5, mean_class_accuracy(scores.scores, scores.labels))
    return {f"{prefix}/{k}" if prefix else k: v for k, v in zip(CLASS_METRICS, values)}


def _check(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """Validates a (N, C) score matrix and N integer labels in [0, C)."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a (num_samples, num_classes) array, got shape {scores.shape}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"labels must have shape ({scores.shape[0]},) to match scores, got {labels.shape}")
    if scores.shape[0] == 0:
        raise ValueError("metrics need at least one sample, got 0")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ValueError(f"labels must lie in [0, {scores.shape[1]}), got range [{labels.min()}, {labels.max()}]")
    return scores, labels.astype(np.int64)


def top_k_accuracy(scores, labels, topk: Sequence[int] = (1, 5)) -> list[float]:
    """Fraction of samples whose label is among the k highest scores, for each k.

    Same as PYSKL: the k classes are the last k of an ascending argsort. PYSKL's default-kind argsort orders tied
    scores as numpy's sort implementation happens to (its SIMD sorts differ by CPU); here the sort is stable, so a
    tie always ranks the higher class index first.
    """
    scores, labels = _check(scores, labels)
    order = np.argsort(scores, axis=1, kind="stable")
    result = []
    for k in topk:
        if k < 1:
            raise ValueError(f"top_k_accuracy: k must be >= 1, got {k}")
        best_k = order[:, -k:]
        result.append(float(np.mean(np.any(best_k == labels[:, None], axis=1))))
    return result


def confusion_matrix(pred, labels, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; row = true label, column = predicted label."""
    pred = np.asarray(pred)
    labels = np.asarray(labels)
    if pred.shape != labels.shape or pred.ndim != 1:
        raise ValueError(f"pred and labels must be 1-D of equal length, got {pred.shape} and {labels.shape}")
    for name, arr in (("pred", pred), ("labels", labels)):
        if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} must be integers in [0, {num_classes})")
    flat = labels.astype(np.int64) * num_classes + pred.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def mean_class_accuracy(scores, labels) -> float:
    """Mean over classes of per-class recall, PYSKL style.

    The classes averaged over are those that occur as a label or as a prediction (argmax, first index on ties);
    a class that is only ever predicted has no GT samples and counts as 0. Classes that occur in neither are
    left out.
    """
    scores, labels = _check(scores, labels)
    pred = np.argmax(scores, axis=1)
    cm = confusion_matrix(pred, labels, scores.shape[1])
    present = np.union1d(pred, labels)
    counts = cm.sum(axis=1)[present]
    hits = np.diag(cm)[present]
    per_class = np.where(counts > 0, hits / np.maximum(counts, 1), 0.0)
    return float(np.mean(per_class))
