"""Long recordings: `predict --window T --stride S` and `predict_windows` give, per window, what predicting the
manually sliced array gives; the windows cover the whole sequence; the CLI prints one line per window."""

import json

import numpy as np
import pytest

from skeljax import predict as P
from skeljax.data import generate_synthetic
from skeljax.data.annotations import save_annotations
from skeljax.models.model_dir import save_model
from skeljax.models.stgcn import stgcnpp_spec
from tests.helpers import SMALL, small_model


@pytest.fixture(scope="module")
def long(tmp_path_factory):
    """Two small NTU models (J and B directories) and a 130-frame sequence as a .npy file."""
    d = tmp_path_factory.mktemp("windows")
    save_model(str(d / "j"), small_model(stgcnpp_spec(60, **SMALL), 0))
    save_model(str(d / "b"), small_model(stgcnpp_spec(60, **SMALL), 1), extra={"test": {"feat": "b"}})
    annos = generate_synthetic(2, seed=5)["annotations"]
    seq = np.concatenate([annos[0]["keypoint"], annos[7]["keypoint"]], axis=1)[:, :130].astype(np.float32)
    assert seq.shape[1] == 130
    np.save(d / "long.npy", seq)
    return {"dir": d, "seq": seq, "npy": str(d / "long.npy"), "j": P.load_predictor(d / "j")}


@pytest.mark.parametrize(
    "total, window, stride, spans",
    [
        (130, 50, 40, [(0, 50), (40, 90), (80, 130)]),  # the last full window ends exactly at the end
        (130, 50, 30, [(0, 50), (30, 80), (60, 110), (80, 130)]),  # the leftover: a last window aligned to the end
        (100, 50, 50, [(0, 50), (50, 100)]),
        (30, 50, 10, [(0, 30)]),  # shorter than a window: one window of all frames
        (50, 50, 10, [(0, 50)]),
    ],
)
def test_window_spans(total, window, stride, spans):
    got = P.window_spans(total, window, stride)
    assert got == spans
    covered = np.zeros(total, bool)
    for s, e in got:
        assert 0 <= s < e <= total and e - s == min(window, total)
        covered[s:e] = True
    assert covered.all()


def test_bad_windows_are_refused():
    for window, stride in ((0, 1), (10, 0), (-5, 5)):
        with pytest.raises(P.PredictError, match="must be positive"):
            P.window_spans(100, window, stride)


def test_windows_equal_predicting_the_sliced_arrays(long, tmp_path):
    windows = P.predict_windows(long["j"], long["npy"], window=50, stride=30)
    assert [(w.start, w.end) for w in windows] == [(0, 50), (30, 80), (60, 110), (80, 130)]
    for w in windows:
        path = tmp_path / f"slice_{w.start}.npy"
        np.save(path, long["seq"][:, w.start : w.end])  # the user's way: cut the array and predict the file
        ref = P.predict(long["j"], str(path))
        np.testing.assert_allclose(w.probs, ref.probs[0], rtol=1e-6, atol=1e-7)
        assert w.top5 == ref.top_k(0, 5)
    # windows of different content give different predictions, far beyond the tolerance above (the slicing is real)
    assert np.abs(windows[0].probs - windows[-1].probs).max() > 1e-4


def test_default_stride_and_fusion(long, tmp_path):
    ckpts = [str(long["dir"] / "j"), str(long["dir"] / "b")]
    windows = P.predict_windows(ckpts, long["seq"], window=65)  # an array input; stride = window
    assert [(w.start, w.end) for w in windows] == [(0, 65), (65, 130)]
    for w in windows:
        ref = P.predict(ckpts, long["seq"][:, w.start : w.end])
        np.testing.assert_allclose(w.probs, ref.probs[0], rtol=1e-6, atol=1e-7)


def test_cli_prints_one_line_per_window(long, capsys):
    args = ["--checkpoint", str(long["dir"] / "j"), "--input", long["npy"], "--window", "50", "--stride", "40"]
    assert P.main(args + ["--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    records = [json.loads(line) for line in lines]
    api = P.predict_windows(long["j"], long["npy"], window=50, stride=40)
    assert [set(r) for r in records] == [{"start", "end", "top5"}] * 3
    assert [(r["start"], r["end"]) for r in records] == [(0, 50), (40, 90), (80, 130)]
    assert [r["top5"] for r in records] == [w.top5 for w in api]
    assert P.main(args) == 0
    text = capsys.readouterr().out.strip().splitlines()
    assert len(text) == 3 and text[1].startswith("[40, 90)  " + api[1].top5[0]["label"])


def test_window_errors(long, tmp_path, capsys):
    annos = generate_synthetic(2, seed=5)["annotations"][:2]
    pkl = tmp_path / "two.pkl"
    save_annotations(pkl, {"split": {"val": [a["frame_dir"] for a in annos]}, "annotations": annos})
    with pytest.raises(P.PredictError, match="holds 2 samples; windows need one"):
        P.predict_windows(long["j"], str(pkl), window=20)
    one = P.predict_windows(long["j"], str(pkl), window=20, sample=annos[1]["frame_dir"])
    assert one[-1].end == annos[1]["keypoint"].shape[1]
    with pytest.raises(SystemExit):
        P.main(["--checkpoint", str(long["dir"] / "j"), "--input", long["npy"], "--stride", "5"])
    assert "--stride needs --window" in capsys.readouterr().err


def test_identical_clips_run_once(long, monkeypatch):
    """A window of exactly clip_len frames samples ten identical clips (PYSKL's test sampling): one is run, with
    the result of a one-clip predictor; a longer window runs all ten."""
    pred, rows = long["j"], []
    forward = pred._forward
    monkeypatch.setattr(pred, "_forward", lambda p, s, x: rows.append(x.shape[1]) or forward(p, s, x))
    assert (pred.clip_len, pred.num_clips) == (100, 10)
    anno = P.array_annotation(long["seq"], "long", pred.layout, "long")
    exact, longer = (P.window_annotation(anno, 0, n) for n in (100, 120))
    probs, _ = pred.scores([exact])
    pred.scores([longer])
    assert rows == [1, 10]
    one_clip = P.from_model(pred.model, meta={"test": {"test_num_clips": 1}})
    np.testing.assert_allclose(probs, one_clip.scores([exact])[0], rtol=1e-6, atol=1e-7)
