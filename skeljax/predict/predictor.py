"""Prediction with one checkpoint or a multi-stream fusion of several: `Predictor` (a model with its test
pipeline), `load_predictor`, `predict` (-> `Prediction`) and the text and JSON Lines output of a prediction.

Several checkpoints are fused as PYSKL does: a weighted sum of the streams' probabilities (default weights 1:1,
2:2:1:1 for four streams); `Prediction.probs` is that sum divided by the sum of the weights.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skeljax import layouts, metrics, sharding
from skeljax.data import pose_estimators
from skeljax.data import transforms as T
from skeljax.data.pipelines import RECIPES, Pipeline, make_pipeline
from skeljax.ensemble import default_weights
from skeljax.models import forward
from skeljax.models.stgcn import Recognizer
from skeljax.predict import settings as S
from skeljax.predict.errors import PredictError
from skeljax.predict.inputs import check_path, check_sample, read_inputs

AVERAGES = forward.AVERAGES
ROWS_PER_CALL = 16  # model rows (samples x clips) per forward call; bounds memory, fixes the compiled shape


@dataclasses.dataclass
class Predictor:
    """A model in eval mode with the test pipeline it needs; `scores(samples)` runs it."""

    model: Recognizer
    source: str
    feat: str
    recipe: str
    clip_len: int
    num_clips: int
    average: str
    class_names: tuple[str, ...] | None = None
    data_layout: layouts.SkeletonLayout | None = None  # a custom layout (the run's config); None: NTU-25 / COCO-17

    def __post_init__(self):
        self.model.eval()
        if self.data_layout is None:
            self.layout: layouts.SkeletonLayout = S.pipeline_layout(self.num_joints, self.source)
        elif self.data_layout.num_joints != self.num_joints:
            raise PredictError(
                f"{self.source}: the model has {self.num_joints} joints, its run's custom layout "
                f"{self.data_layout.name!r} {self.data_layout.num_joints}"
            )
        else:
            self.layout = self.data_layout
        if self.recipe not in RECIPES:
            raise PredictError(f"{self.source}: unknown recipe {self.recipe!r}; expected one of {RECIPES}")
        if self.feat not in T.FEATS:
            raise PredictError(f"{self.source}: unknown feat {self.feat!r}; expected one of {T.FEATS}")
        if self.average not in AVERAGES:
            raise PredictError(f"{self.source}: unknown test_average {self.average!r}; expected one of {AVERAGES}")
        try:
            self.pipeline: Pipeline = make_pipeline(
                self.layout, self.feat, self.clip_len, self.num_clips, "test", recipe=self.recipe
            )
        except ValueError as e:
            raise PredictError(f"{self.source}: {e}") from e
        # the compiled forward of evaluation (skeljax.models.forward), with the clip-averaged features as well
        mesh = sharding.make_mesh()
        self._devices = mesh.size
        self._forward, self._params, self._stats = forward.model_forward(self.model, mesh, self.average, features=True)

    @property
    def num_classes(self) -> int:
        return self.model.spec.num_classes

    @property
    def num_joints(self) -> int:
        return self.model.num_joints

    @property
    def conversion(self) -> str:
        """How a raw .skeleton file becomes 3D joints for this model: PYSKL's, MMAction2 0.x's or the original
        ST-GCN's procedure (skeljax.data.ntu_raw)."""
        return {"mmaction0x": "mmaction0x", "stgcn_original": "original"}.get(self.recipe, "pyskl")

    def scores(self, samples: Sequence[Mapping[str, Any]], where: str = "<input>") -> tuple[np.ndarray, np.ndarray]:
        """Per-sample class probabilities (N, K) and clip-averaged features (N, D) of annotation dicts."""
        clips = []
        for s in samples:
            check_sample(s, self.layout, where, self.source)
            try:
                clips.append(self.pipeline(s))
            except ValueError as e:
                raise PredictError(f"{where}: {e}") from e
        per_call = min(max(1, ROWS_PER_CALL // self.num_clips), len(clips))  # one sample: no padding to a batch
        per_call = -(-per_call // self._devices) * self._devices  # the batch is sharded over the devices
        probs, feats = [], []
        for i in range(0, len(clips), per_call):
            chunk = np.stack(clips[i : i + per_call]).astype(np.float32, copy=False)
            if chunk.shape[1] > 1 and (chunk == chunk[:, :1]).all():
                # identical clips (PYSKL's test sampling of a sample of exactly clip_len frames, as live windows
                # are): their mean is one clip's result, for the cost of one clip instead of num_clips
                chunk = chunk[:, :1]
            n = chunk.shape[0]
            if n < per_call:  # pad the last chunk so every call has the compiled shape
                chunk = np.concatenate([chunk, np.zeros((per_call - n,) + chunk.shape[1:], chunk.dtype)])
            scores, f = self._forward(self._params, self._stats, chunk)
            scores = np.asarray(scores)[:n].astype(np.float64)
            # 'prob' (PYSKL): the mean of the clips' softmax; 'score' (MMAction2 0.x): mean logits, shown as softmax
            probs.append(scores if self.average == "prob" else softmax(scores))
            feats.append(np.asarray(f)[:n])
        return np.concatenate(probs), np.concatenate(feats)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (float64, max-shifted)."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def from_model(
    model: Recognizer,
    *,
    feat: str | None = None,
    recipe: str | None = None,
    source: str = "<model>",
    meta: Mapping[str, Any] | None = None,
) -> Predictor:
    """A Predictor for an in-memory model with the test settings of `meta` (a model_spec.json dict).

    Settings under its "test" key (`checkpoint.TEST_KEY`) yield to `feat` / `recipe`; the flat keys of older
    directories (and of a run's config.json) win over them, and a conflicting feat or recipe is an error.
    """
    s = S.model_settings(model, meta, feat=feat, recipe=recipe, source=source)
    names = s.get("class_names")
    return Predictor(
        model,
        source,
        feat=s["feat"],
        recipe=s["recipe"],
        data_layout=S.stored_layout(s, source),
        clip_len=s["clip_len"],
        num_clips=s["test_num_clips"],
        average=s["test_average"],
        class_names=tuple(names) if names else None,
    )


def load_predictor(
    checkpoint: str | os.PathLike, *, feat: str | None = None, recipe: str | None = None, trusted: bool = False
) -> Predictor:
    """Load a skeljax model directory or a PyTorch `.pth` (or 'zoo:NAME') with its test pipeline."""
    from skeljax import zoo
    from skeljax.models import model_dir, state_dict

    path = zoo.resolve(os.fspath(checkpoint))  # 'zoo:NAME' -> its model directory, fetched on first use
    if not os.path.exists(path):
        raise PredictError(f"{path}: no such checkpoint (expected a skeljax model directory or a .pth file)")
    if os.path.isdir(path):
        meta = S.model_dir_meta(path)
        return from_model(model_dir.load_model(path), feat=feat, recipe=recipe, source=path, meta=meta)
    return from_model(state_dict.load_pytorch_checkpoint(path, trusted=trusted), feat=feat, recipe=recipe, source=path)


@dataclasses.dataclass
class Prediction:
    """Fused results for N samples: `scores` is PYSKL's weighted sum, `probs` that sum over the sum of weights."""

    names: list[str]
    labels: list[int | None]  # ground truth when the input carries one
    scores: np.ndarray  # (N, K) sum_i w_i * p_i
    probs: np.ndarray  # (N, K) scores / sum(w)
    stream_probs: list[np.ndarray]  # per checkpoint (N, K): mean softmax over the test clips
    weights: list[float]
    class_names: tuple[str, ...]
    features: list[np.ndarray] | None = None  # per checkpoint (N, D): pooled features averaged over clips
    # per sample: {"kept": track ids, "found": number of tracks} for pose-estimator files, else None
    tracks: list[dict[str, Any] | None] | None = None

    def top_k(self, i: int, k: int = 5) -> list[dict[str, Any]]:
        """[{'index', 'label', 'prob'}] of sample i, best first (ties by lower index)."""
        order = np.argsort(-self.probs[i], kind="stable")[:k]
        return [{"index": int(j), "label": self.class_names[j], "prob": float(self.probs[i, j])} for j in order]

    def to_scores(self) -> metrics.Scores:
        """The fused `scores` as the record evaluation and score files use (every sample needs its label)."""
        missing = [n for n, g in zip(self.names, self.labels) if g is None]
        if missing:
            raise PredictError(f"no ground-truth label for {len(missing)} samples, e.g. {missing[:3]}")
        return metrics.Scores(np.asarray(self.names, dtype=str), self.scores, np.asarray(self.labels, np.int64))


def as_predictors(checkpoints, feats, recipes, trusted) -> list[Predictor]:
    """One Predictor per stream: paths are loaded, models get their stored settings, Predictors are kept."""
    items = list(checkpoints) if isinstance(checkpoints, (list, tuple)) else [checkpoints]
    if not items:
        raise PredictError("no checkpoint given")
    feats = [None] * len(items) if feats is None else ([feats] * len(items) if isinstance(feats, str) else feats)
    recipes = (
        [None] * len(items) if recipes is None else ([recipes] * len(items) if isinstance(recipes, str) else recipes)
    )
    for what, seq in (("feats", feats), ("recipes", recipes)):
        if len(seq) != len(items):
            raise PredictError(f"{len(seq)} {what} for {len(items)} checkpoints")
    out = []
    for c, f, r in zip(items, feats, recipes):
        if isinstance(c, Predictor):
            out.append(c)
        elif isinstance(c, Recognizer):
            out.append(from_model(c, feat=f, recipe=r))
        else:
            out.append(load_predictor(c, feat=f, recipe=r, trusted=trusted))
    return out


def predict(
    checkpoints,
    inputs,
    *,
    feats=None,
    weights: Sequence[float] | None = None,
    return_features: bool = False,
    recipes=None,
    sample: str | None = None,
    labels: str | Sequence[str] | None = None,
    img_shape=None,
    trusted: bool = False,
    max_persons: int = pose_estimators.MAX_PERSONS,
) -> Prediction:
    """Predict the actions of `inputs` with one checkpoint or the fusion of several.

    checkpoints: a path (skeljax model directory or .pth), a `Predictor`, a `Recognizer`, or a list of these (one
      stream each). Reuse `load_predictor` objects to load once. feats / recipes: one value for all or one per
      checkpoint; they replace a model directory's stored "test" settings (in directories written before that
      key, stored values win and conflicting requests are errors).
    inputs: a file path (.skeleton, .npy, .pkl, .json, an OpenPose folder), an array (M, T, V, C), an annotation
      dict, or a list of these.
    weights: per-stream fusion weights (default 1:1, 2:2:1:1 for four streams).
    img_shape: (H, W) of 2D pixel inputs (default: the file's, else 1080 x 1920); max_persons: the tracks kept from
      a pose-estimator file (their ids are `Prediction.tracks`).
    """
    for item in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
        if isinstance(item, (str, os.PathLike)):
            check_path(os.fspath(item), sample)  # fail fast, before loading and compiling models
    preds = as_predictors(checkpoints, feats, recipes, trusted)
    weights = _fusion_weights(preds, weights)
    read = dict(sample=sample, img_shape=img_shape, max_persons=max_persons)
    stream_probs, stream_feats, groups = [], [], None
    for p in preds:
        read_groups, probs, fts = _stream_scores(p, inputs, read)
        if groups is None:  # every stream reads the same samples: names, labels and tracks from the first
            groups = read_groups
        stream_probs.append(probs)
        stream_feats.append(fts)
    annos = [a for _, group in groups for a in group]
    gts = [a.get("label") for a in annos]
    scores = sum(w * s for w, s in zip(weights, stream_probs))
    return Prediction(
        names=[str(a.get("frame_dir", "?")) for a in annos],
        labels=[int(g) if isinstance(g, (int, np.integer)) else None for g in gts],
        scores=scores,
        probs=scores / sum(weights),
        stream_probs=stream_probs,
        weights=weights,
        class_names=S.class_names_for(preds[0].num_classes, labels, preds[0].class_names),
        features=stream_feats if return_features else None,
        tracks=[_tracks_of(a) for a in annos],
    )


def _fusion_weights(preds: Sequence[Predictor], weights: Sequence[float] | None) -> list[float]:
    """The streams' weights (default 1:1, 2:2:1:1 for four), after checking that the streams can be fused."""
    weights = default_weights(len(preds)) if weights is None else [float(w) for w in weights]
    if len(weights) != len(preds):
        raise PredictError(f"{len(weights)} weights for {len(preds)} checkpoints")
    if sum(weights) <= 0:
        raise PredictError(f"the fusion weights must have a positive sum, got {weights}")
    num_classes = {p.num_classes for p in preds}
    if len(num_classes) > 1:
        raise PredictError(
            "the checkpoints disagree on the number of classes: "
            + ", ".join(f"{p.source}: {p.num_classes}" for p in preds)
        )
    return weights


def _stream_scores(p: Predictor, inputs, read: Mapping[str, Any]):
    """One stream: the inputs read the way `p` needs them ((where, annotation dicts) per input), and the
    per-sample probabilities (N, K) and features (N, D) of all of them."""
    groups = read_inputs(inputs, layout=p.layout, conversion=p.conversion, **read)
    probs, fts = [], []
    for where, annos in groups:
        pr, ft = p.scores(annos, where)
        probs.append(pr)
        fts.append(ft)
    return groups, np.concatenate(probs), np.concatenate(fts)


def _tracks_of(anno: Mapping[str, Any]) -> dict[str, Any] | None:
    """The tracks a pose-estimator reader kept and found (skeljax.data.pose_estimators), or None."""
    if "track_ids" not in anno:
        return None
    return {"kept": [int(k) for k in anno["track_ids"]], "found": int(anno.get("num_tracks", len(anno["track_ids"])))}


def format_text(pred: Prediction, k: int = 5) -> str:
    """Human-readable top-k per sample."""
    lines = []
    for i, name in enumerate(pred.names):
        gt = pred.labels[i]
        lines.append(
            name
            + (
                f"  (ground truth: {pred.class_names[gt]})"
                if gt is not None and 0 <= gt < len(pred.class_names)
                else ""
            )
        )
        for rank, t in enumerate(pred.top_k(i, k), 1):
            lines.append(f"  {rank}. {t['label']:<48} {t['prob']:.4f}")
    return "\n".join(lines)


def format_json(pred: Prediction, k: int = 5) -> str:
    """One JSON object per sample and line: {"top5": [{"index", "label", "prob"}, ...]}, plus
    "tracks": {"kept": [...], "found": n} for a pose-estimator file."""
    lines = []
    for i in range(len(pred.names)):
        record: dict[str, Any] = {"top5": pred.top_k(i, k)}
        if pred.tracks and pred.tracks[i] is not None:
            record["tracks"] = pred.tracks[i]
        lines.append(json.dumps(record))
    return "\n".join(lines)


def report_tracks(pred: Prediction) -> None:
    """One stderr line per pose-estimator sample: which tracks were kept of how many."""
    for name, tracks in zip(pred.names, pred.tracks or ()):
        if tracks is not None:
            print(
                f"{name}: kept tracks {tracks['kept']} of {tracks['found']} (highest summed keypoint score)",
                file=sys.stderr,
            )
