"""Live prediction: `skeljax-predict --stream SOURCE` and the generator `skeljax.predict.stream(source, ...)`.

SOURCE is a camera index (`0`), a stream URL (rtsp://, http://, ...) or a video file played as if live. A reader
thread takes frames from the source; the caller's thread estimates each frame's poses (skeljax.pose), links people
into tracks as they come (`pose_estimators.IouTracker`, or the backend's own ids) and keeps the last `window`
frames in a ring buffer (default: the model's clip length). A prediction is made when frames [n - window, n) are in,
for n = window, window + stride, ... (`window_spans`' windows, so a file read with `realtime=False` gives the windows
`--video --window --stride` gives); when the source ends, one more window ends at the last frame if frames came
after the last prediction (a source shorter than the window: one window of all its frames). Each window keeps its
`max_persons` tracks with the highest summed keypoint score, in track order, and goes through the checkpoints' test
pipelines as a `--video` window does.

Each prediction is one dict (one JSON line on the command line):
`{"frame": int, "time_s": float, "latency_ms": float, "top5": [...], "dropped": int}`, or with `per_person` a
`"tracks": [{"track": id, "top5": [...]}, ...]` list in place of "top5", one entry per kept track predicted alone.
`frame` is the source's index of the window's last frame and `time_s` its time (file: index / fps; camera or URL:
seconds since the first frame); `latency_ms` the time from reading that frame off the source to the prediction
being ready; `dropped` the frames dropped so far. A window in which nobody was seen gives an empty list.

Falling behind: between the reader and the pose estimator sits a slot for `QUEUE_FRAMES` (one) frame. A live source
(camera, URL, or a file with `realtime=True`, paced at its frame rate) drops the waiting frame when a new one comes
before the estimator took it, so a prediction is at most one frame behind the source and memory stays bounded; the
windows then span more source time than `window` frames. With `realtime=False` (files only: as
fast as the machine goes, for tests and batch use) the reader waits instead and nothing is dropped.

Finding people: live (real time) with mediapipe and `max_persons` > 1, the landmarker that tracks several people
looks for more only every `search_every` frames (default `SEARCH_EVERY`) while at most one person is in view, and a
one-person landmarker tracks in between (`PersonSearch`): looking on every frame, as `--video` does, costs about 1.8
times the CPU. With `realtime=False` every frame is looked at, so the file gives `--video`'s poses and windows.

The compiled forward is warmed on a window of the stream's size before the first frame is read. Stopping: the end
of the source ends the generator; closing it (or Ctrl-C in the command line, which then prints a summary line on
stderr and exits with status 130) stops the reader thread and releases the source and the pose model.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from skeljax.data import pose_estimators
from skeljax.pose.base import DEFAULT_POSE, NUM_JOINTS
from skeljax.predict.errors import PredictError

QUEUE_FRAMES = 1  # frames waiting between the reader and the pose estimator; a live source drops beyond them
DEFAULT_STRIDE = 15  # frames between predictions: about two a second at 30 fps
READER_THREAD = "skeljax-live-reader"
SEARCH_EVERY = 15  # live, with at most one person in view: frames between looks for more (PersonSearch)
_END = object()  # the reader's last message when the source ends


@dataclasses.dataclass
class StreamStats:
    """What a stream did so far (the command line's summary line)."""

    frames: int = 0  # frames estimated
    predictions: int = 0
    dropped: int = 0  # frames dropped because the estimator fell behind a live source


@dataclasses.dataclass(frozen=True)
class _Read:
    """A frame as the reader took it off the source."""

    index: int
    timestamp_ms: int
    rgb: np.ndarray
    read_at: float  # time.perf_counter() when read


class _Reader:
    """A thread moving frames from an opened video into a bounded queue (module docstring, "Falling behind")."""

    def __init__(self, video, *, realtime: bool, stats: StreamStats, queue_frames: int = QUEUE_FRAMES):
        self.video, self.realtime, self.stats = video, realtime, stats
        self.queue: queue.Queue = queue.Queue(maxsize=queue_frames)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=READER_THREAD, daemon=True)

    def _run(self) -> None:
        try:
            paced = self.realtime and not self.video.info.live  # a file played as if live
            start = time.perf_counter()
            for frame in self.video:
                if self.stop.is_set():
                    return
                if self.video.info.live and frame.index == 0:
                    continue  # read when the source was opened, before the warm-up: stale by now
                if paced:
                    time.sleep(max(0.0, start + frame.timestamp_ms / 1000.0 - time.perf_counter()))
                self._put(_Read(frame.index, frame.timestamp_ms, frame.rgb, time.perf_counter()))
        except BaseException as e:  # handed to the consumer, which raises it
            self.error = e
        finally:
            self._put(_END, block=True)

    def _put(self, item, block: bool | None = None) -> None:
        """Queue `item`; a live reader drops the oldest queued frame when the queue is full."""
        block = (not self.realtime) if block is None else block
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1) if block else self.queue.put_nowait(item)
                return
            except queue.Full:
                if block:
                    continue
                try:
                    self.queue.get_nowait()
                    with self._lock:
                        self.stats.dropped += 1
                except queue.Empty:
                    pass

    def frames(self) -> Iterator[_Read]:
        """The queued frames until the source ends (the reader's error, if any, is raised here)."""
        while True:
            item = self.queue.get()
            if item is _END:
                if self.error is not None:
                    raise self.error
                return
            yield item

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5.0)


class PersonSearch:
    """Up to `many`'s number of people, looking for more only every `every` frames while at most one is in view.

    mediapipe's PoseLandmarker with num_poses=2 runs its person detector on every frame on which it tracks fewer
    than two people; with one person in view that is about 1.8 times the CPU of num_poses=1 (docs/video.md, "Speed").
    Live, a second person may as well be found within half a second: between looks, the one-person estimator `one`
    tracks. With two or more people in view `many` runs on every frame. Both see every frame's increasing timestamps
    in order, as mediapipe's video mode requires.
    """

    def __init__(self, many, one, every: int):
        self.many, self.one, self.every, self.name = many, one, every, many.name
        self._since: int | None = None  # frames since `many` last looked, while at most one person is in view

    def __call__(self, rgb: np.ndarray, timestamp_ms: int) -> list:
        if self._since is not None and self._since + 1 < self.every:
            self._since += 1
            return self.one(rgb, timestamp_ms)
        people = self.many(rgb, timestamp_ms)
        self._since = 0 if len(people) <= 1 else None
        return people

    def close(self) -> None:
        self.many.close()
        self.one.close()


def live_estimator(pose, *, max_persons: int, realtime: bool, search_every: int, mirror: str | None = None):
    """The estimator for a `--pose` spec: live (real time) with mediapipe and room for more than one person, a
    PersonSearch that looks for more people every `search_every` frames; else the backend itself, as `--video` has."""
    from skeljax.pose.base import backend_of
    from skeljax.pose.estimators import make_estimator

    many = make_estimator(pose, max_persons=max_persons, mirror=mirror)
    if not realtime or max_persons < 2 or search_every < 2 or backend_of(pose) != "mediapipe":
        return many
    return PersonSearch(many, make_estimator(pose, max_persons=1, mirror=mirror), search_every)


def track_ids(people, tracker: pose_estimators.IouTracker) -> list[int]:
    """The backend's own ids when it gives them, else the IoU tracker's."""
    if people and all(p.track_id is not None for p in people):
        return [int(p.track_id) for p in people]
    return tracker.update([p.box for p in people])


def window_sample(
    entries: Sequence[tuple[_Read, list]], max_persons: int, img_shape: tuple[int, int], name: str
) -> dict | None:
    """The annotation dict of buffered frames: the `max_persons` tracks with the highest summed score, in track order
    (`pose_estimators.select_tracks` over the window); None when nobody was seen."""
    tracks: dict[int, dict[int, Any]] = collections.defaultdict(dict)  # track id -> {frame: person}
    for t, (_, people) in enumerate(entries):
        for track, p in people:
            tracks[track][t] = p
    if not tracks:
        return None
    ids = sorted(tracks)
    by_id = [tracks[i] for i in ids]
    rows = pose_estimators.select_tracks(by_id, max_persons)
    kp, score = pose_estimators.stack_tracks(by_id, rows, len(entries), NUM_JOINTS)
    keep = [ids[k] for k in rows]
    return {
        "frame_dir": name,
        "keypoint": kp,
        "keypoint_score": score,
        "img_shape": img_shape,
        "total_frames": len(entries),
        "track_ids": keep,
    }


def warm_sample(window: int, img_shape: tuple[int, int]) -> dict:
    """A window of `window` frames that differ from each other, so the test pipeline samples its clips as it will
    from a live window (identical clips run once: a window of the clip length needs one clip, a longer one all)."""
    h, w = img_shape
    t = np.arange(window, dtype=np.float32)[:, None]
    joints = np.arange(NUM_JOINTS, dtype=np.float32)[None]
    x = w / 4 + (w / 2) * ((t * 7 + joints * 13) % 97) / 97
    y = h / 4 + (h / 2) * ((t * 5 + joints * 11) % 89) / 89
    kp = np.stack([x, y], axis=-1)[None].astype(np.float32)
    return {
        "frame_dir": "warm-up",
        "keypoint": kp,
        "keypoint_score": np.full(kp.shape[:3], 0.9, np.float32),
        "img_shape": img_shape,
        "total_frames": window,
        "track_ids": [0],
    }


class WindowPredictor:
    """The fused prediction of window samples: {"top5": [...]}, or per person {"tracks": [{"track", "top5"}]}."""

    def __init__(self, predictors, *, per_person: bool, labels=None, weights=None):
        self.predictors, self.per_person, self.labels, self.weights = predictors, per_person, labels, weights

    def _top5(self, sample: Mapping[str, Any]) -> list[dict[str, Any]]:
        from skeljax.predict.predictor import predict

        return predict(self.predictors, [sample], weights=self.weights, labels=self.labels).top_k(0, 5)

    def __call__(self, sample: Mapping[str, Any] | None) -> dict[str, Any]:
        if self.per_person:
            from skeljax.predict.video import person_annotation

            # one track at a time, alone (the model's other person zeroed): every call has the warmed-up shape
            tracks = [] if sample is None else sample["track_ids"]
            return {
                "tracks": [{"track": k, "top5": self._top5(person_annotation(sample, m))} for m, k in enumerate(tracks)]
            }
        return {"top5": [] if sample is None else self._top5(sample)}

    def warm(self, window: int, img_shape: tuple[int, int]) -> None:
        """Compile the forward for windows of `window` frames, before the first frame is read."""
        self(warm_sample(window, img_shape))


def _record(buffer, predictor: WindowPredictor, *, max_persons: int, img_shape, name: str, stats: StreamStats):
    """The prediction of the buffered window as the dict the stream yields."""
    last = buffer[-1][0]
    out = predictor(window_sample(list(buffer), max_persons, img_shape, name))
    stats.predictions += 1
    return {
        "frame": last.index,
        "time_s": round(last.timestamp_ms / 1000.0, 3),
        "latency_ms": round((time.perf_counter() - last.read_at) * 1000.0, 1),
        **out,
        "dropped": stats.dropped,
    }


def _run(video, estimator, predictor: WindowPredictor, *, window, stride, realtime, max_persons, stats):
    """Frames -> poses -> tracks -> ring buffer -> a prediction every `stride` frames (module docstring)."""
    reader = _Reader(video, realtime=realtime or video.info.live, stats=stats)
    buffer: collections.deque = collections.deque(maxlen=window)
    tracker = pose_estimators.IouTracker()
    at = {"max_persons": max_persons, "img_shape": video.info.img_shape, "name": video.info.source, "stats": stats}
    last_predicted = 0
    reader.thread.start()
    try:
        for read in reader.frames():
            people = estimator(read.rgb, read.timestamp_ms)
            buffer.append((read, list(zip(track_ids(people, tracker), people))))
            stats.frames += 1
            if stats.frames >= window and (stats.frames - window) % stride == 0:
                last_predicted = stats.frames
                yield _record(buffer, predictor, **at)
        if stats.frames > last_predicted:  # frames after the last window: one more, ending at the last frame
            yield _record(buffer, predictor, **at)
    finally:
        reader.close()


def stream(
    source: str | int | os.PathLike,
    checkpoint=None,
    *,
    pose=DEFAULT_POSE,
    window: int | None = None,
    stride: int | None = None,
    per_person: bool = False,
    max_persons: int = pose_estimators.MAX_PERSONS,
    realtime: bool = True,
    labels=None,
    weights=None,
    mirror: str | None = None,
    stats: StreamStats | None = None,
    on_ready: Callable[[Any], None] | None = None,
    search_every: int = SEARCH_EVERY,
    **load_options,
) -> Iterator[dict[str, Any]]:
    """Predict actions live from `source` (a camera index, a stream URL or a video file): a generator of one dict per
    prediction (module docstring).

    checkpoint: as for `predict` (default `DEFAULT_CHECKPOINT`, the zoo's 2D COCO-17 ST-GCN++); load_options: feats,
    recipes, trusted, as for `predict`. pose: a `--pose` spec or model file (skeljax.pose), or a ready estimator
    (not closed here). window: frames per prediction (default: the model's clip length); stride: frames between
    predictions (default `DEFAULT_STRIDE`). realtime: a file is paced at its frame rate and frames are dropped when
    the machine falls behind (False: as fast as it goes, nothing dropped; cameras and URLs are always real time).
    stats: a StreamStats kept up to date; on_ready(video info): called once the model is compiled, before the first
    frame is read. search_every: in real time with mediapipe, frames between looks for more people while at most one
    is in view (`PersonSearch`; 1: on every frame, as `--video` does).
    """
    from skeljax.pose.estimators import require_extra
    from skeljax.pose.video_io import open_video

    stats = StreamStats() if stats is None else stats
    stride = DEFAULT_STRIDE if stride is None else stride
    own = isinstance(pose, (str, os.PathLike))
    if own:
        require_extra(pose)  # a missing extra is one line before anything loads or downloads
    with open_video(source) as video:  # first: an unreadable source fails before any model is loaded
        predictor, window = _window_predictor(checkpoint, window, stride, per_person, labels, weights, load_options)
        live = realtime or video.info.live
        search = {"max_persons": max_persons, "realtime": live, "search_every": search_every, "mirror": mirror}
        estimator = live_estimator(pose, **search) if own else pose
        try:
            predictor.warm(window, video.info.img_shape)
            if on_ready is not None:
                on_ready(video.info)
            run = {"window": window, "stride": stride, "realtime": realtime, "max_persons": max_persons}
            yield from _run(video, estimator, predictor, stats=stats, **run)
        finally:
            if own:
                estimator.close()


def _window_predictor(checkpoint, window, stride, per_person, labels, weights, load_options):
    """The loaded checkpoints as a WindowPredictor (2D COCO-17 models only) and the window (default: clip length)."""
    from skeljax.predict.predictor import as_predictors
    from skeljax.predict.video import DEFAULT_CHECKPOINT, require_coco_2d

    options = {k: load_options.pop(k, None) for k in ("feats", "recipes")}
    trusted = bool(load_options.pop("trusted", False))
    if load_options:
        raise TypeError(f"stream() got unexpected options {sorted(load_options)}")
    preds = as_predictors(DEFAULT_CHECKPOINT if checkpoint is None else checkpoint, **options, trusted=trusted)
    require_coco_2d(preds)
    window = preds[0].clip_len if window is None else window
    for name, value in (("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PredictError(f"the {name} must be a positive number of frames, got {value!r}")
    return WindowPredictor(preds, per_person=per_person, labels=labels, weights=weights), window


def run_cli(args) -> int:
    """`skeljax-predict --stream SOURCE`: one JSON line per prediction on stdout; on stderr a line when the first
    frame is about to be read and a summary at the end; exit status 0 at the end of the source, 130 on Ctrl-C."""
    stats = StreamStats()

    def ready(info) -> None:
        print(
            f"live from {info.source} ({info.width}x{info.height}, {info.fps:g} fps): Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )

    records = stream(
        args.stream,
        args.checkpoint,
        pose=args.pose,
        window=args.window,
        stride=args.stride,
        per_person=args.per_person,
        max_persons=args.max_persons,
        realtime=args.realtime,
        labels=args.labels,
        weights=args.weights,
        stats=stats,
        on_ready=ready,
        feats=args.feat,
        recipes=args.recipe,
        trusted=args.trusted,
    )
    how, status = "end of stream", 0
    try:
        for record in records:
            print(json.dumps(record), flush=True)
    except KeyboardInterrupt:
        records.close()  # stops the reader and releases the source and the pose model
        how, status = "stopped (Ctrl-C)", 130
    summary = f"{how} after {stats.frames} frames: {stats.predictions} predictions, {stats.dropped} frames dropped"
    print(summary, file=sys.stderr, flush=True)
    return status
