"""Skeleton graphs: joint layouts and the adjacency tensors of PYSKL and MMAction2 0.x.

Every adjacency is built in float64 NumPy exactly as the references do and cast to float32 once, so that
graphs generated here are bit-identical to the `A` tensors stored in released checkpoints (spec section 1).
Conventions: an edge (i, j) points from child i towards parent j (towards the centre); `A[k, v, w]` is indexed
[source v, target w] and the forward pass computes `out[..., w] = sum_v x[..., v] * A[k, v, w]`.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

Edge = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Layout:
    """A joint layout: number of joints, inward edges (child, parent) and the centre joint."""

    name: str
    num_joints: int
    inward: tuple[Edge, ...]
    center: int

    def __post_init__(self):
        if self.num_joints < 1:
            raise ValueError(f"layout {self.name!r}: num_joints must be positive, got {self.num_joints}")
        if not 0 <= self.center < self.num_joints:
            raise ValueError(f"layout {self.name!r}: centre joint {self.center} outside 0..{self.num_joints - 1}")
        for i, j in self.inward:
            if not (0 <= i < self.num_joints and 0 <= j < self.num_joints):
                raise ValueError(f"layout {self.name!r}: edge ({i}, {j}) refers to a joint outside "
                                 f"0..{self.num_joints - 1}")

    @property
    def outward(self) -> tuple[Edge, ...]:
        return tuple((j, i) for i, j in self.inward)

    @property
    def self_link(self) -> tuple[Edge, ...]:
        return tuple((i, i) for i in range(self.num_joints))


# PYSKL `nturgb+d`: hand tip and thumb both attach to the hand (spec 1.2).
_NTU_BODY = ((0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8), (10, 9), (11, 10),
             (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18))

LAYOUTS: dict[str, Layout] = {
    # PYSKL layouts (pyskl/utils/graph.py).
    "nturgb+d": Layout("nturgb+d", 25, _NTU_BODY + ((21, 7), (22, 7), (23, 11), (24, 11)), center=20),
    "coco": Layout("coco", 17, ((15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8),
                                (8, 6), (5, 0), (6, 0), (1, 0), (3, 1), (2, 0), (4, 2)), center=0),
    # MMAction2 0.x layouts (mmaction/models/skeleton_gcn/utils/graph.py): other hand and COCO edges.
    "ntu-rgb+d": Layout("ntu-rgb+d", 25, _NTU_BODY + ((21, 22), (22, 7), (23, 24), (24, 11)), center=20),
    "mmaction_coco": Layout("mmaction_coco", 17, ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12),
                                                  (5, 6), (7, 5), (8, 6), (9, 7), (10, 8), (1, 2), (1, 0), (2, 0),
                                                  (3, 1), (4, 2), (3, 5), (4, 6)), center=0),
}

# Adjacency modes: PYSKL 'spatial' (ST-GCN++), PYSKL 'stgcn_spatial' (PYSKL ST-GCN) and MMAction2 0.x's
# 'spatial' strategy (ST-GCN, AAAI 2018), which is numerically the same construction as 'stgcn_spatial'.
MODES = ("spatial", "stgcn_spatial", "mmaction_spatial")


def custom_layout(num_joints: int, edges: Sequence[Sequence[int]], center: int, name: str = "custom") -> Layout:
    """A user-defined layout from (number of joints, inward edge list (child, parent), centre joint)."""
    try:
        inward = tuple((int(i), int(j)) for i, j in edges)
    except (TypeError, ValueError) as e:
        raise ValueError(f"layout {name!r}: edges must be pairs of joint indices, got {edges!r}") from e
    return Layout(name, int(num_joints), inward, int(center))


def get_layout(layout: str | Layout) -> Layout:
    if isinstance(layout, Layout):
        return layout
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)} (or pass custom_layout(...))")
    return LAYOUTS[layout]


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


def _spatial(layout: Layout) -> np.ndarray:
    v = layout.num_joints
    return np.stack([edge2mat(layout.self_link, v),
                     normalize_digraph(edge2mat(layout.inward, v)),
                     normalize_digraph(edge2mat(layout.outward, v))])


def _distance_partition(layout: Layout, max_hop: int) -> np.ndarray:
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


def adjacency(layout: str | Layout, mode: str = "spatial", max_hop: int = 1) -> np.ndarray:
    """The float32 adjacency tensor (K, V, V) of a layout and mode, built in float64 and cast once."""
    lay = get_layout(layout)
    if mode == "spatial":
        a = _spatial(lay)
    elif mode in ("stgcn_spatial", "mmaction_spatial"):
        a = _distance_partition(lay, max_hop)
    else:
        raise ValueError(f"unknown adjacency mode {mode!r}; known: {MODES}")
    return a.astype(np.float32)


def mmaction_layout(layout: str) -> str:
    """MMAction2 0.x layout name for a skeljax layout name ('coco' -> 'mmaction_coco')."""
    return {"coco": "mmaction_coco", "mmaction_coco": "mmaction_coco", "ntu-rgb+d": "ntu-rgb+d",
            "nturgb+d": "ntu-rgb+d"}[layout]
