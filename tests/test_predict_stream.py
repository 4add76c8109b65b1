"""skeljax.predict.stream and `skeljax-predict --stream`: on a file read as fast as it goes, the windows and top-5 of
`predict_windows` on the same keypoints (whole and per person); a paced file whose estimator falls behind drops
frames (counted, every frame either estimated or dropped); windows with nobody; Ctrl-C; an unreadable camera.

The pose estimator is a scripted stand-in (the keypoints of each frame are known), so these tests need OpenCV only
to write and read the video; tests/test_predict_video.py runs the real backend on a real photograph."""

import json
import threading
import time

import numpy as np
import pytest

from skeljax.models.model_dir import save_model
from skeljax.models.stgcn import stgcnpp_spec
from skeljax.pose.base import PersonPose, native_stderr_silenced
from skeljax.predict import live as S
from skeljax.predict import load_predictor, predict_windows, stream
from skeljax.predict.cli import main
from tests.helpers import SMALL, small_model

cv2 = pytest.importorskip("cv2", reason="reading a video needs OpenCV (pip install 'skeljax[video]')")

H, W, T, FPS = 96, 160, 40, 30.0
WINDOW, STRIDE = 16, 6


def two_people(rng):
    """(2, T, 17, 2) keypoints of two people drifting slowly (consecutive boxes overlap: one track each) and scores."""
    base = np.stack([rng.uniform([10, 10], [60, 80], (17, 2)), rng.uniform([90, 10], [150, 80], (17, 2))])
    drift = np.linspace(0, 8, T)[None, :, None, None]
    kp = base[:, None] + drift + rng.normal(0, 1.0, (2, T, 17, 2))
    return kp.astype(np.float32), rng.uniform(0.4, 1.0, (2, T, 17)).astype(np.float32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("stream")
    model = d / "coco"
    save_model(str(model), small_model(stgcnpp_spec(60, "coco", **SMALL), 0), extra={"test": {"clip_len": 16}})
    video = d / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for t in range(T):
        writer.write(np.full((H, W, 3), 5 * t, np.uint8))
    writer.release()
    kp, score = two_people(np.random.default_rng(0))
    anno = {"frame_dir": "clip", "keypoint": kp, "keypoint_score": score, "img_shape": (H, W), "total_frames": T}
    return {"model": str(model), "video": str(video), "anno": anno, "pred": load_predictor(model)}


class Scripted:
    """A pose estimator giving the known people of each frame (found from its timestamp), after `delay` seconds;
    raises KeyboardInterrupt at frame `interrupt_at`."""

    name = "scripted"

    def __init__(self, anno, delay=0.0, interrupt_at=None, people=(0, 1)):
        self.anno, self.delay, self.interrupt_at, self.people = anno, delay, interrupt_at, people
        self.closed = False

    def __call__(self, rgb, timestamp_ms):
        t = round(timestamp_ms * FPS / 1000)
        assert rgb.shape == (H, W, 3)
        if t == self.interrupt_at:
            raise KeyboardInterrupt
        time.sleep(self.delay)
        kp, score = self.anno["keypoint"], self.anno["keypoint_score"]
        return [PersonPose(kp[m, t], score[m, t]) for m in self.people]

    def close(self):
        self.closed = True


def check_against(records, windows):
    """Each record is the window ending at its frame, with the reference's probabilities for its top-5."""
    assert [r["frame"] for r in records] == [w.end - 1 for w in windows]
    for r, w in zip(records, windows):
        assert r["top5"][0]["index"] == w.top5[0]["index"]
        for t in r["top5"]:  # the same numbers within float32 noise (one window per call here, all at once there)
            assert t["prob"] == pytest.approx(float(w.probs[t["index"]]), abs=1e-3)


def test_file_as_fast_as_it_goes_gives_the_windows_of_predict_windows(setup):
    stats = S.StreamStats()
    est = Scripted(setup["anno"])
    records = list(
        stream(setup["video"], setup["pred"], pose=est, window=WINDOW, stride=STRIDE, realtime=False, stats=stats)
    )
    windows = predict_windows(setup["pred"], setup["anno"], window=WINDOW, stride=STRIDE)
    assert [(w.start, w.end) for w in windows] == [(0, 16), (6, 22), (12, 28), (18, 34), (24, 40)]
    check_against(records, windows)
    assert [r["time_s"] for r in records] == [round(round((w.end - 1) * 1000 / FPS) / 1000, 3) for w in windows]
    assert all(r["dropped"] == 0 and r["latency_ms"] >= 0 for r in records)
    assert stats == S.StreamStats(frames=T, predictions=5, dropped=0)
    assert not est.closed  # an estimator passed in belongs to the caller


def test_leftover_frames_and_short_sources_get_a_last_window(setup):
    est = Scripted(setup["anno"])
    records = list(stream(setup["video"], setup["pred"], pose=est, window=16, stride=10, realtime=False))
    windows = predict_windows(setup["pred"], setup["anno"], window=16, stride=10)
    assert [(w.start, w.end) for w in windows] == [(0, 16), (10, 26), (20, 36), (24, 40)]  # the last aligned to the end
    check_against(records, windows)
    (one,) = list(stream(setup["video"], setup["pred"], pose=est, window=50, realtime=False))
    check_against([one], predict_windows(setup["pred"], setup["anno"], window=50))  # 40 frames < 50: one window


def test_per_person_predicts_each_track_alone(setup):
    est = Scripted(setup["anno"])
    records = list(
        stream(setup["video"], setup["pred"], pose=est, window=WINDOW, stride=STRIDE, realtime=False, per_person=True)
    )
    assert all("top5" not in r and [t["track"] for t in r["tracks"]] == [0, 1] for r in records)
    for m in (0, 1):
        alone = dict(setup["anno"])
        alone["keypoint"], alone["keypoint_score"] = alone["keypoint"][m : m + 1], alone["keypoint_score"][m : m + 1]
        windows = predict_windows(setup["pred"], alone, window=WINDOW, stride=STRIDE)
        check_against([{"frame": r["frame"], "top5": r["tracks"][m]["top5"]} for r in records], windows)


def test_nobody_in_a_window_gives_an_empty_top5(setup):
    records = list(stream(setup["video"], setup["pred"], pose=Scripted(setup["anno"], people=()), realtime=False))
    assert records and all(r["top5"] == [] for r in records)


def test_a_paced_file_drops_frames_when_the_estimator_falls_behind(setup):
    """Frames come every 33 ms and take 60 ms each: the reader drops the oldest waiting frame, never queues more."""
    stats = S.StreamStats()
    est = Scripted(setup["anno"], delay=0.06)
    records = list(stream(setup["video"], setup["pred"], pose=est, window=8, stride=4, realtime=True, stats=stats))
    assert stats.dropped > 0 and stats.frames + stats.dropped == T
    assert [r["dropped"] for r in records] == sorted(r["dropped"] for r in records)
    assert records[-1]["frame"] == T - 1  # the source's last frame is never the one dropped


def test_closing_the_generator_stops_the_reader(setup):
    before = {t.ident for t in threading.enumerate()}
    gen = stream(setup["video"], setup["pred"], pose=Scripted(setup["anno"]), window=8, stride=4, realtime=True)
    next(gen)
    gen.close()
    assert not [t for t in threading.enumerate() if t.ident not in before and t.name == S.READER_THREAD]


def test_cli_prints_json_lines_and_stops_on_ctrl_c(setup, monkeypatch, capsys):
    import skeljax.pose.estimators as pose_estimators_module

    monkeypatch.setattr(
        pose_estimators_module, "make_estimator", lambda *a, **k: Scripted(setup["anno"], interrupt_at=25)
    )
    args = ["--stream", setup["video"], "--checkpoint", setup["model"], "--window", "16", "--stride", "6"]
    assert main(args + ["--no-realtime"]) == 130
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["frame"] for r in lines] == [15, 21]  # frames 0..24 were estimated before Ctrl-C
    assert set(lines[0]) == {"frame", "time_s", "latency_ms", "top5", "dropped"}
    assert err.strip().splitlines() == [
        f"live from {setup['video']} ({W}x{H}, 30 fps): Ctrl-C stops",
        "stopped (Ctrl-C) after 25 frames: 2 predictions, 0 frames dropped",
    ]


def test_unreadable_camera_is_one_error_line(setup, capfd):
    assert main(["--stream", "7", "--checkpoint", setup["model"]]) == 1
    out, err = capfd.readouterr()
    assert out == "" and err.strip().splitlines() == ["error: camera 7: cannot open the camera"]


def test_stderr_comes_back_when_two_threads_silence_it_in_turn(monkeypatch):
    """The reader thread (decoding) and the pose model silence fd 2 at overlapping times: A in, B in, A out, B out
    must leave fd 2 where it was (a save/restore per thread would leave it on /dev/null: no summary, no error)."""
    import os

    monkeypatch.delenv("SKELJAX_POSE_LOGS", raising=False)
    before = os.fstat(2)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a():
        with native_stderr_silenced():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with native_stderr_silenced():
            b_in.set()
            a_out.wait(5)
            assert os.fstat(2).st_ino != before.st_ino  # still silenced after A left
        assert (os.fstat(2).st_dev, os.fstat(2).st_ino) == (before.st_dev, before.st_ino)

    threads = [threading.Thread(target=f) for f in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert (os.fstat(2).st_dev, os.fstat(2).st_ino) == (before.st_dev, before.st_ino)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--stream", "0", "--save-pose", "p.json"], "--save-pose needs --video"),
        (["--stream", "0", "--out", "a.mp4"], "--out needs --video"),
        (["--video", "v.mp4", "--out", "a.avi"], "--out a.avi: the annotated video is written as .mp4 or .gif"),
        (["--stream", "0", "--video", "v.mp4"], "give one of --input, --video, --stream, not --video and --stream"),
        (["--stream", "0", "--img-shape", "360", "640"], "--img-shape does not apply to --video or --stream"),
        (["--input", "x.npy", "--checkpoint", "c", "--stride", "5"], "--stride needs --window"),
    ],
)
def test_live_flags_are_checked_before_anything_runs(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_person_search_looks_for_more_people_every_few_frames_while_one_is_in_view():
    """PersonSearch: the many-person estimator on the first frame; with one person in view the one-person estimator
    until the many-person one looks again `every` frames later; with two in view the many-person one every frame."""
    calls = []

    class Counted:
        def __init__(self, name, people):
            self.name, self.people, self.closed = name, people, False

        def __call__(self, rgb, timestamp_ms):
            calls.append((self.name, timestamp_ms))
            return [None] * self.people[timestamp_ms]

        def close(self):
            self.closed = True

    in_view = [1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 0, 0]  # people in view at frame t (timestamp t)
    many, one = Counted("many", in_view), Counted("one", in_view)
    search = S.PersonSearch(many, one, every=3)
    assert [len(search(None, t)) for t in range(len(in_view))] == in_view
    assert [name for name, _ in calls] == [
        "many", "one", "one", "many", "one", "one",  # frames 0-5: one person, a look every third frame
        "many", "many", "many", "many",  # 6: the look finds two; many until 9 finds one again
        "one", "one", "many", "one", "one", "many",  # then every third frame (12, 15)
    ]  # fmt: skip
    assert [t for _, t in calls] == list(range(len(in_view)))  # each frame once, in order
    search.close()
    assert many.closed and one.closed


def test_a_window_keeps_its_highest_scoring_tracks_in_track_order():
    """Three tracks in a window of 3 frames, two kept: those with the highest summed score over the window (track 7
    is seen in one frame only), in track order; absent frames stay zero."""

    def person(x, score):
        return PersonPose(np.full((17, 2), x, np.float32), np.full(17, score, np.float32))

    entries = [
        (None, [(2, person(10, 0.5)), (5, person(20, 0.9))]),
        (None, [(2, person(11, 0.5)), (7, person(30, 1.0))]),
        (None, [(2, person(12, 0.5)), (5, person(21, 0.9))]),
    ]  # summed scores: track 2 25.5, track 5 30.6, track 7 17
    sample = S.window_sample(entries, 2, (H, W), "w")
    assert sample["track_ids"] == [2, 5] and sample["img_shape"] == (H, W) and sample["total_frames"] == 3
    np.testing.assert_array_equal(sample["keypoint"][:, :, 0, 0], [[10, 11, 12], [20, 0, 21]])
    np.testing.assert_array_equal(sample["keypoint_score"][1, :, 0], np.float32([0.9, 0, 0.9]))
    assert S.window_sample([(None, []), (None, [])], 2, (H, W), "w") is None  # nobody seen
