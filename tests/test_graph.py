"""Graphs against hand-derived facts (non-zero counts, values, the capped-hop quirk)."""

import numpy as np
import pytest

from skeljax import layouts
from skeljax.models import graph


def nnz(a):
    return [int((s != 0).sum()) for s in a]


@pytest.mark.parametrize(
    "layout, mode, expected",
    [
        ("nturgb+d", "spatial", [25, 24, 24]),
        ("coco", "spatial", [17, 16, 16]),
        ("nturgb+d", "stgcn_spatial", [25, 40, 8]),
        ("coco", "stgcn_spatial", [17, 22, 10]),
        ("ntu-rgb+d", "mmaction_spatial", [25, 40, 8]),
        ("mmaction_coco", "mmaction_spatial", [17, 34, 4]),
    ],
)
def test_nonzero_counts(layout, mode, expected):
    a = graph.adjacency(layout, mode)
    assert a.dtype == np.float32 and a.shape == (3,) + (a.shape[-1],) * 2
    assert nnz(a) == expected


def test_spatial_semantics_ntu():
    a = graph.adjacency("nturgb+d", "spatial")
    np.testing.assert_array_equal(a[0], np.eye(25))
    # Subset 1 copies a parent's feature into each child: column of child 3 (head) has a 1 at its parent 2 (neck).
    assert a[1][2, 3] == 1.0 and a[1][:, 3].sum() == 1.0
    # Subset 2 averages children into the parent: joint 20 (spine-shoulder) has 4 children (1, 2, 4, 8).
    np.testing.assert_allclose(a[2][[1, 2, 4, 8], 20], 0.25)
    assert set(np.unique(a[2]).tolist()) == {0.0, 0.25, 0.5, 1.0}


def test_stgcn_spatial_further_entries_and_values():
    a = graph.adjacency("nturgb+d", "stgcn_spatial")
    further = sorted(zip(*map(lambda x: x.tolist(), np.nonzero(a[2]))))
    assert further == [(1, 0), (2, 3), (4, 5), (8, 9), (20, 1), (20, 2), (20, 4), (20, 8)]
    assert set(np.unique(a).tolist()) == {0.0, np.float32(0.2), 0.25, np.float32(1 / 3), 0.5}
    # Column normalisation: each column of the full (summed) graph sums to one.
    np.testing.assert_allclose(a.sum(0).sum(0), 1.0, rtol=1e-6)


def test_capped_hops():
    hop = graph.hop_distance(4, [(0, 1), (1, 2), (2, 3)], max_hop=1)
    assert hop[0, 1] == 1 and hop[0, 0] == 0 and np.isinf(hop[0, 2]) and np.isinf(hop[0, 3])


def test_mmaction_and_pyskl_graphs_differ():
    assert not np.array_equal(
        graph.adjacency("nturgb+d", "stgcn_spatial"), graph.adjacency("ntu-rgb+d", "mmaction_spatial")
    )
    # On the same edge list the two constructions coincide.
    np.testing.assert_array_equal(graph.adjacency("coco", "stgcn_spatial"), graph.adjacency("coco", "mmaction_spatial"))


def test_custom_layout_chain():
    lay = layouts.custom(3, [(0, 1), (2, 1)], center=1)
    a = graph.adjacency(lay, "spatial")
    # Hand-computed: inward edges put parent 1 into both children's columns; outward averages two children.
    np.testing.assert_array_equal(a[1], [[0, 0, 0], [1, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(a[2], [[0, 0.5, 0], [0, 0, 0], [0, 0.5, 0]])
    s = graph.adjacency(lay, "stgcn_spatial")
    # Each joint and its neighbours share 1/(deg+1); children are further from the centre than the centre.
    np.testing.assert_allclose(s.sum(0), [[0.5, 1 / 3, 0], [0.5, 1 / 3, 0.5], [0, 1 / 3, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(s[2], [[0, 0, 0], [0.5, 0, 0.5], [0, 0, 0]])


@pytest.mark.parametrize(
    "bad",
    [
        dict(num_joints=3, edges=[(0, 3)], center=0),
        dict(num_joints=3, edges=[(0, 1)], center=5),
        dict(num_joints=3, edges=[(0,)], center=0),
    ],
)
def test_custom_layout_errors(bad):
    with pytest.raises(ValueError):
        layouts.custom(**bad)


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown layout"):
        graph.adjacency("kinect", "spatial")
    with pytest.raises(ValueError, match="unknown adjacency mode"):
        graph.adjacency("coco", "agcn")
