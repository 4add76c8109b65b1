"""Score files and multi-stream fusion: alignment by name, errors on mismatches and malformed files, the CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest

from skeljax.ensemble import FORMAT, ScoreFileError, fuse_scores, read_scores, write_scores
from skeljax.metrics import mean_class_accuracy, top_k_accuracy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, C = 40, 7


def _streams(num, seed=0):
    """`num` noisy probability streams over the same N samples (aligned), plus names and labels."""
    rng = np.random.default_rng(seed)
    names = np.array([f"S{rng.integers(1, 18):03d}C001P{i:03d}R001A{rng.integers(1, 61):03d}" for i in range(N)])
    labels = rng.integers(0, C, N)
    probs = []
    for _ in range(num):
        logits = rng.normal(size=(N, C)) + 1.2 * np.eye(C)[labels]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs.append((e / e.sum(axis=1, keepdims=True)).astype(np.float32))
    return names, probs, labels


def _write_shuffled(tmp_path, names, probs, labels, seed=1):
    """Writes each stream in its own random sample order; returns the paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for i, p in enumerate(probs):
        perm = rng.permutation(N)
        assert (perm != np.arange(N)).any()
        path = tmp_path / f"stream{i}.npz"
        write_scores(path, names[perm], p[perm], labels[perm])
        paths.append(path)
    return paths


@pytest.mark.parametrize("num,weights", [(2, [1, 1]), (4, [2, 2, 1, 1])])
def test_shuffled_files_fuse_like_aligned_arrays(tmp_path, num, weights):
    names, probs, labels = _streams(num)
    paths = _write_shuffled(tmp_path, names, probs, labels)
    fused = fuse_scores([read_scores(p) for p in paths])  # default weights
    want = sum(w * p.astype(np.float64) for w, p in zip(weights, probs))
    order = {n: i for i, n in enumerate(names)}
    idx = np.array([order[n] for n in fused.names])
    np.testing.assert_allclose(fused.scores, want[idx], rtol=1e-12)
    np.testing.assert_array_equal(fused.labels, labels[idx])
    assert top_k_accuracy(fused.scores, fused.labels) == pytest.approx(top_k_accuracy(want, labels))
    assert mean_class_accuracy(fused.scores, fused.labels) == pytest.approx(mean_class_accuracy(want, labels))


def test_explicit_weights_and_roundtrip(tmp_path):
    names, probs, labels = _streams(3)
    path = tmp_path / "plain.scores"  # no .npz suffix: the name must be kept as given
    write_scores(path, names, probs[0], labels)
    back = read_scores(path)
    assert os.listdir(tmp_path) == ["plain.scores"]
    np.testing.assert_array_equal(back.names, names)
    np.testing.assert_array_equal(back.scores, probs[0])
    np.testing.assert_array_equal(back.labels, labels)
    assert back.num_classes == C
    with pytest.raises(ScoreFileError, match="duplicate"):  # writing checks the same things as reading
        write_scores(tmp_path / "dup.npz", [names[0]] * N, probs[0], labels)
    assert not list(tmp_path.glob("dup.npz*"))
    streams = [read_scores(p) for p in _write_shuffled(tmp_path, names, probs, labels)]
    fused = fuse_scores(streams, [0.5, 0.0, 3.0])
    order = {n: i for i, n in enumerate(names)}
    idx = np.array([order[n] for n in fused.names])
    np.testing.assert_allclose(fused.scores, (0.5 * probs[0] + 3.0 * probs[2]).astype(np.float64)[idx], rtol=1e-6)
    with pytest.raises(ValueError, match="3 weights for 2 streams"):
        fuse_scores(streams[:2], [1, 1, 1])


def test_mismatched_sample_sets_name_the_files(tmp_path):
    names, probs, labels = _streams(2)
    write_scores(tmp_path / "J.npz", names, probs[0], labels)
    write_scores(tmp_path / "B.npz", names[:-1], probs[1][:-1], labels[:-1])
    with pytest.raises(ScoreFileError, match=r"sample sets differ between .*J\.npz .*B\.npz") as e:
        fuse_scores([read_scores(tmp_path / "J.npz"), read_scores(tmp_path / "B.npz")])
    assert names[-1] in str(e.value)
    renamed = names.copy()
    renamed[0] = "S999C999P999R999A999"
    write_scores(tmp_path / "B.npz", renamed, probs[1], labels)
    with pytest.raises(ScoreFileError, match="1 only in the first .*1 only in the second"):
        fuse_scores([read_scores(tmp_path / "J.npz"), read_scores(tmp_path / "B.npz")])


def test_label_and_class_mismatch(tmp_path):
    names, probs, labels = _streams(2)
    other = labels.copy()
    other[5] = (other[5] + 1) % C
    write_scores(tmp_path / "J.npz", names, probs[0], labels)
    write_scores(tmp_path / "B.npz", names, probs[1], other)
    with pytest.raises(ScoreFileError, match=f"labels disagree .*{names[5]}"):
        fuse_scores([read_scores(tmp_path / "J.npz"), read_scores(tmp_path / "B.npz")])
    write_scores(tmp_path / "B.npz", names, probs[1][:, :-1], np.minimum(labels, C - 2))
    with pytest.raises(ScoreFileError, match="classes"):
        fuse_scores([read_scores(tmp_path / "J.npz"), read_scores(tmp_path / "B.npz")])


def _raw_npz(path, **over):
    names, probs, labels = _streams(1)
    arrays = {
        "format": np.asarray(FORMAT),
        "names": names,
        "scores": probs[0],
        "labels": labels,
        "num_classes": np.asarray(C),
    }
    arrays.update(over)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


@pytest.mark.parametrize(
    "over,msg",
    [
        ({"labels": None}, "missing keys"),
        ({"format": np.asarray("other")}, "format"),
        ({"num_classes": np.asarray(C + 1)}, "num_classes"),
        ({"scores": np.full((N, C), np.nan, np.float32)}, "non-finite"),
        ({"names": np.array(["a"] * N)}, "duplicate"),
        ({"labels": np.full(N, C)}, "labels must lie"),
        ({"scores": np.zeros((N - 1, C), np.float32)}, "scores"),
        ({"names": np.array([{"x": 1}] * N, dtype=object)}, "cannot read"),  # pickled objects are refused
    ],
)
def test_malformed_files(tmp_path, over, msg):
    path = _raw_npz(tmp_path / "bad.npz", **over)
    with pytest.raises(ScoreFileError, match=msg) as e:
        read_scores(path)
    assert "bad.npz" in str(e.value)


def test_not_a_score_file(tmp_path):
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ScoreFileError, match=r"text\.npz.*cannot read"):
        read_scores(tmp_path / "text.npz")
    with pytest.raises(ScoreFileError, match="no such score file"):
        read_scores(tmp_path / "missing.npz")


def _cli(*args):
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "ensemble.py"), *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


def test_cli_prints_accuracies(tmp_path):
    names, probs, labels = _streams(4)
    paths = _write_shuffled(tmp_path, names, probs, labels)
    out_path = tmp_path / "fused.npz"
    res = _cli(*paths, "--out", out_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"{N} samples, {C} classes"
    fused = sum(w * p.astype(np.float64) for w, p in zip([2, 2, 1, 1], probs))
    top1, top5 = top_k_accuracy(fused, labels)
    assert lines[-1] == f"wrote the fused scores of {N} samples to {out_path}"
    fusion = lines[-2].split()
    assert fusion[0] == "fusion"
    assert [float(v) for v in fusion[1:]] == pytest.approx(
        [100 * top1, 100 * top5, 100 * mean_class_accuracy(fused, labels)], abs=0.006
    )
    for i, p in enumerate(probs):  # one line per stream with its weight and its own top-1
        cols = lines[2 + i].split()
        assert cols[0].endswith(f"stream{i}.npz") and float(cols[1]) == [2, 2, 1, 1][i]
        assert float(cols[2]) == pytest.approx(100 * top_k_accuracy(p, labels, (1,))[0], abs=0.006)
    assert read_scores(out_path).scores == pytest.approx(fuse_scores([read_scores(p) for p in paths]).scores)

    res = _cli(*paths[:2], "--weights", 1)
    assert res.returncode != 0 and "--weights has 1 values for 2 files" in res.stderr
    res = _cli(paths[0], tmp_path / "nope.npz")
    assert res.returncode != 0 and "nope.npz: no such score file" in res.stderr
