"""Long recordings: one prediction per window of frames of one sequence.

`predict_windows(checkpoints, input, window=T, stride=S)` predicts windows of T frames S apart (default S = T); windows
start at 0, S, 2S, ... while T frames fit, and when frames are left over a last window covers the final T frames (a
sequence of at most T frames is one window). Each window goes through the checkpoints' test pipelines as a whole
sample would. `format_windows` writes one line per window with its frame range, end exclusive.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skeljax.predict.errors import PredictError
from skeljax.predict.inputs import check_path, read_inputs
from skeljax.predict.predictor import as_predictors, predict


@dataclasses.dataclass
class WindowPrediction:
    """The (fused) prediction of frames [start, end) of one sequence; `end` is exclusive."""

    start: int
    end: int
    probs: np.ndarray  # (K,) as Prediction.probs
    top5: list[dict[str, Any]]  # [{'index', 'label', 'prob'}], best first

    def to_json(self) -> str:
        """One JSON Lines record: {"start": int, "end": int, "top5": [...]}."""
        return json.dumps({"start": self.start, "end": self.end, "top5": self.top5})


def window_spans(total: int, window: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) frame ranges covering `total` frames: starts 0, stride, 2 stride, ... while a whole window
    fits, then, if frames are left over, one more window aligned to the end (every window has `window` frames);
    a sequence no longer than `window` is one window of all its frames."""
    if window < 1 or stride < 1:
        raise PredictError(f"the window ({window}) and the stride ({stride}) must be positive numbers of frames")
    if total <= window:
        return [(0, total)]
    spans = [(s, s + window) for s in range(0, total - window + 1, stride)]
    if spans[-1][1] < total:
        spans.append((total - window, total))
    return spans


def window_annotation(anno: Mapping[str, Any], start: int, end: int) -> dict:
    """Frames [start, end) of an annotation dict, as a sample of its own (named 'NAME[start:end]')."""
    out = dict(anno)
    for key in ("keypoint", "keypoint_score"):
        if key in out:
            out[key] = np.asarray(out[key])[:, start:end]
    out["total_frames"] = end - start
    out["frame_dir"] = f"{anno.get('frame_dir', '?')}[{start}:{end}]"
    return out


def predict_windows(
    checkpoints,
    input,
    *,
    window: int,
    stride: int | None = None,
    sample: str | None = None,
    img_shape=None,
    max_persons: int | None = None,
    **options,
) -> list[WindowPrediction]:
    """Predict each window of `window` frames, `stride` frames apart (default: `window`, no overlap), of one
    sequence (`window_spans`); each window goes through the checkpoints' test pipelines as a whole sample would.

    checkpoints and the `options` (feats, recipes, weights, labels, trusted) as for `predict`; input: one file (an
    annotation pickle needs `sample` unless it holds one sample), array (M, T, V, C) or annotation dict.
    """
    if isinstance(input, (list, tuple)):
        raise PredictError("predict_windows takes one input sequence, not a list")
    if isinstance(input, (str, os.PathLike)):
        check_path(os.fspath(input), sample)  # fail fast, before loading and compiling models
    feats, recipes, trusted = options.pop("feats", None), options.pop("recipes", None), options.pop("trusted", False)
    preds = as_predictors(checkpoints, feats, recipes, trusted)
    readers = {(p.layout.name, p.layout.num_joints, p.conversion) for p in preds}
    if len(readers) > 1:
        raise PredictError(
            "windows of a fusion need checkpoints that read the input the same way (one layout and .skeleton "
            "conversion); got " + ", ".join(f"{p.source}: {p.layout.name}, {p.conversion}" for p in preds)
        )
    extra = {} if max_persons is None else {"max_persons": max_persons}
    p = preds[0]
    groups = read_inputs(input, layout=p.layout, conversion=p.conversion, sample=sample, img_shape=img_shape, **extra)
    annos = [a for _, group in groups for a in group]
    if len(annos) != 1:
        raise PredictError(f"{groups[0][0]}: holds {len(annos)} samples; windows need one (choose it with --sample)")
    spans = window_spans(int(np.shape(annos[0]["keypoint"])[1]), window, window if stride is None else stride)
    pred = predict(preds, [window_annotation(annos[0], s, e) for s, e in spans], **options)
    return [WindowPrediction(s, e, pred.probs[i], pred.top_k(i, 5)) for i, (s, e) in enumerate(spans)]


def format_windows(windows: Sequence[WindowPrediction], as_json: bool = False) -> str:
    """One line per window: JSON Lines records, or '[start, end)  label prob | ...' (top-5, end exclusive)."""
    if as_json:
        return "\n".join(w.to_json() for w in windows)
    return "\n".join(
        f"[{w.start}, {w.end})  " + " | ".join(f"{t['label']} {t['prob']:.4f}" for t in w.top5) for w in windows
    )
