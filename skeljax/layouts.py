"""Skeleton layouts: the one registry of joints, edges, centre, channels, scores, bones and normalisation axes.

Graphs (`skeljax.models.graph.adjacency`), the data transforms, annotation checks, prediction and visualisation all read a
`SkeletonLayout`; adding a built-in layout means adding one entry to `BUILTIN`. Edges point inward, (child, parent)
towards the centre joint, as in `pyskl/utils/graph.py` and `mmaction/models/skeleton_gcn/utils/graph.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Edge = tuple[int, int]

# ModelSpec.layout of a model whose adjacency is stored with its weights (custom layouts, converted checkpoints with
# a joint count no built-in layout has); the value is what existing model_spec.json files hold.
GRAPH_IN_WEIGHTS = "checkpoint"
RECIPES = ("pyskl", "vanilla", "mmaction0x", "stgcn_original")
# The recipes of the PYSKL data layouts (NTU-25 3D, COCO-17 2D).
_PYSKL_DATA_RECIPES = ("pyskl", "vanilla", "mmaction0x")


@dataclasses.dataclass(frozen=True)
class SkeletonLayout:
    """A joint layout and what the data pipeline and the graph need to know about it.

    `channels` is the model's input channels: 3 = (x, y, z) 3D joints, or (x, y, score) when `score` is True (the
    annotations then hold 2D `keypoint` (M, T, V, 2) plus `keypoint_score` (M, T, V)); 2 = (x, y).
    `bones` lists (joint, partner) pairs when they differ from the inward edges (PYSKL's JointToBone tables); joints
    missing from it (the root) are their own partner. `zaxis`/`xaxis` are PreNormalize3D's (from, to) joint pairs
    and `body_center` the joint it centres on (default: the graph centre); None axes: centre only, no rotation.
    `recipes`: the input pipelines that accept this layout (empty: a graph variant or annotation-only layout).
    `mmaction_graph`: the MMAction2 0.x graph variant of this layout, for the mmaction0x family.
    """

    name: str
    num_joints: int
    inward: tuple[Edge, ...]
    center: int
    channels: int = 3
    score: bool = False
    bones: tuple[Edge, ...] | None = None
    zaxis: Edge | None = None
    xaxis: Edge | None = None
    body_center: int | None = None
    recipes: tuple[str, ...] = ("pyskl", "vanilla")
    mmaction_graph: str | None = None

    def __post_init__(self):
        where = f"layout {self.name!r}"
        if self.num_joints < 1:
            raise ValueError(f"{where}: num_joints must be positive, got {self.num_joints}")
        if not 0 <= self.center < self.num_joints:
            raise ValueError(f"{where}: centre joint {self.center} outside 0..{self.num_joints - 1}")
        for i, j in self.inward + (self.bones or ()):
            if not (0 <= i < self.num_joints and 0 <= j < self.num_joints):
                raise ValueError(f"{where}: edge ({i}, {j}) refers to a joint outside 0..{self.num_joints - 1}")
        if self.channels not in (2, 3):
            raise ValueError(f"{where}: channels must be 2 (x, y) or 3 (x, y, z or x, y, score), got {self.channels}")
        if self.score and self.channels != 3:
            raise ValueError(f"{where}: score=True means channels (x, y, score), so channels must be 3")
        for name in ("zaxis", "xaxis"):
            pair = getattr(self, name)
            if pair is None:
                continue
            if not self.is_3d:
                raise ValueError(f"{where}: {name} aligns 3D skeletons; this layout is 2D")
            if len(pair) != 2 or not all(0 <= int(j) < self.num_joints for j in pair):
                raise ValueError(f"{where}: {name} must be two joint indices in 0..{self.num_joints - 1}, got {pair}")
            object.__setattr__(self, name, (int(pair[0]), int(pair[1])))
        if (self.zaxis is None) != (self.xaxis is None):
            raise ValueError(f"{where}: give both zaxis and xaxis (spine and shoulder joints) or neither")
        bad = [r for r in self.recipes if r not in RECIPES]
        if bad:
            raise ValueError(f"{where}: unknown recipes {bad}; expected some of {RECIPES}")

    @property
    def outward(self) -> tuple[Edge, ...]:
        return tuple((j, i) for i, j in self.inward)

    @property
    def self_link(self) -> tuple[Edge, ...]:
        return tuple((i, i) for i in range(self.num_joints))

    @property
    def is_3d(self) -> bool:
        return self.channels == 3 and not self.score

    @property
    def kind(self) -> str:
        """'3d' (x, y, z) or '2d' (x, y and maybe a score): how visualisation draws it."""
        return "3d" if self.is_3d else "2d"

    @property
    def keypoint_channels(self) -> int:
        """Channels of the annotations' `keypoint` array (the score lives in `keypoint_score`)."""
        return 2 if self.score else self.channels

    @property
    def normalize_center(self) -> int:
        """The joint PreNormalize3D centres on."""
        return self.center if self.body_center is None else self.body_center

    def expected(self) -> str:
        """What the annotations hold, for error messages."""
        return f"{self.num_joints} joints x {self.keypoint_channels} channels" + (
            " plus keypoint_score" if self.score else ""
        )

    def parents(self) -> np.ndarray:
        """parents[v]: the joint v's bone starts from; the root (and any joint that is no pair's child) itself."""
        parents = np.arange(self.num_joints, dtype=np.int64)
        if self.bones is not None:
            for child, parent in self.bones:
                parents[child] = parent
            return parents
        seen: dict[int, int] = {}
        for child, parent in self.inward:
            if child == self.center:
                raise ValueError(
                    f"layout {self.name!r}: edge ({child}, {parent}) leaves the centre joint {child}; "
                    "inward edges are (child, parent) pointing towards the centre"
                )
            if child in seen and seen[child] != parent:
                raise ValueError(
                    f"layout {self.name!r}: joint {child} has two parents ({seen[child]} and {parent}); "
                    "bones need one inward edge per joint"
                )
            seen[child] = parent
            parents[child] = parent
        return parents


# NTU RGB+D 25 joints: the body without hand tips and thumbs; PYSKL attaches both to the hand, MMAction2 0.x chains
# tip -> thumb -> hand (and PYSKL's JointToBone follows that chain too).
_NTU_BODY = (
    (0, 1),
    (1, 20),
    (2, 20),
    (3, 2),
    (4, 20),
    (5, 4),
    (6, 5),
    (7, 6),
    (8, 20),
    (9, 8),
    (10, 9),
    (11, 10),
    (12, 0),
    (13, 12),
    (14, 13),
    (15, 14),
    (16, 0),
    (17, 16),
    (18, 17),
    (19, 18),
)
_NTU_HANDS_PYSKL = ((21, 7), (22, 7), (23, 11), (24, 11))
_NTU_HANDS_CHAIN = ((21, 22), (22, 7), (23, 24), (24, 11))
# COCO 17 keypoints: PYSKL's graph joins hips to shoulders; its JointToBone pairs (pose_related.py) join them to the
# nose; MMAction2 0.x's graph has its own edge set with the hip-hip and shoulder-shoulder links.
_COCO_PYSKL = (
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 5),
    (12, 6),
    (9, 7),
    (7, 5),
    (10, 8),
    (8, 6),
    (5, 0),
    (6, 0),
    (1, 0),
    (3, 1),
    (2, 0),
    (4, 2),
)
_COCO_BONES = (
    (1, 0),
    (2, 0),
    (3, 1),
    (4, 2),
    (5, 0),
    (6, 0),
    (7, 5),
    (8, 6),
    (9, 7),
    (10, 8),
    (11, 0),
    (12, 0),
    (13, 11),
    (14, 12),
    (15, 13),
    (16, 14),
)
_COCO_MMACTION = (
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (7, 5),
    (8, 6),
    (9, 7),
    (10, 8),
    (1, 2),
    (1, 0),
    (2, 0),
    (3, 1),
    (4, 2),
    (3, 5),
    (4, 6),
)
# OpenPose 18 keypoints: ST-GCN's `openpose` graph (`net/utils/graph.py` of st-gcn), centre joint 1 (neck).
_OPENPOSE = (
    (4, 3),
    (3, 2),
    (7, 6),
    (6, 5),
    (13, 12),
    (12, 11),
    (10, 9),
    (9, 8),
    (11, 5),
    (8, 2),
    (5, 1),
    (2, 1),
    (0, 1),
    (15, 0),
    (14, 0),
    (17, 15),
    (16, 14),
)

BUILTIN: dict[str, SkeletonLayout] = {
    layout.name: layout
    for layout in (
        # PYSKL data layouts: NTU 3D is centred on the spine middle (joint 1) and rotated spine -> +z, shoulders -> +x.
        SkeletonLayout(
            "nturgb+d",
            25,
            _NTU_BODY + _NTU_HANDS_PYSKL,
            center=20,
            bones=_NTU_BODY + _NTU_HANDS_CHAIN,
            zaxis=(0, 1),
            xaxis=(8, 4),
            body_center=1,
            recipes=_PYSKL_DATA_RECIPES + ("stgcn_original",),  # the last: the ST-GCN paper's raw-coordinate input
            mmaction_graph="ntu-rgb+d",
        ),
        SkeletonLayout(
            "coco",
            17,
            _COCO_PYSKL,
            center=0,
            score=True,
            bones=_COCO_BONES,
            recipes=_PYSKL_DATA_RECIPES,
            mmaction_graph="mmaction_coco",
        ),
        # MMAction2 0.x graph variants of the same data.
        SkeletonLayout(
            "ntu-rgb+d", 25, _NTU_BODY + _NTU_HANDS_CHAIN, center=20, recipes=(), mmaction_graph="ntu-rgb+d"
        ),
        SkeletonLayout(
            "mmaction_coco", 17, _COCO_MMACTION, center=0, score=True, recipes=(), mmaction_graph="mmaction_coco"
        ),
        # Kinetics-skeleton (ST-GCN's release): OpenPose-18 2D joints with scores, in image fractions; bones follow the
        # inward edges (hips hang from the shoulders, as in ST-GCN's graph).
        SkeletonLayout("openpose", 18, _OPENPOSE, center=1, score=True, recipes=("pyskl", "vanilla", "stgcn_original")),
    )
}
# Other names annotation files and configs have used for a built-in layout.
ALIASES = {"ntu": "nturgb+d"}
# The layouts a config's `model.layout` can name (besides 'custom'): those an input pipeline takes.
DATA_LAYOUTS = tuple(name for name, layout in BUILTIN.items() if layout.recipes)

LayoutArg = str | SkeletonLayout


def get(layout: LayoutArg) -> SkeletonLayout:
    """A SkeletonLayout as given, or the built-in of that name (or alias)."""
    if isinstance(layout, SkeletonLayout):
        return layout
    found = BUILTIN.get(ALIASES.get(layout, layout)) if isinstance(layout, str) else None
    if found is None:
        raise ValueError(f"unknown layout {layout!r}; known: {sorted(BUILTIN)} (or a custom SkeletonLayout)")
    return found


def name_of(layout: LayoutArg) -> str:
    return layout.name if isinstance(layout, SkeletonLayout) else str(layout)


def by_joints(num_joints: int) -> SkeletonLayout | None:
    """The data layout with that many joints (NTU-25 3D, COCO-17 2D, OpenPose-18 2D), or None."""
    for name in DATA_LAYOUTS:
        if BUILTIN[name].num_joints == num_joints:
            return BUILTIN[name]
    return None


def custom(
    num_joints: int,
    edges: Sequence[Sequence[int]],
    center: int,
    *,
    name: str = "custom",
    channels: int = 3,
    score: bool = False,
    zaxis: Edge | None = None,
    xaxis: Edge | None = None,
) -> SkeletonLayout:
    """A user-defined layout from the joint count, inward edge list (child, parent) and centre joint."""
    try:
        inward = tuple((int(i), int(j)) for i, j in edges)
    except (TypeError, ValueError) as e:
        raise ValueError(f"layout {name!r}: edges must be pairs of joint indices, got {edges!r}") from e
    return SkeletonLayout(
        name, int(num_joints), inward, int(center), channels=int(channels), score=bool(score), zaxis=zaxis, xaxis=xaxis
    )


# The keys of `config.model.custom_layout` (configs/custom_pickle.py).
CUSTOM_KEYS = ("num_joints", "edges", "center", "channels", "score", "zaxis", "xaxis", "name")


def from_config(cl: Mapping[str, Any] | None, where: str = "config.model.custom_layout") -> SkeletonLayout:
    """The custom layout a `config.model.custom_layout` mapping describes; errors start with `where`."""
    if cl is None:
        raise ValueError(
            f"config.model.layout='custom' needs {where} = ConfigDict(dict(num_joints=V, "
            "edges=((child, parent), ...), center=c, channels=3)) (see configs/custom_pickle.py)"
        )
    unknown = sorted(set(cl) - set(CUSTOM_KEYS))
    missing = [k for k in ("num_joints", "edges", "center") if cl.get(k) is None]
    if unknown or missing:
        raise ValueError(
            f"{where}: "
            + "; ".join(
                ([f"unknown keys {unknown} (known: {list(CUSTOM_KEYS)})"] if unknown else [])
                + ([f"missing {missing}"] if missing else [])
            )
        )
    try:
        axes = {k: tuple(int(j) for j in cl.get(k) or ()) or None for k in ("zaxis", "xaxis")}
        return custom(
            cl["num_joints"],
            cl["edges"],
            cl["center"],
            name=cl.get("name") or "custom",
            channels=int(cl.get("channels", 3)),
            score=bool(cl.get("score", False)),
            **axes,
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from e
