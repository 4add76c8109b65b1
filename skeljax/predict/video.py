"""From a video to actions: decode, estimate poses, link people into tracks, predict.

`predict_video(video, checkpoints)` opens the video (skeljax.pose.video_io), runs a pose backend on every frame
(skeljax.pose, `--pose`, default mediapipe-full), links the people of successive frames by box IoU
(skeljax.data.pose_estimators: the same tracker as for MMPose / OpenPose files), keeps the `max_persons` tracks with
the highest summed keypoint score and builds the annotation dict of a COCO-17 2D sample: keypoints in pixels of the
video's own frame size (`img_shape`), as PYSKL's 2D models expect. That sample is predicted whole, or per window of
frames (`window_spans`), by one checkpoint or a fusion; the default checkpoint is the zoo's ST-GCN++ NTU-60 X-Sub
2D joint model. Only 2D COCO-17 models fit; any other is refused before a frame is decoded.

`save_pose` writes the tracked keypoints as MMPose's saved predictions (`meta_info` with the image size, then
`instance_info` frames with `keypoints`, `keypoint_scores`, `bbox`), which `--input` reads back to the same sample,
so a long video is estimated once. With `per_person`, each kept track is predicted alone (the model's second person
zero, as for a one-person clip) in each window where it appears (`predict_people`).
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

from skeljax import layouts
from skeljax.data import pose_estimators
from skeljax.io.atomic import atomic_file
from skeljax.pose import DEFAULT_POSE, PersonPose, make_estimator, video_io
from skeljax.pose.estimators import require_extra
from skeljax.predict.errors import PredictError
from skeljax.predict.predictor import as_predictors, predict
from skeljax.predict.windows import WindowPrediction, format_windows, window_annotation, window_spans

DEFAULT_CHECKPOINT = "zoo:stgcnpp_ntu60_xsub_2d_j"
COCO2D_HINT = (
    "a video gives COCO-17 2D keypoints, which only 2D COCO-17 models take: the zoo's *_2d_* rows (e.g. "
    f"{DEFAULT_CHECKPOINT}, `skeljax-zoo list`) or a model trained with layout 'coco'"
)


@dataclasses.dataclass
class PersonWindowPrediction:
    """The prediction for one track alone over frames [start, end)."""

    track: int
    start: int
    end: int
    probs: np.ndarray  # (K,)
    top5: list[dict[str, Any]]

    def to_json(self) -> str:
        """One JSON Lines record: {"track": int, "start": int, "end": int, "top5": [...]}."""
        return json.dumps({"track": self.track, "start": self.start, "end": self.end, "top5": self.top5})


@dataclasses.dataclass
class VideoPrediction:
    """The tracked pose sample of a video and its predictions: one `WindowPrediction` per window (the whole video
    is one window without `window`), or with `per_person` one `PersonWindowPrediction` per track and window."""

    annotation: dict
    windows: list[WindowPrediction] | list[PersonWindowPrediction]


def require_coco_2d(predictors: Sequence[Any]) -> None:
    """A PredictError naming every checkpoint that is not a 2D COCO-17 model."""
    coco = layouts.BUILTIN["coco"]
    wrong = [p for p in predictors if p.layout != coco]
    if wrong:
        got = "; ".join(f"{p.source} takes {p.layout.expected()} (layout {p.layout.name!r})" for p in wrong)
        raise PredictError(f"{got}: {COCO2D_HINT}")


def estimate_video(
    source: str | int | os.PathLike,
    *,
    pose: str | os.PathLike = DEFAULT_POSE,
    max_persons: int = pose_estimators.MAX_PERSONS,
    mirror: str | None = None,
    progress: bool = True,
    estimator=None,
) -> dict:
    """The tracked COCO-17 annotation dict of a video (module docstring), plus its "fps".

    `estimator` (a skeljax.pose.PoseEstimator, fresh for this video) replaces making one from `pose`; it is not
    closed here. The video is opened first, so a file that is no video fails before any model is loaded.
    """
    with video_io.open_video(source) as video:
        own = estimator is None
        est = make_estimator(pose, max_persons=max_persons, mirror=mirror, quiet=not progress) if own else estimator
        try:
            frames = _estimate_frames(video, est, progress)
        finally:
            if own:
                est.close()
    info = video.info
    anno = pose_estimators.build_annotation(
        frames,
        name=Path(info.source).stem if not info.live else info.source,
        img_shape=info.img_shape,
        max_persons=max_persons,
        where=info.source,
        num_joints=layouts.BUILTIN["coco"].num_joints,
    )
    anno["fps"] = info.fps
    return anno


def _estimate_frames(video: video_io.Video, est, progress: bool) -> list[list[pose_estimators.Person]]:
    """Every frame's people as tracker input (joints, scores and the box spanning the found joints)."""
    from tqdm import tqdm

    frames = []
    total = video.info.frame_count or None
    bar = tqdm(
        total=total, unit="frame", desc=f"poses ({os.path.basename(est.name)})", file=sys.stderr, disable=not progress
    )
    with bar:
        for frame in video:
            people = est(frame.rgb, frame.timestamp_ms)
            frames.append([pose_estimators.Person(p.keypoints, p.scores, p.box) for p in people])
            bar.update(1)
    return frames


def save_pose(anno: Mapping[str, Any], path: str | os.PathLike) -> str:
    """Write the kept tracks of `anno` as MMPose's saved predictions (frame ids from 0, every frame listed), under
    a temporary name renamed into place."""
    kp, score = np.asarray(anno["keypoint"]), np.asarray(anno["keypoint_score"])
    frames = []
    for t in range(kp.shape[1]):
        instances = []
        for m, track in enumerate(anno["track_ids"]):
            if not score[m, t].any() and not kp[m, t].any():
                continue  # the track is absent from this frame
            x1, y1, x2, y2 = PersonPose(kp[m, t], score[m, t]).box  # the box the tracker linked
            instances.append(
                {
                    "keypoints": kp[m, t].astype(float).tolist(),
                    "keypoint_scores": score[m, t].astype(float).tolist(),
                    "bbox": [[x1, y1, x2, y2]],
                    "track_id": int(track),
                }
            )
        frames.append({"frame_id": t, "instances": instances})
    meta = {
        "dataset_name": "coco",
        "num_keypoints": kp.shape[2],
        "img_shape": [int(s) for s in anno["img_shape"]],
        "fps": float(anno.get("fps", 0.0)),
        "source": str(anno.get("frame_dir", "")),
    }
    with atomic_file(path, "w", encoding="utf-8") as f:
        json.dump({"meta_info": meta, "instance_info": frames}, f)
    return os.fspath(path)


def person_annotation(anno: Mapping[str, Any], m: int) -> dict:
    """Kept track `m` of `anno` alone: one person (the test pipeline pads the second with zeros)."""
    out = dict(anno)
    out["keypoint"] = np.asarray(anno["keypoint"])[m : m + 1]
    out["keypoint_score"] = np.asarray(anno["keypoint_score"])[m : m + 1]
    track = int(anno["track_ids"][m]) if "track_ids" in anno else m
    out["track_ids"] = [track]
    out["frame_dir"] = f"{anno.get('frame_dir', '?')}#track{track}"
    return out


def predict_people(
    predictors, anno: Mapping[str, Any], spans: Sequence[tuple[int, int]], **options
) -> list[PersonWindowPrediction]:
    """Each kept track alone in each [start, end) span where it appears (at least one frame with a found joint),
    window by window, tracks in order; `options` as for `predict` (weights, labels)."""
    jobs, samples = [], []
    for start, end in spans:
        for m in range(np.shape(anno["keypoint"])[0]):
            alone = window_annotation(person_annotation(anno, m), start, end)
            if np.asarray(alone["keypoint_score"]).any():
                jobs.append((alone["track_ids"][0], start, end))
                samples.append(alone)
    if not samples:
        return []
    pred = predict(predictors, samples, **options)
    return [PersonWindowPrediction(k, s, e, pred.probs[i], pred.top_k(i, 5)) for i, (k, s, e) in enumerate(jobs)]


def predict_video(
    video: str | int | os.PathLike,
    checkpoints=None,
    *,
    pose: str | os.PathLike = DEFAULT_POSE,
    max_persons: int = pose_estimators.MAX_PERSONS,
    window: int | None = None,
    stride: int | None = None,
    per_person: bool = False,
    save_pose_to: str | os.PathLike | None = None,
    mirror: str | None = None,
    progress: bool = True,
    **options,
) -> VideoPrediction:
    """Predict the actions in a video (module docstring).

    checkpoints: as for `predict` (default `DEFAULT_CHECKPOINT`); options: feats, recipes, trusted, weights, labels.
    window / stride: frames per prediction and between window starts (default: the whole video, one prediction).
    save_pose_to: also write the tracked keypoints there (MMPose's format), once the poses are estimated.
    """
    require_extra(pose)  # a missing mediapipe / rtmlib / OpenCV fails before the checkpoint loads or downloads
    feats, recipes = options.pop("feats", None), options.pop("recipes", None)
    trusted = options.pop("trusted", False)
    predictors = as_predictors(DEFAULT_CHECKPOINT if checkpoints is None else checkpoints, feats, recipes, trusted)
    require_coco_2d(predictors)
    anno = estimate_video(video, pose=pose, max_persons=max_persons, mirror=mirror, progress=progress)
    if save_pose_to is not None:
        save_pose(anno, save_pose_to)
    total = int(np.shape(anno["keypoint"])[1])
    spans = [(0, total)] if window is None else window_spans(total, window, window if stride is None else stride)
    if per_person:
        return VideoPrediction(anno, predict_people(predictors, anno, spans, **options))
    pred = predict(predictors, [window_annotation(anno, s, e) for s, e in spans], **options)
    return VideoPrediction(
        anno, [WindowPrediction(s, e, pred.probs[i], pred.top_k(i, 5)) for i, (s, e) in enumerate(spans)]
    )


def format_people(windows: Sequence[PersonWindowPrediction], as_json: bool = False) -> str:
    """One line per track and window: JSON Lines records, or 'track K [start, end)  label prob | ...'."""
    if as_json:
        return "\n".join(w.to_json() for w in windows)
    return "\n".join(f"track {w.track} {format_windows([w])}" for w in windows)  # its window's line, track first


def format_video(result: VideoPrediction, as_json: bool = False, whole: bool = True) -> str:
    """The output of `--video`: per track and window with --per-person (`format_people`); per window with --window
    (`format_windows`); else the whole video as `--input` prints one sample, with its tracks."""
    if result.windows and isinstance(result.windows[0], PersonWindowPrediction):
        return format_people(result.windows, as_json)
    if not whole:
        return format_windows(result.windows, as_json)
    anno, top5 = result.annotation, result.windows[0].top5
    tracks = {"kept": [int(k) for k in anno["track_ids"]], "found": int(anno["num_tracks"])}
    if as_json:
        return json.dumps({"top5": top5, "tracks": tracks})
    lines = [str(anno["frame_dir"])] + [f"  {r}. {t['label']:<48} {t['prob']:.4f}" for r, t in enumerate(top5, 1)]
    return "\n".join(lines)


def report_video_tracks(result: VideoPrediction) -> None:
    """One stderr line: which tracks were kept of how many, as for a pose-estimator file."""
    anno = result.annotation
    kept, found = [int(k) for k in anno["track_ids"]], int(anno["num_tracks"])
    print(f"{anno['frame_dir']}: kept tracks {kept} of {found} (highest summed keypoint score)", file=sys.stderr)
