"""Per-sample score files and multi-stream late fusion (docs/fusion.md).

Score file format (`.npz`, written by `write_scores`, read by `read_scores`, no pickled objects):
    format       scalar str   "skeljax-scores-v1"
    names        (N,) str     sample names (the annotation's `frame_dir`), unique
    scores       (N, C) float per-sample class scores: mean softmax over test clips (PYSKL), or raw logits (0.x)
    labels       (N,) int64   ground-truth label per sample, in [0, C)
    num_classes  scalar int   C

Fusion is a weighted sum of the streams' score vectors (no renormalisation), aligned by sample name, never by
position; the default weights are 1:1 for two streams (J:B), 2:2:1:1 for four (J:B:JM:BM), else equal.
"""

from __future__ import annotations

import os
import sys
import zipfile
from collections.abc import Sequence

import numpy as np

from skeljax import cli
from skeljax.io.atomic import atomic_file
from skeljax.metrics import Scores, classification_metrics

FORMAT = "skeljax-scores-v1"
_KEYS = ("format", "names", "scores", "labels", "num_classes")


class ScoreFileError(ValueError):
    """A score file is missing, malformed, or inconsistent with the other streams."""


def _validate(names, scores, labels, where: str) -> Scores:
    """Checks shapes, uniqueness, label range and finiteness; returns normalised arrays."""
    names = np.asarray(names)
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if names.ndim != 1 or names.dtype.kind != "U":
        raise ScoreFileError(f"{where}: 'names' must be a 1-D array of strings, got {names.dtype} {names.shape}")
    if scores.ndim != 2 or scores.shape[0] != names.shape[0] or scores.dtype.kind != "f":
        raise ScoreFileError(
            f"{where}: 'scores' must be a float array of shape ({names.shape[0]}, C), got {scores.dtype} {scores.shape}"
        )
    if labels.shape != names.shape or labels.dtype.kind not in "iu":
        raise ScoreFileError(f"{where}: 'labels' must be {names.shape[0]} integers, got {labels.dtype} {labels.shape}")
    if names.size == 0:
        raise ScoreFileError(f"{where}: holds no samples")
    uniq, counts = np.unique(names, return_counts=True)
    if (counts > 1).any():
        raise ScoreFileError(f"{where}: duplicate sample names, e.g. {uniq[counts > 1][:3].tolist()}")
    if labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ScoreFileError(
            f"{where}: labels must lie in [0, {scores.shape[1]}), got range [{labels.min()}, {labels.max()}]"
        )
    if not np.isfinite(scores).all():
        bad = names[~np.isfinite(scores).all(axis=1)][:3].tolist()
        raise ScoreFileError(f"{where}: non-finite scores for samples {bad}")
    return Scores(names, scores, labels.astype(np.int64), where)


def write_scores(path: str | os.PathLike, names: Sequence[str], scores, labels) -> None:
    """Writes a score file (format in the module docstring); atomic, so an interrupted run leaves no half file."""
    path = os.fspath(path)
    data = _validate(np.asarray(list(names), dtype=str), scores, labels, path)
    with atomic_file(path) as f:  # a file object stops numpy from appending '.npz' to the name
        np.savez(
            f,
            format=np.asarray(FORMAT),
            names=data.names,
            scores=data.scores,
            labels=data.labels,
            num_classes=np.asarray(data.num_classes, dtype=np.int64),
        )


def read_scores(path: str | os.PathLike) -> Scores:
    """Reads and validates a score file; raises ScoreFileError naming the file and the problem."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ScoreFileError(f"{path}: no such score file")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _KEYS if k not in z.files]
            if missing:
                raise ScoreFileError(f"{path}: not a {FORMAT} file, missing keys {missing} (has {sorted(z.files)})")
            arrays = {k: z[k] for k in _KEYS}
    except ScoreFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ScoreFileError(f"{path}: cannot read as a {FORMAT} .npz file ({e})") from e
    if arrays["format"].shape != () or str(arrays["format"]) != FORMAT:
        raise ScoreFileError(f"{path}: format {arrays['format']!r} is not {FORMAT!r}")
    data = _validate(arrays["names"], arrays["scores"], arrays["labels"], path)
    stored_c = arrays["num_classes"]
    if stored_c.shape != () or int(stored_c) != data.num_classes:
        raise ScoreFileError(f"{path}: num_classes={stored_c} but scores have {data.num_classes} columns")
    return data


def align(streams: Sequence[Scores]) -> list[Scores]:
    """Reorders every stream into the first stream's sample order; errors if sample sets, labels or C differ."""
    if not streams:
        raise ScoreFileError("align: no score streams given")
    ref = streams[0]
    out = [ref]
    for s in streams[1:]:
        if s.num_classes != ref.num_classes:
            raise ScoreFileError(f"{s.path} has {s.num_classes} classes but {ref.path} has {ref.num_classes}")
        index = {name: i for i, name in enumerate(s.names.tolist())}
        only_ref = [n for n in ref.names.tolist() if n not in index]
        if only_ref or len(index) != len(ref.names):
            ref_set = set(ref.names.tolist())
            only_s = [n for n in s.names.tolist() if n not in ref_set]
            raise ScoreFileError(
                f"sample sets differ between {ref.path} ({len(ref.names)} samples) and {s.path} ({len(s.names)}): "
                f"{len(only_ref)} only in the first (e.g. {only_ref[:3]}), {len(only_s)} only in the second "
                f"(e.g. {only_s[:3]})"
            )
        order = np.array([index[n] for n in ref.names.tolist()], dtype=np.int64)
        labels = s.labels[order]
        diff = np.flatnonzero(labels != ref.labels)
        if diff.size:
            i = diff[0]
            raise ScoreFileError(
                f"labels disagree between {ref.path} and {s.path} for {diff.size} samples, e.g. {ref.names[i]!r}: "
                f"{ref.labels[i]} vs {labels[i]}"
            )
        out.append(Scores(ref.names, s.scores[order], labels, s.path))
    return out


def default_weights(num_streams: int) -> list[float]:
    """1:1 for J+B, 2:2:1:1 for J+B+JM+BM (PYSKL's recipe), equal weights otherwise."""
    if num_streams == 4:
        return [2.0, 2.0, 1.0, 1.0]
    return [1.0] * num_streams


def fuse_scores(streams: Sequence[Scores], weights: Sequence[float] | None = None) -> Scores:
    """Weighted sum of the streams' scores after aligning them by sample name (first stream's order)."""
    weights = default_weights(len(streams)) if weights is None else [float(w) for w in weights]
    if len(weights) != len(streams):
        raise ValueError(f"fuse_scores: {len(weights)} weights for {len(streams)} streams")
    aligned = align(streams)
    fused = sum(w * s.scores.astype(np.float64) for w, s in zip(weights, aligned))
    return Scores(aligned[0].names, fused, aligned[0].labels, "fusion")


def evaluate(scores: Scores) -> dict[str, float]:
    """top1, top5 and mean_class_acc (fractions in [0, 1]), the names of the trainer's metrics.jsonl."""
    return classification_metrics(scores)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: prints each stream's and the fusion's accuracies; 1 with one `error:` line for a bad score file."""

    def body() -> None:
        report(argv)

    return cli.run(body)


def report(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Parses the command line, prints each stream's and the fusion's accuracies; returns the fusion's metrics."""
    parser = cli.parser("skeljax-ensemble", __doc__)
    parser.add_argument("files", nargs="+", help="score files (.npz), e.g. J.npz B.npz JM.npz BM.npz")
    parser.add_argument("--weights", nargs="+", type=float, help="one weight per file (default 1:1 / 2:2:1:1)")
    parser.add_argument("--out", help="optionally write the fused scores to this .npz file")
    args = cli.parse(parser, argv)
    if args.weights is not None and len(args.weights) != len(args.files):
        parser.error(f"--weights has {len(args.weights)} values for {len(args.files)} files")
    streams = [read_scores(f) for f in args.files]
    weights = default_weights(len(streams)) if args.weights is None else args.weights
    fused = fuse_scores(streams, weights)

    print(f"{len(fused.names)} samples, {fused.num_classes} classes")
    print(f"{'stream':<40} {'weight':>7} {'top1':>7} {'top5':>7} {'mean_cls':>8}")
    for s, w in zip(streams, weights):
        m = evaluate(s)
        print(f"{s.path:<40} {w:>7g} {100 * m['top1']:>7.2f} {100 * m['top5']:>7.2f} {100 * m['mean_class_acc']:>8.2f}")
    m = evaluate(fused)
    print(f"{'fusion':<40} {'':>7} {100 * m['top1']:>7.2f} {100 * m['top5']:>7.2f} {100 * m['mean_class_acc']:>8.2f}")
    if args.out:
        write_scores(args.out, fused.names, fused.scores, fused.labels)
        print(f"wrote the fused scores of {len(fused.names)} samples to {args.out}")
    return m


if __name__ == "__main__":
    sys.exit(main())
