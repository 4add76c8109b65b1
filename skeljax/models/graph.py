"""Skeleton graphs: the adjacency tensors of PYSKL and MMAction2 0.x for a `skeljax.layouts` layout.

Every adjacency is built in float64 NumPy exactly as the references do (`pyskl/utils/graph.py`,
`mmaction/models/skeleton_gcn/utils/graph.py`) and cast to float32 once, so that graphs generated here are
bit-identical to the `A` tensors stored in released checkpoints. Conventions: an edge (i, j) points from child i
towards parent j (towards the centre); `A[k, v, w]` is indexed [source v, target w] and the forward pass
computes `out[..., w] = sum_v x[..., v] * A[k, v, w]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from skeljax.layouts import Edge, LayoutArg, SkeletonLayout, get

# Adjacency modes: PYSKL 'spatial' (ST-GCN++), PYSKL 'stgcn_spatial' (PYSKL ST-GCN) and MMAction2 0.x's
# 'spatial' strategy (ST-GCN, AAAI 2018), which is numerically the same construction as 'stgcn_spatial'.
MODES = ("spatial", "stgcn_spatial", "mmaction_spatial")


def edge2mat(links: Sequence[Edge], num_joints: int) -> np.ndarray:
    """Adjacency with M[j, i] = 1 for each (i, j): row is the edge's second element."""
    mat = np.zeros((num_joints, num_joints))
    for i, j in links:
        mat[j, i] = 1
    return mat


def normalize_digraph(mat: np.ndarray) -> np.ndarray:
    """Column normalisation: every non-empty column sums to one."""
    col = mat.sum(0)
    inv = np.zeros_like(col)
    nz = col > 0
    inv[nz] = 1.0 / col[nz]
    return mat @ np.diag(inv)


def hop_distance(num_joints: int, edges: Sequence[Edge], max_hop: int = 1) -> np.ndarray:
    """Hop distances capped at max_hop: pairs further apart stay at +inf (the reference behaviour)."""
    adj = np.eye(num_joints)
    for i, j in edges:
        adj[i, j] = adj[j, i] = 1
    hop = np.full((num_joints, num_joints), np.inf)
    powers = [np.linalg.matrix_power(adj, d) for d in range(max_hop + 1)]
    reach = np.stack(powers) > 0
    for d in range(max_hop, -1, -1):
        hop[reach[d]] = d
    return hop


def _spatial(layout: SkeletonLayout) -> np.ndarray:
    v = layout.num_joints
    return np.stack(
        [
            edge2mat(layout.self_link, v),
            normalize_digraph(edge2mat(layout.inward, v)),
            normalize_digraph(edge2mat(layout.outward, v)),
        ]
    )


def _distance_partition(layout: SkeletonLayout, max_hop: int) -> np.ndarray:
    """ST-GCN's spatial partition: [root, closer, further] by distance to the centre, with capped hops."""
    v, c = layout.num_joints, layout.center
    hop = hop_distance(v, layout.inward, max_hop)
    adj = (hop <= max_hop).astype(np.float64)
    norm = normalize_digraph(adj)
    # A joint j that is as far from the centre as i (including the capped inf == inf case) joins the
    # 'close' subset; only strictly nearer ones go to 'further'. Element [j, i] compares hop[j, c] with hop[i, c].
    nearer = hop[:, c][:, None] < hop[:, c][None, :]
    subsets = []
    for h in range(max_hop + 1):
        on_hop = hop == h
        subsets.append(np.where(on_hop & ~nearer, norm, 0.0))
        if h > 0:
            subsets.append(np.where(on_hop & nearer, norm, 0.0))
    return np.stack(subsets)


def adjacency(layout: LayoutArg, mode: str = "spatial", max_hop: int = 1) -> np.ndarray:
    """The float32 adjacency tensor (K, V, V) of a layout and mode, built in float64 and cast once."""
    lay = get(layout)
    if mode == "spatial":
        a = _spatial(lay)
    elif mode in ("stgcn_spatial", "mmaction_spatial"):
        a = _distance_partition(lay, max_hop)
    else:
        raise ValueError(f"unknown adjacency mode {mode!r}; known: {MODES}")
    return a.astype(np.float32)
