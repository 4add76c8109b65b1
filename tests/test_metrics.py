"""skeljax.metrics: hand-computed cases (ties, predicted-only classes) and loop-based independent references."""

import numpy as np
import pytest

from skeljax.metrics import confusion_matrix, mean_class_accuracy, top_k_accuracy

# 4 samples x 5 classes; class 4 is neither a label nor a prediction, class 3 is only predicted.
SCORES = np.array(
    [
        [0.1, 0.6, 0.2, 0.1, 0.0],  # label 1: top-1 hit
        [0.5, 0.2, 0.2, 0.1, 0.0],  # label 2: predicted 0; tie 1/2 for 2nd place, the higher index (2) wins
        [0.3, 0.3, 0.2, 0.2, 0.0],  # label 0: tie 0/1 at the top: top-1 ranks class 1 first, argmax picks 0
        [0.0, 0.1, 0.2, 0.7, -1.0],  # label 0: only in the top 4
    ]
)
LABELS = np.array([1, 2, 0, 0])


def test_top_k_by_hand():
    assert top_k_accuracy(SCORES, LABELS, topk=(1, 2, 3, 4, 5)) == pytest.approx([0.25, 0.75, 0.75, 1.0, 1.0])
    assert top_k_accuracy(SCORES.tolist(), LABELS.tolist(), topk=(1,)) == pytest.approx([0.25])


def test_mean_class_accuracy_by_hand():
    # argmax: [1, 0, 0, 3]. Classes present = {0, 1, 2, 3}: class 0 -> 1/2, class 1 -> 1/1, class 2 -> 0/1,
    # class 3 (predicted, no GT) -> 0; class 4 is left out. Mean = 1.5 / 4.
    assert mean_class_accuracy(SCORES, LABELS) == pytest.approx(0.375)
    # Dropping the unused column changes nothing (it was never part of the average).
    assert mean_class_accuracy(SCORES[:, :4], LABELS) == pytest.approx(0.375)


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(np.argmax(SCORES, axis=1), LABELS, 5)
    want = np.zeros((5, 5), np.int64)
    want[1, 1] = want[2, 0] = want[0, 0] = want[0, 3] = 1  # [true, pred]
    np.testing.assert_array_equal(cm, want)
    assert cm.dtype == np.int64


def _loop_top_k(scores, labels, k):
    """Without ties: the label is in the top k iff fewer than k classes score strictly higher."""
    return np.mean([np.sum(s > s[y]) < k for s, y in zip(scores, labels)])


def _loop_mean_class(scores, labels):
    pred = [int(np.argmax(s)) for s in scores]
    classes = sorted(set(pred) | {int(y) for y in labels})
    accs = []
    for c in classes:
        idx = [i for i, y in enumerate(labels) if y == c]
        accs.append(sum(pred[i] == c for i in idx) / len(idx) if idx else 0.0)
    return sum(accs) / len(accs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_loop_reference(seed):
    rng = np.random.default_rng(seed)
    n, c = 200, 12
    labels = rng.integers(0, c - 2, n)  # the last two classes have no GT samples
    scores = rng.random((n, c)) + 0.8 * np.eye(c)[labels]  # better than chance, yet with errors
    got = top_k_accuracy(scores, labels, topk=(1, 3, 5))
    assert got == pytest.approx([_loop_top_k(scores, labels, k) for k in (1, 3, 5)])
    assert 0.3 < got[0] < 0.95
    assert mean_class_accuracy(scores, labels) == pytest.approx(_loop_mean_class(scores, labels))
    pred = np.argmax(scores, axis=1)
    cm = confusion_matrix(pred, labels, c)
    loop_cm = np.zeros((c, c), np.int64)
    for p, y in zip(pred, labels):
        loop_cm[y, p] += 1
    np.testing.assert_array_equal(cm, loop_cm)


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        top_k_accuracy(SCORES, LABELS[:3])
    with pytest.raises(ValueError, match="labels must lie"):
        top_k_accuracy(SCORES, np.array([0, 1, 2, 5]))
    with pytest.raises(ValueError, match="integers"):
        mean_class_accuracy(SCORES, LABELS.astype(float))
    with pytest.raises(ValueError, match="k must be"):
        top_k_accuracy(SCORES, LABELS, topk=(0,))
    with pytest.raises(ValueError, match="pred"):
        confusion_matrix(np.array([0, 7]), np.array([0, 1]), 3)
