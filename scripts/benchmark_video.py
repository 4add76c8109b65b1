"""Speed of the video path on this machine: decode + pose + tracking + action, per pose backend, frame size and
number of people, and the live latency from the last frame of a window to its prediction.

    python scripts/benchmark_video.py [--frames 300] [--backends mediapipe-full ...] [--update-docs]

Clips: scikit-image's astronaut photograph panned over a grey frame (one person) or beside its mirror image (two
people), as the video tests make them (skeljax.testing.pose_fixtures), played back and forth to --frames frames at
30 fps, at 640x360 and scaled to 1280x720; MPEG-4 files decoded by OpenCV. Action model: ST-GCN++ for COCO-17 2D
joints with NTU-60's 60 classes and the zoo's test settings (PYSKL's recipe, 10 clips of 100 frames), random
weights: the same architecture and input shapes as `zoo:stgcnpp_ntu60_xsub_2d_j`, so the same speed (the released
weights cannot be downloaded here). Windows of 100 frames (the clip length, the live default) every 15 frames.

Per clip, first each stage timed alone on one thread (frame by frame: decode, pose, tracking and ring buffer; the
action model at each prediction, also given per frame over the clip), then the live pipeline of
`skeljax.predict.stream` (a reader thread decoding ahead) as fast as it goes (`realtime=False`): frames per second
from the first frame read to the last prediction; then the same clip played at its 30 fps (`realtime=True`, as a
camera): the latency of each prediction (from reading the window's last frame to the prediction) and the frames
dropped. mediapipe-full is the zoo's model when it is in the zoo cache, else the equivalent `.task` the tests build
from the mediapipe 0.10.21 wheel (the same detector and full landmark networks); a backend whose model files cannot
be had here is listed as such. The machine is shared: the load average before and after is on the page.
--update-docs rewrites the "Speed" section of docs/video.md.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from skeljax.data import pose_estimators
from skeljax.pose import POSE_SPECS, make_estimator
from skeljax.pose.video_io import import_cv2, open_video
from skeljax.predict import live
from skeljax.testing import benchmarking, pose_fixtures

SIZES = ((640, 360), (1280, 720))
FPS = 30.0
WINDOW, STRIDE = 100, live.DEFAULT_STRIDE
DOCS = Path(__file__).resolve().parent.parent / "docs" / "video.md"


def clip_frames(people: int, size: tuple[int, int], n: int) -> list[np.ndarray]:
    """`n` RGB frames of one or two people at `size` (W, H): the test clip played back and forth (no jumps)."""
    base = pose_fixtures.one_person_frames()[0] if people == 1 else pose_fixtures.two_people_frames()
    if people == 2:  # the two-people clip stands still: pan it by a few pixels a frame, as the one-person clip moves
        base = [np.roll(f, 2 * k, axis=1) for k, f in enumerate(base[:12])]
    order = list(range(len(base))) + list(range(len(base) - 2, 0, -1))
    frames = [base[order[i % len(order)]] for i in range(n)]
    if size != (frames[0].shape[1], frames[0].shape[0]):
        cv2 = import_cv2()
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames]
    return frames


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    cv2 = import_cv2()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
    for f in frames:
        writer.write(np.ascontiguousarray(f[..., ::-1]))
    writer.release()
    return path


def action_predictor(folder: Path):
    """The random-weight stand-in for zoo:stgcnpp_ntu60_xsub_2d_j (module docstring), loaded as prediction loads it."""
    from flax import nnx

    from skeljax.models.model_dir import save_model
    from skeljax.models.stgcn import Recognizer, stgcnpp_spec
    from skeljax.predict import load_predictor

    test = {"feat": "j", "recipe": "pyskl", "clip_len": 100, "test_num_clips": 10, "test_average": "prob"}
    path = save_model(
        str(folder / "stgcnpp_coco_random"),
        Recognizer(stgcnpp_spec(60, "coco"), rngs=nnx.Rngs(0)),
        extra={"test": test},
    )
    return load_predictor(path)


def estimator_factories(backends) -> dict[str, tuple[object, str]]:
    """backend -> (make(max_persons) -> a fresh estimator, or None; what it runs, or why it cannot run here)."""
    out = {}
    for spec in backends:
        try:
            make_estimator(spec, max_persons=2, quiet=True).close()
            out[spec] = (lambda n, spec=spec: make_estimator(spec, max_persons=n, quiet=True), "the zoo's model")
        except Exception as e:  # no network here: the zoo's files cannot be fetched; a missing extra
            if spec != "mediapipe-full":
                out[spec] = (None, f"not measured, its model files cannot be had here: {str(e).splitlines()[0]}")
                continue
            task = str(pose_fixtures.build_task(pose_fixtures.cache_dir()))
            what = "the .task built from the mediapipe 0.10.21 wheel"
            out[spec] = (lambda n, task=task: make_estimator(task, max_persons=n), what)
    return out


def stage_times(path: Path, est, predictor: live.WindowPredictor) -> dict:
    """Milliseconds per frame of each stage, run one after the other on this thread."""
    tracker, buffer = pose_estimators.IouTracker(), collections.deque(maxlen=WINDOW)
    times = {"decode": [], "pose": [], "tracking": [], "action": []}
    found = []
    with open_video(path) as video:
        frames = iter(video)
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            t1 = time.perf_counter()
            if frame is None:
                break
            people = est(frame.rgb, frame.timestamp_ms)
            t2 = time.perf_counter()
            buffer.append((frame, list(zip(live.track_ids(people, tracker), people))))
            t3 = time.perf_counter()
            times["decode"].append(t1 - t0)
            times["pose"].append(t2 - t1)
            times["tracking"].append(t3 - t2)
            found.append(len(people))
            n = len(times["pose"])
            if n >= WINDOW and (n - WINDOW) % STRIDE == 0:
                predictor(live.window_sample(list(buffer), 2, video.info.img_shape, path.stem))
                times["action"].append(time.perf_counter() - t3)
    n = len(times["pose"])
    out = {f"{k}_ms": 1000 * sum(v) / n for k, v in times.items()}
    out["action_ms_per_prediction"] = 1000 * statistics.median(times["action"])
    out["people_found"] = float(np.mean(found))
    return out


def pipeline(path: Path, est, predictors, realtime: bool) -> dict:
    """`skeljax.predict.stream` over the clip: frames/s and CPU time per frame after the warm-up, latencies, frames
    dropped."""
    stats, start = live.StreamStats(), []
    records = list(
        live.stream(
            str(path), predictors, pose=est, window=WINDOW, stride=STRIDE, realtime=realtime, stats=stats,
            on_ready=lambda info: start.extend((time.perf_counter(), time.process_time())),
        )
    )  # fmt: skip
    wall, cpu = time.perf_counter() - start[0], time.process_time() - start[1]
    if stats.frames < WINDOW:  # one end-of-stream window of fewer frames: ten clips, compiled on the spot
        records = []
    latency = [r["latency_ms"] for r in records] or [float("nan")]
    return {
        "fps": stats.frames / wall,
        "cpu_ms_per_frame": 1000 * cpu / stats.frames,
        "frames": stats.frames,
        "dropped": stats.dropped,
        "latency_ms_median": statistics.median(latency),
        "latency_ms_max": max(latency),
    }


def measure_clip(path: Path, make_est, predictor, window_predictor) -> dict:
    """Stage times, the pipeline as fast as it goes, then at the clip's frame rate ("live_" keys); a fresh estimator
    for each run (mediapipe's VIDEO mode wants increasing timestamps)."""
    runs = {
        "": lambda est: stage_times(path, est, window_predictor),
        "pipeline": lambda est: pipeline(path, est, [predictor], realtime=False),
        "live_": lambda est: pipeline(path, est, [predictor], realtime=True),
    }
    out = {}
    for prefix, run in runs.items():
        est = make_est()
        try:
            result = run(est)
        finally:
            est.close()
        if prefix == "live_":
            result = {f"live_{k}": v for k, v in result.items() if k not in ("fps", "cpu_ms_per_frame")}
        out.update(result)
    return out


# (people in the clip, --max-persons, frames between looks for more people while one is in view: live.PersonSearch;
# 1 = every frame, as --video and --no-realtime do)
CASES = ((1, 2, 1), (1, 2, live.SEARCH_EVERY), (1, 1, 1), (2, 2, live.SEARCH_EVERY))


def estimator_maker(make_est, max_persons: int, search_every: int):
    """A function making the estimator of one case (mediapipe only gets a PersonSearch, as in `live_estimator`)."""
    if search_every < 2 or max_persons < 2:
        return functools.partial(make_est, max_persons)
    return lambda: live.PersonSearch(make_est(max_persons), make_est(1), search_every)


def measure(args, folder: Path) -> dict:
    """Every available backend x size x case: stage times, pipeline frames/s and live latency."""
    predictor = action_predictor(folder)
    window_predictor = live.WindowPredictor([predictor], per_person=False)
    window_predictor.warm(WINDOW, (360, 640))
    rows = []
    for spec, (make_est, what) in estimator_factories(args.backends).items():
        if make_est is None:
            rows.append({"backend": spec, "note": what})
            continue
        for size in SIZES:
            for people, max_persons, search_every in CASES:
                name = f"clip_{people}p_{size[0]}x{size[1]}.mp4"
                path = folder / name
                if not path.exists():
                    write_clip(path, clip_frames(people, size, args.frames))
                row = {"backend": spec, "note": what, "size": f"{size[0]}x{size[1]}", "people": people}
                row.update(max_persons=max_persons, search_every=search_every if spec.startswith("mediapipe") else 1)
                make_case = estimator_maker(make_est, max_persons, row["search_every"])
                row.update(measure_clip(path, make_case, predictor, window_predictor))
                rows.append(row)
                keys = ("backend", "size", "people", "max_persons", "search_every")
                print(json.dumps(benchmarking.rounded(row, 1) | {k: row[k] for k in keys}), flush=True)
    return {"rows": rows}


def speed_section(result: dict, command: str) -> str:
    """The "Speed" section of docs/video.md."""
    m = result["machine"]
    header = ["pose backend", "frame", "people (--max-persons, looks every)", "decode", "pose", "tracking", "action",
              "action share", "pipeline frames/s", "pipeline CPU ms per frame", "live latency median / max",
              "live frames dropped"]  # fmt: skip
    rows, missing = [], []
    for r in result["rows"]:
        if "size" not in r:
            missing.append(f"- {r['backend']}: {r['note']}")
            continue
        total = r["decode_ms"] + r["pose_ms"] + r["tracking_ms"] + r["action_ms"]
        rows.append(
            [
                r["backend"],
                r["size"],
                f"{r['people']} ({r['max_persons']}, {r['search_every'] if r['max_persons'] > 1 else '-'})",
                f"{r['decode_ms']:.1f}",
                f"{r['pose_ms']:.1f}",
                f"{r['tracking_ms']:.2f}",
                f"{r['action_ms']:.1f} ({r['action_ms_per_prediction']:.0f} per prediction)",
                f"{r['action_ms'] / total:.0%}",
                f"{r['fps']:.1f}",
                f"{r['cpu_ms_per_frame']:.0f}",
                f"{r['live_latency_ms_median']:.0f} / {r['live_latency_ms_max']:.0f} ms",
                f"{r['live_dropped']} of {r['live_frames'] + r['live_dropped']}",
            ]
        )
    lines = [
        "## Speed",
        "",
        f"Measured by `{command}` on {result['date']} ({m['cpu']}, {m['cpu_count']} cores, shared with other "
        f"work: load average {result['load_before']:.1f} before the run, {result['load_after']:.1f} after). The "
        "action model is ST-GCN++ for COCO-17 with random weights and the test settings of "
        "`zoo:stgcnpp_ntu60_xsub_2d_j` (same architecture and shapes, so the same speed; the released weights cannot be "
        "downloaded here), predicting windows of 100 frames (one clip: `Predictor.scores` runs identical clips once). "
        + " ".join(f"{b}: {note}." for b, note in measured_notes(result["rows"]))
        + " Stage "
        'times are milliseconds per frame, each stage alone on one thread; "looks every": frames between mediapipe\'s '
        "searches for more people while one is in view (live's default 15, `skeljax.predict.live.PersonSearch`; 1: "
        "on every frame, as `--video` does); the action model runs once per 15 frames "
        "on the last 100 (its time per prediction in brackets); pipeline frames/s is `skeljax.predict.stream` on the "
        "file as fast as it goes (a reader thread decodes ahead); live latency is from reading a window's last frame "
        "to its prediction, with the file played at 30 fps as a camera would deliver it. Pipeline CPU ms per frame "
        "is the process's CPU time (all its threads) per frame: with both cores to itself the pipeline would run "
        "between 1000 and 2000 / that many frames per second. The rows ran one after another while other work came and "
        "went, so a single row can be off by a third or more (compare the load averages); the pairs that differ by a "
        "factor (looking for people on every frame or every 15th) are the point.",
        "",
        benchmarking.markdown_table(header, rows),
        "",
        verdict(result["rows"]),
    ]
    if missing:
        lines += ["", "Not measured here:", *missing]
    return "\n".join(lines) + "\n"


def measured_notes(rows) -> list[tuple[str, str]]:
    """(backend, what ran) of each measured backend, once."""
    return list({r["backend"]: r["note"] for r in rows if "size" in r}.items())


def verdict(rows) -> str:
    """The issue's targets against the default backend's one-person 640x360 rows."""
    from skeljax.pose import DEFAULT_POSE

    mine = [r for r in rows if r["backend"] == DEFAULT_POSE and r.get("size") == "640x360" and r["people"] == 1]
    if not mine:
        return f"The default backend ({DEFAULT_POSE}) was not measured."
    parts = [
        f"--max-persons {r['max_persons']}"
        + (f", looking for more people every {r['search_every']} frames" if r["search_every"] > 1 else "")
        + f": {r['fps']:.1f} frames/s ({'meets' if r['fps'] >= 25 else 'misses'} "
        f"25), live latency median {r['live_latency_ms_median']:.0f} ms "
        f"({'meets' if r['live_latency_ms_median'] < 150 else 'misses'} 150 ms)"
        for r in mine
    ]
    return f"Targets (one person, 640x360, {DEFAULT_POSE}, >= 25 frames/s, latency < 150 ms): " + "; ".join(parts) + "."


def update_docs(section: str, path: Path = DOCS) -> None:
    """Replace the "## Speed" section of docs/video.md (up to the next "## " heading), or append it."""
    text = path.read_text() if path.exists() else "# From a video to actions\n"
    start = text.find("\n## Speed")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + section + ("" if end < 0 else "\n" + text[end + 1 :])
    benchmarking.write_page(str(path), text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=300, help="frames per clip (default 300: 10 s at 30 fps)")
    p.add_argument(
        "--backends", nargs="+", default=list(POSE_SPECS), help=f"pose backends (default: {' '.join(POSE_SPECS)})"
    )
    p.add_argument("--update-docs", action="store_true", help='rewrite the "Speed" section of docs/video.md')
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    result = {"machine": benchmarking.machine_info(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        result.update(measure(args, Path(tmp)))
    result["load_after"] = os.getloadavg()[0]
    result["date"] = datetime.date.today().isoformat()
    command = " ".join(["python scripts/benchmark_video.py", *benchmarking.without_page_flags(argv)])
    section = speed_section(result, command)
    print(section)
    if args.update_docs:
        update_docs(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
