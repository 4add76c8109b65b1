"""Predict actions for your own skeletons with one checkpoint or a multi-stream fusion of several.

    python -m skeljax.predict --checkpoint CKPT --input FILE [--json] [--feat j|b|jm|bm]
        [--labels ntu60|ntu120|synthetic|FILE.txt] [--sample FRAME_DIR]
        [--recipe pyskl|vanilla|mmaction0x|stgcn_original]
    python -m skeljax.predict --checkpoint J_DIR --checkpoint B_DIR --input FILE     # J+B fusion (1:1)
    python -m skeljax.predict --checkpoint CKPT --input LONG.npy --window 100 --stride 50   # one line per window

CKPT is a skeljax model directory (`model_spec.json` + `state/`) or a released PyTorch `.pth` (PYSKL, MMAction2
0.x / 1.x). FILE is a raw NTU `.skeleton` file, a `.npy` array (M, T, V, C) (COCO-17 2D: C = 3 = x, y, score in
pixels of a 1080x1920 image unless --img-shape), or a PYSKL / MMAction2 0.x annotation pickle (`.pkl`: every sample,
or only --sample FRAME_DIR). Pose-estimator output is read too (skeljax.data.pose_estimators, docs/pose_estimators.md):
MMPose's saved predictions (`.json`, COCO-17) and OpenPose's `--write_json` folder (BODY_25 or COCO-18, mapped to the
model's joints); people are linked into tracks by box IoU and the --max-persons (2) tracks with the highest summed
keypoint score are kept, reported on stderr and, with --json, as "tracks". A model trained on a custom joint layout
(config.model.layout='custom') takes `.npy` inputs (M, T, V, C) with the layout's joints and channels (x, y, score for
2D layouts with scores); its model directory stores the layout (older `best/` / `final/` exports: the run's
`config.json` beside them gives it).

Each checkpoint's own test pipeline is applied: PYSKL (ST-GCN++, PYSKL ST-GCN) 10 clips x 100 frames with the mean of
the clips' softmax; vanilla ST-GCN (--recipe vanilla) PadTo 300; MMAction2 0.x one clip of 300 looped frames, whose
raw logits are shown through a softmax. The layout, modality (j, b, jm, bm), recipe, clip length, clips, averaging and
class names are read from the "test" settings of a model directory's `model_spec.json` (written by the trainer's
exports, skeljax-convert and `zoo get`; skeljax.checkpoint.test_settings); --feat, --recipe and --labels replace
them (another recipe brings its own clip settings). Directories written before that key: from its flat keys (`feat`,
`recipe`, `clip_len`, `test_num_clips`, `test_average`, `class_names`; a conflicting flag is an error) or the
training run's `config.json` beside a `best/` or `final/` directory, else from the flags. Several checkpoints are fused as PYSKL does: a weighted sum of
the streams' probabilities (default weights 1:1, 2:2:1:1 for four streams); the printed probability is that sum
divided by the sum of the weights.

Output: the top-5 classes per sample. With --json, one line per sample, in input order (JSON Lines), each exactly
{"top5": [{"index": int, "label": str, "prob": float}, ...]}, and for a pose-estimator file also
"tracks": {"kept": [track ids], "found": int}.

Long recordings: --window T [--stride S] predicts windows of T frames S apart (default S = T) of one sequence, each
through the same test pipeline as a whole sample; windows start at 0, S, 2S, ... while T frames fit, and when frames
are left over a last window covers the final T frames (a sequence of at most T frames is one window). One line per
window with its frame range, end exclusive: `[start, end)  label prob | ...`, or with --json exactly
{"start": int, "end": int, "top5": [...]}. Python: `predict_windows(checkpoints, input, window=T, stride=S)`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skeljax import cli, inference, layouts, metrics, sharding
from skeljax.data import pose_estimators
from skeljax.data import transforms as T
from skeljax.data.annotations import load_annotations
from skeljax.data.ntu_meta import NTU60_CLASSES, NTU120_CLASSES, parse_ntu_name
from skeljax.data.pipelines import RECIPES, Pipeline, make_pipeline
from skeljax.data.synthetic import SYNTHETIC_CLASSES
from skeljax.ensemble import default_weights
from skeljax.models.stgcn import Recognizer

LABEL_SETS: dict[str, tuple[str, ...]] = {
    "ntu60": NTU60_CLASSES,
    "ntu120": NTU120_CLASSES,
    "synthetic": SYNTHETIC_CLASSES,
}
INPUT_EXTENSIONS = (".skeleton", ".npy", ".pkl", ".pickle", ".json")
DEFAULT_IMG_SHAPE = pose_estimators.DEFAULT_IMG_SHAPE  # (H, W) of 2D pixels when neither the flag nor the file says
AVERAGES = inference.AVERAGES
ROWS_PER_CALL = 16  # model rows (samples x clips) per forward call; bounds memory, fixes the compiled shape


class PredictError(ValueError):
    """A user error: a missing or unreadable input, a layout the checkpoint cannot take, conflicting options."""


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints.
# ----------------------------------------------------------------------------------------------------------------


def pipeline_layout(num_joints: int, where: str) -> layouts.SkeletonLayout:
    """The data layout ('nturgb+d' 3D or 'coco' 2D) of a model from its number of joints."""
    layout = layouts.by_joints(num_joints)
    if layout is not None:
        return layout
    raise PredictError(
        f"{where}: the model has {num_joints} joints; without its training run's config.json "
        "(custom layouts: a run's best/ or final/ directory) prediction knows NTU-25 3D and COCO-17 2D "
        "skeletons only"
    )


def custom_data_layout(model_config: Mapping[str, Any], where: str) -> layouts.SkeletonLayout:
    """The layout of a run's `model` config section with layout 'custom' (as config.json stores it)."""
    try:
        return layouts.from_config(model_config.get("custom_layout"))
    except (ValueError, TypeError, AttributeError) as e:
        raise PredictError(f"{where}: {e}") from e


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
            self.layout: layouts.SkeletonLayout = pipeline_layout(self.num_joints, self.source)
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
        # the compiled forward of evaluation (skeljax.inference), with the clip-averaged features as well
        mesh = sharding.make_mesh()
        self._devices = mesh.size
        self._forward, self._params, self._stats = inference.model_forward(
            self.model, mesh, self.average, features=True
        )

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


def default_recipe(model: Recognizer) -> str:
    """The recipe a model was trained with: MMAction2 0.x's, the original ST-GCN's (its Kinetics and NTU inputs),
    else PYSKL's (vanilla ST-GCN must be asked for)."""
    if model.spec.family == "stgcn_original":
        return "stgcn_original"
    return "mmaction0x" if model.spec.family == "mmaction0x" else "pyskl"


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
    from skeljax.checkpoint import TEST_KEY

    meta = meta or {}
    stored = meta.get(TEST_KEY)
    if isinstance(stored, Mapping):
        settings = overridden(stored, feat=feat, recipe=recipe)
    else:
        settings = _legacy_settings(meta, feat, recipe, source)
    s = complete_settings(model, settings)
    names = s.get("class_names")
    return Predictor(
        model,
        source,
        feat=s["feat"],
        recipe=s["recipe"],
        data_layout=_stored_layout(s, source),
        clip_len=s["clip_len"],
        num_clips=s["test_num_clips"],
        average=s["test_average"],
        class_names=tuple(names) if names else None,
    )


def overridden(settings: Mapping[str, Any], *, feat: str | None = None, recipe: str | None = None) -> dict[str, Any]:
    """Stored test settings with the requested feat / recipe; another recipe drops the stored recipe's clip
    length, clip count and averaging (the new recipe's defaults apply)."""
    s = dict(settings)
    if feat is not None:
        s["feat"] = feat
    if recipe is not None and recipe != s.get("recipe"):
        for k in ("clip_len", "test_num_clips", "test_average"):
            s.pop(k, None)
        s["recipe"] = recipe
    return s


def _legacy_settings(meta: Mapping[str, Any], feat: str | None, recipe: str | None, source: str) -> dict[str, Any]:
    """The flat keys of a model_spec.json written before the "test" key (or of a run's config.json)."""
    stored_feat = meta.get("feat")
    if stored_feat is not None and feat is not None and feat != stored_feat:
        raise PredictError(
            f"{source}: the checkpoint was trained on feat {stored_feat!r} but feat {feat!r} was "
            "requested; leave the feat option out to use the stored one"
        )
    stored_recipe = meta.get("recipe")
    if stored_recipe is not None and recipe is not None and recipe != stored_recipe:
        raise PredictError(f"{source}: the checkpoint's test recipe is {stored_recipe!r} but {recipe!r} was requested")
    s = {k: meta.get(k) for k in ("clip_len", "test_num_clips", "test_average", "class_names")}
    s.update(feat=stored_feat or feat, recipe=stored_recipe or recipe)
    if meta.get("custom_layout"):  # a run's model config section: {"layout": "custom", "custom_layout": {...}}
        s.update(layout="custom", custom_layout=meta["custom_layout"].get("custom_layout"))
    return s


def complete_settings(model: Recognizer, settings: Mapping[str, Any]) -> dict[str, Any]:
    """`settings` with the defaults filled in: feat 'j', the family's recipe (`default_recipe`), and for PYSKL's
    recipe 10 clips x 100 frames, else one clip of 300, averaged as 'score' for MMAction2 0.x, else 'prob'."""
    s = {k: v for k, v in settings.items() if v is not None}
    s["feat"] = s.get("feat") or "j"
    recipe = s["recipe"] = s.get("recipe") or default_recipe(model)
    pyskl = recipe == "pyskl"
    s["clip_len"] = int(s.get("clip_len") or (100 if pyskl else 300))
    s["test_num_clips"] = int(s.get("test_num_clips") or (10 if pyskl else 1))
    s["test_average"] = s.get("test_average") or ("score" if recipe == "mmaction0x" else "prob")
    return s


def _stored_layout(settings: Mapping[str, Any], source: str) -> layouts.SkeletonLayout | None:
    """The stored data layout (a custom one, or a built-in name); None: from the model's number of joints."""
    name = settings.get("layout")
    if name == "custom":
        return custom_data_layout({"custom_layout": settings.get("custom_layout")}, source)
    if name is None:
        return None
    try:
        return layouts.get(name)
    except ValueError as e:
        raise PredictError(f"{source}: {e}") from e


def run_config_meta(model_dir: str) -> dict[str, Any]:
    """Test settings from the training run's `config.json` when `model_dir` is a run's `best/` or `final/`."""
    model_dir = os.path.abspath(model_dir)
    cfg_path = os.path.join(os.path.dirname(model_dir), "config.json")
    if os.path.basename(model_dir) not in ("best", "final") or not os.path.isfile(cfg_path):
        return {}
    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
        data = cfg.get("data", {})
        meta = {
            "feat": data.get("feat"),
            "recipe": data.get("recipe"),
            "clip_len": data.get("clip_len"),
            "test_num_clips": data.get("test_num_clips"),
            "test_average": cfg.get("test_average"),
        }
        model = cfg.get("model", {})
        if model.get("layout") == "custom":  # the joints, edges and channels the model was trained on
            meta["custom_layout"] = {"layout": "custom", "custom_layout": model.get("custom_layout")}
    except (ValueError, AttributeError, OSError) as e:
        raise PredictError(f"{cfg_path}: unreadable run configuration ({e})") from e
    return {k: v for k, v in meta.items() if v is not None}


def load_predictor(
    checkpoint: str | os.PathLike, *, feat: str | None = None, recipe: str | None = None, trusted: bool = False
) -> Predictor:
    """Load a skeljax model directory or a PyTorch `.pth` with its test pipeline."""
    from skeljax import checkpoint as ckpt
    from skeljax import zoo
    from skeljax.models import convert

    path = zoo.resolve(os.fspath(checkpoint))  # 'zoo:NAME' -> its model directory, fetched on first use
    if not os.path.exists(path):
        raise PredictError(f"{path}: no such checkpoint (expected a skeljax model directory or a .pth file)")
    if os.path.isdir(path):
        _, meta = ckpt.read_spec(path)
        if ckpt.TEST_KEY not in meta:  # written before model directories stored their test settings
            meta = {**run_config_meta(path), **meta}
        return from_model(ckpt.load_model(path), feat=feat, recipe=recipe, source=path, meta=meta)
    return from_model(convert.load_pytorch_checkpoint(path, trusted=trusted), feat=feat, recipe=recipe, source=path)


# ----------------------------------------------------------------------------------------------------------------
# Inputs.
# ----------------------------------------------------------------------------------------------------------------


def check_sample(
    sample: Mapping[str, Any], layout: layouts.LayoutArg, where: str, checkpoint: str = "the checkpoint"
) -> None:
    """Clear error naming the file when a sample's joints/channels do not fit the checkpoint's layout."""
    kp = sample.get("keypoint")
    name = sample.get("frame_dir", "?")
    if not isinstance(kp, np.ndarray) or kp.ndim != 4:
        raise PredictError(
            f"{where}: sample {name}: 'keypoint' must be an array (M, T, V, C), got "
            f"{getattr(kp, 'shape', type(kp).__name__)}"
        )
    layout = layouts.get(layout)
    v, c = layout.num_joints, layout.keypoint_channels
    if kp.shape[2:] != (v, c):
        raise PredictError(
            f"{where}: sample {name}: expected {v} joints x {c} channels for {checkpoint} (layout "
            f"{layout.name!r}), got {kp.shape[2]} x {kp.shape[3]}"
        )
    if layout.score and "keypoint_score" not in sample:
        raise PredictError(f"{where}: sample {name}: layout {layout.name!r} needs keypoint_score (M, T, V)")


def _read_skeleton(path: str, conversion: str) -> dict:
    from skeljax.data import ntu_raw

    frames = ntu_raw.parse_skeleton_file(path)
    if conversion == "mmaction0x":
        kp = ntu_raw.mmaction0x_keypoints(frames, path)
    elif conversion == "original":  # long recordings are left whole: --window cuts them into 300-frame inputs
        kp = ntu_raw.original_keypoints(frames, path, max_frames=None)
    else:
        kp = ntu_raw.pyskl_keypoints(ntu_raw.track_bodies(frames), path).astype(np.float16)
    name = Path(path).name.split(".")[0]
    anno = {"frame_dir": name, "keypoint": kp, "total_frames": kp.shape[1]}
    try:
        anno["label"] = parse_ntu_name(name)["action"] - 1
    except ValueError:
        pass  # not an NTU file name: no ground truth
    return anno


def _read_npy(path: str, layout: layouts.LayoutArg, img_shape) -> dict:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise PredictError(f"{path}: cannot read as a .npy array ({e})") from e
    return array_annotation(arr, Path(path).stem, layout, path, img_shape)


def array_annotation(arr: np.ndarray, name: str, layout: layouts.LayoutArg, where: str, img_shape=(1080, 1920)) -> dict:
    """An array (M, T, V, C) -> annotation dict; COCO-17 arrays carry the score as channel 2 (x, y, score)."""
    layout = layouts.get(layout)
    v, needs_score = layout.num_joints, layout.score
    want = layout.keypoint_channels + needs_score
    if arr.ndim != 4 or arr.dtype.kind not in "fiu":
        raise PredictError(f"{where}: expected a numeric array (M, T, V, C), got {arr.dtype} {arr.shape}")
    if arr.shape[2:] != (v, want):
        extra = " (x, y, score)" if needs_score else ""
        raise PredictError(
            f"{where}: expected {v} joints x {want} channels{extra} for layout "
            f"{layout.name!r}, got {arr.shape[2]} x {arr.shape[3]}"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise PredictError(f"{where}: the array {arr.shape} has no person or no frame")
    if not np.isfinite(arr).all():
        raise PredictError(f"{where}: the array holds NaN or inf")
    anno = {"frame_dir": name, "total_frames": arr.shape[1]}
    if needs_score:
        anno.update(
            keypoint=arr[..., :2].astype(np.float32),
            keypoint_score=arr[..., 2].astype(np.float32),
            img_shape=tuple(img_shape),
        )
    else:
        anno["keypoint"] = arr if arr.dtype.kind == "f" else arr.astype(np.float32)
    return anno


def _read_pickle(path: str, sample: str | None) -> list[dict]:
    obj = load_annotations(path)
    annos = obj["annotations"] if isinstance(obj, dict) else obj
    if not all(isinstance(a, dict) and "keypoint" in a for a in annos):
        raise PredictError(f"{path}: every annotation must be a dict with a 'keypoint' array")
    if sample is not None:
        annos = [a for a in annos if a.get("frame_dir") == sample]
        if not annos:
            raise PredictError(f"{path}: no sample with frame_dir {sample!r}")
    if not annos:
        raise PredictError(f"{path}: holds no samples")
    return annos


def _check_path(path: str, sample: str | None) -> str:
    """The input's extension, after checking that it is a known kind and that the file exists."""
    if os.path.isdir(path):  # OpenPose's --write_json folder
        if sample is not None:
            raise PredictError(f"{path}: a sample name selects from an annotation pickle, not a folder")
        return "openpose"
    ext = os.path.splitext(path)[1].lower()
    if ext not in INPUT_EXTENSIONS:
        raise PredictError(
            f"{path}: unknown input type {ext or '(no extension)'!r}; expected one of {', '.join(INPUT_EXTENSIONS)}"
        )
    if not os.path.isfile(path):
        raise PredictError(f"{path}: no such input file (or OpenPose folder)")
    if sample is not None and ext not in (".pkl", ".pickle"):
        raise PredictError(f"{path}: a sample name selects from an annotation pickle, not a {ext} file")
    return ext


def read_input(
    path: str | os.PathLike,
    *,
    layout: layouts.LayoutArg,
    conversion: str = "pyskl",
    sample: str | None = None,
    img_shape=None,
    max_persons: int = pose_estimators.MAX_PERSONS,
) -> list[dict]:
    """A file -> annotation dicts: `.skeleton` (raw NTU), `.npy` (M, T, V, C), `.pkl`/`.pickle` (annotations),
    `.json` (MMPose's saved predictions, one OpenPose frame, or a Kinetics-skeleton video as ST-GCN's demo writes it:
    skeljax.data.read_kinetics_skeleton) or a folder of OpenPose `*_keypoints.json` files
    (skeljax.data.pose_estimators). `img_shape` (H, W) of 2D pixels: default the file's, else 1080 x 1920;
    `max_persons`: how many tracks of a pose-estimator file are kept."""
    path = os.fspath(path)
    ext = _check_path(path, sample)
    if ext in ("openpose", ".json"):
        return [_read_pose_json(path, layout, img_shape, max_persons)]
    if ext == ".skeleton":
        layout = layouts.get(layout)
        if layout != layouts.BUILTIN["nturgb+d"]:
            raise PredictError(
                f"{path}: a .skeleton file holds NTU-25 3D joints but the checkpoint takes "
                f"{layout.expected()} (layout {layout.name!r})"
            )
        return [_read_skeleton(path, conversion)]
    if ext == ".npy":
        return [_read_npy(path, layout, img_shape or DEFAULT_IMG_SHAPE)]
    return _read_pickle(path, sample)


def _read_pose_json(path: str, layout: layouts.LayoutArg, img_shape, max_persons: int) -> dict:
    """Dispatch a `.json` file on its content (or a folder of OpenPose files) to its reader."""
    kind, obj = "openpose_folder", None
    if not os.path.isdir(path):
        obj = pose_estimators.load_json(path)
        kind = pose_estimators.json_format(obj)
    if kind == "kinetics":
        return _read_kinetics_json(path, layout)
    if kind == "mmpose":
        return pose_estimators.read_mmpose(path, layout, img_shape=img_shape, max_persons=max_persons, obj=obj)
    if kind in ("openpose", "openpose_folder"):
        return pose_estimators.read_openpose(path, layout, img_shape=img_shape, max_persons=max_persons)
    raise PredictError(
        f"{path}: unknown JSON content; expected MMPose's saved predictions ({{'meta_info', 'instance_info'}} or "
        "a list of {'frame_id', 'instances'}), an OpenPose keypoints file ({'people'}) or a Kinetics-skeleton "
        "video ({'data'})"
    )


def _read_kinetics_json(path: str, layout: layouts.LayoutArg) -> dict:
    from skeljax.data.kinetics import read_kinetics_skeleton

    layout = layouts.get(layout)
    if layout != layouts.BUILTIN["openpose"]:
        raise PredictError(
            f"{path}: a Kinetics-skeleton .json file holds OpenPose-18 2D joints but the checkpoint "
            f"takes {layout.expected()} (layout {layout.name!r})"
        )
    anno = read_kinetics_skeleton(path)
    if anno["label"] < 0:  # the demo writes label_index -1: no ground truth
        del anno["label"]
    return anno


def _samples_for(
    inputs, predictor: Predictor, sample, img_shape, max_persons: int = pose_estimators.MAX_PERSONS
) -> list[tuple[str, list[dict]]]:
    """(where, annotation dicts) per input item, read the way `predictor` needs."""
    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    out = []
    for k, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            out.append(
                (
                    os.fspath(item),
                    read_input(
                        item,
                        layout=predictor.layout,
                        conversion=predictor.conversion,
                        sample=sample,
                        img_shape=img_shape,
                        max_persons=max_persons,
                    ),
                )
            )
        elif isinstance(item, np.ndarray):
            where = f"<array {k}>"
            shape = img_shape or DEFAULT_IMG_SHAPE
            out.append((where, [array_annotation(item, f"array{k}", predictor.layout, where, shape)]))
        elif isinstance(item, Mapping):
            out.append((f"<annotation {item.get('frame_dir', k)}>", [dict(item)]))
        else:
            raise PredictError(
                f"input {k}: expected a file path, an array (M, T, V, C) or an annotation dict, got "
                f"{type(item).__name__}"
            )
    return out


# ----------------------------------------------------------------------------------------------------------------
# Prediction and fusion.
# ----------------------------------------------------------------------------------------------------------------


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


def class_names_for(
    num_classes: int, labels: str | Sequence[str] | None = None, stored: Sequence[str] | None = None
) -> tuple[str, ...]:
    """Names from `labels` (a set name, a .txt file with one name per line, or a list), else stored ones, else
    NTU-60/120 by class count, else 'class i'."""
    if isinstance(labels, str):
        if labels in LABEL_SETS:
            names = LABEL_SETS[labels]
        else:
            if not os.path.isfile(labels):
                raise PredictError(f"{labels}: not a label set ({', '.join(LABEL_SETS)}) nor a label file")
            with open(labels, encoding="utf-8") as f:
                names = tuple(line.strip() for line in f if line.strip())
        where = labels
    elif labels is not None:
        names, where = tuple(labels), "the label list"
    elif stored:
        names, where = tuple(stored), "the checkpoint's class_names"
    else:
        return {60: NTU60_CLASSES, 120: NTU120_CLASSES}.get(num_classes) or tuple(
            f"class {i}" for i in range(num_classes)
        )
    if len(names) != num_classes:
        raise PredictError(f"{where}: {len(names)} class names for a model with {num_classes} classes")
    return tuple(names)


def _as_predictors(checkpoints, feats, recipes, trusted) -> list[Predictor]:
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
            _check_path(os.fspath(item), sample)  # fail fast, before loading and compiling models
    preds = _as_predictors(checkpoints, feats, recipes, trusted)
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
    stream_probs, stream_feats, names, gts = [], [], None, None
    for p in preds:
        groups = _samples_for(inputs, p, sample, img_shape, max_persons)
        probs, fts = [], []
        for where, annos in groups:
            pr, ft = p.scores(annos, where)
            probs.append(pr)
            fts.append(ft)
        if names is None:
            names = [str(a.get("frame_dir", "?")) for _, annos in groups for a in annos]
            gts = [a.get("label") for _, annos in groups for a in annos]
            gts = [int(g) if isinstance(g, (int, np.integer)) else None for g in gts]
            tracks = [_tracks_of(a) for _, annos in groups for a in annos]
        stream_probs.append(np.concatenate(probs))
        stream_feats.append(np.concatenate(fts))
    scores = sum(w * s for w, s in zip(weights, stream_probs))
    return Prediction(
        names=names,
        labels=gts,
        scores=scores,
        probs=scores / sum(weights),
        stream_probs=stream_probs,
        weights=weights,
        class_names=class_names_for(preds[0].num_classes, labels, preds[0].class_names),
        features=stream_feats if return_features else None,
        tracks=tracks,
    )


def _tracks_of(anno: Mapping[str, Any]) -> dict[str, Any] | None:
    """The tracks a pose-estimator reader kept and found (skeljax.data.pose_estimators), or None."""
    if "track_ids" not in anno:
        return None
    return {"kept": [int(k) for k in anno["track_ids"]], "found": int(anno.get("num_tracks", len(anno["track_ids"])))}


# ----------------------------------------------------------------------------------------------------------------
# Long recordings: one prediction per window of frames.
# ----------------------------------------------------------------------------------------------------------------


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
        _check_path(os.fspath(input), sample)  # fail fast, before loading and compiling models
    feats, recipes, trusted = options.pop("feats", None), options.pop("recipes", None), options.pop("trusted", False)
    preds = _as_predictors(checkpoints, feats, recipes, trusted)
    readers = {(p.layout.name, p.layout.num_joints, p.conversion) for p in preds}
    if len(readers) > 1:
        raise PredictError(
            "windows of a fusion need checkpoints that read the input the same way (one layout and .skeleton "
            "conversion); got " + ", ".join(f"{p.source}: {p.layout.name}, {p.conversion}" for p in preds)
        )
    extra = {} if max_persons is None else {"max_persons": max_persons}
    groups = _samples_for(input, preds[0], sample, img_shape, **extra)
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


# ----------------------------------------------------------------------------------------------------------------
# Command line.
# ----------------------------------------------------------------------------------------------------------------


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


def _windows_from_args(args) -> list[WindowPrediction]:
    return predict_windows(
        args.checkpoint,
        args.input,
        window=args.window,
        stride=args.stride,
        sample=args.sample,
        img_shape=tuple(args.img_shape) if args.img_shape else None,
        max_persons=getattr(args, "max_persons", None),
        feats=args.feat,
        recipes=args.recipe,
        weights=args.weights,
        labels=args.labels,
        trusted=args.trusted,
    )


def _parser():
    """The command line of skeljax-predict."""
    p = cli.parser("skeljax-predict", __doc__)
    p.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        help="skeljax model directory or .pth; repeat for multi-stream fusion",
    )
    p.add_argument(
        "--input",
        required=True,
        help=".skeleton, .npy (M, T, V, C), annotation .pkl, a .json (MMPose, OpenPose, Kinetics-skeleton) or an "
        "OpenPose --write_json folder",
    )
    p.add_argument(
        "--feat",
        action="append",
        choices=T.FEATS,
        help="modality when the checkpoint does not store it (default j); once, or once per checkpoint",
    )
    p.add_argument(
        "--recipe",
        action="append",
        choices=RECIPES,
        help="test pipeline when the checkpoint does not store it (default: pyskl, mmaction0x for "
        "MMAction2 0.x models, stgcn_original for the original ST-GCN's); once, or once per checkpoint",
    )
    p.add_argument("--weights", nargs="+", type=float, help="fusion weights, one per checkpoint")
    p.add_argument(
        "--labels",
        help="class names: ntu60, ntu120, synthetic or a .txt file with one name per line "
        "(default: NTU-60/120 by the number of classes)",
    )
    p.add_argument("--sample", help="only this frame_dir of an annotation pickle")
    p.add_argument(
        "--img-shape",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        help="image size of 2D keypoints in pixels (.npy, MMPose, OpenPose; default: the file's, else 1080 1920)",
    )
    p.add_argument(
        "--max-persons",
        type=int,
        default=pose_estimators.MAX_PERSONS,
        help="tracks kept from an MMPose / OpenPose file, those with the highest summed keypoint score "
        f"(default {pose_estimators.MAX_PERSONS}, PYSKL's two-person input)",
    )
    p.add_argument("--json", action="store_true", help='JSON Lines output, one {"top5": [...]} per sample')
    p.add_argument("--trusted", action="store_true", help="allow full unpickling of a .pth (runs code in the file)")
    p.add_argument(
        "--window",
        type=int,
        metavar="T",
        help="predict each window of T frames of one long sequence: one line per window with its frame range "
        '[start, end), end exclusive (with --json: {"start", "end", "top5"})',
    )
    p.add_argument("--stride", type=int, metavar="S", help="frames between window starts (default: T, no overlap)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = _parser()
    args = cli.parse(p, argv)
    if args.stride is not None and args.window is None:
        p.error("--stride needs --window")
    n = len(args.checkpoint)
    for name in ("feat", "recipe"):
        value = getattr(args, name)
        if value is not None and len(value) not in (1, n):
            p.error(f"--{name} given {len(value)} times for {n} checkpoints (give it once or once per checkpoint)")
        if value is not None and len(value) == 1:
            setattr(args, name, value * n)

    def body() -> None:
        if args.window is not None:
            print(format_windows(_windows_from_args(args), args.json))
            return
        pred = predict(
            args.checkpoint,
            args.input,
            feats=args.feat,
            weights=args.weights,
            recipes=args.recipe,
            sample=args.sample,
            labels=args.labels,
            img_shape=tuple(args.img_shape) if args.img_shape else None,
            trusted=args.trusted,
            max_persons=args.max_persons,
        )
        report_tracks(pred)
        print(format_json(pred) if args.json else format_text(pred))

    return cli.run(body)


if __name__ == "__main__":
    sys.exit(main())
