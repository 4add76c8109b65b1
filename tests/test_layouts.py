"""The layout registry: built-ins against tables written out by hand, tree structure, lookups, custom layouts."""

import numpy as np
import pytest

from skeljax import layouts
from skeljax.models.stgcn import ModelSpec, mmaction0x_spec

# PYSKL's JointToBone pairs (v1, v2): bone[v1] = joint[v1] - joint[v2] (pyskl/datasets/pipelines/pose_related.py),
# written out as that file lists them, independently of the registry's edge tuples.
PYSKL_BONE_PAIRS = {
    "nturgb+d": (
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
        (21, 22),
        (20, 20),
        (22, 7),
        (23, 24),
        (24, 11),
    ),
    "coco": (
        (0, 0),
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
    ),
}
# (joints, keypoint channels) of the annotation files of each name annotation checks have accepted.
ANNOTATION_SHAPES = {"nturgb+d": (25, 3), "ntu": (25, 3), "coco": (17, 2), "openpose": (18, 2)}


def is_tree(num_joints, pairs, root):
    """Every joint but the root has exactly one parent and its parent chain reaches the root."""
    parent = {}
    for child, p in pairs:
        if child in parent or child == root:
            return False
        parent[child] = p
    if set(parent) != set(range(num_joints)) - {root}:
        return False
    for start in parent:
        v, seen = start, set()
        while v != root:
            if v in seen:
                return False
            seen.add(v)
            v = parent[v]
    return True


@pytest.mark.parametrize("name", sorted(set(layouts.BUILTIN) - {"mmaction_coco"}))
def test_builtin_edges_form_a_tree_rooted_at_the_centre(name):
    lay = layouts.get(name)
    assert is_tree(lay.num_joints, lay.inward, lay.center)


def test_mmaction_coco_graph_is_not_a_tree():
    # MMAction2 0.x's COCO graph links both hips and both shoulders (cycles): graph only, no bones from its edges.
    lay = layouts.get("mmaction_coco")
    assert not is_tree(lay.num_joints, lay.inward, lay.center) and lay.recipes == ()


@pytest.mark.parametrize("name", sorted(PYSKL_BONE_PAIRS))
def test_builtin_bones_are_pyskls_pairs(name):
    want = np.empty(len(PYSKL_BONE_PAIRS[name]), np.int64)
    for v1, v2 in PYSKL_BONE_PAIRS[name]:
        want[v1] = v2
    parents = layouts.get(name).parents()
    assert parents.dtype == np.int64
    np.testing.assert_array_equal(parents, want)
    root = int(np.flatnonzero(parents == np.arange(len(parents)))[0])
    assert is_tree(len(parents), [(v, int(p)) for v, p in enumerate(parents) if v != root], root)


@pytest.mark.parametrize("name", ["ntu-rgb+d", "openpose"])
def test_bone_parents_agree_with_the_edges(name):
    lay = layouts.get(name)
    parents = lay.parents()
    assert parents[lay.center] == lay.center
    assert sorted((v, int(p)) for v, p in enumerate(parents) if v != lay.center) == sorted(lay.inward)


def test_pyskl_ntu_bones_follow_the_mmaction_hand_chain():
    assert sorted(layouts.get("nturgb+d").bones) == sorted(layouts.get("ntu-rgb+d").inward)


@pytest.mark.parametrize("name", sorted(ANNOTATION_SHAPES))
def test_annotation_shapes(name):
    lay = layouts.get(name)
    assert (lay.num_joints, lay.keypoint_channels) == ANNOTATION_SHAPES[name]


def test_data_properties():
    ntu, coco = layouts.get("nturgb+d"), layouts.get("coco")
    assert (ntu.is_3d, ntu.kind, ntu.channels, ntu.score) == (True, "3d", 3, False)
    assert (coco.is_3d, coco.kind, coco.channels, coco.score) == (False, "2d", 3, True)
    # PreNormalize3D on NTU: centre on the spine middle (joint 1), spine 0 -> 1 to +z, shoulders 8 -> 4 to +x.
    assert (ntu.normalize_center, ntu.zaxis, ntu.xaxis) == (1, (0, 1), (8, 4))
    assert coco.expected() == "17 joints x 2 channels plus keypoint_score"
    assert layouts.DATA_LAYOUTS == ("nturgb+d", "coco", "openpose")
    assert (ntu.mmaction_graph, coco.mmaction_graph) == ("ntu-rgb+d", "mmaction_coco")


def test_lookups():
    assert layouts.get("ntu") is layouts.get("nturgb+d")
    lay = layouts.custom(2, [(1, 0)], 0)
    assert layouts.get(lay) is lay and layouts.name_of(lay) == "custom" and layouts.name_of("coco") == "coco"
    assert layouts.by_joints(25).name == "nturgb+d" and layouts.by_joints(17).name == "coco"
    assert layouts.by_joints(18).name == "openpose"  # Kinetics-skeleton
    assert layouts.by_joints(19) is None
    with pytest.raises(ValueError, match="unknown layout 'kinect'"):
        layouts.get("kinect")


def test_mmaction0x_spec_uses_the_mmaction_graph():
    assert mmaction0x_spec(60, "nturgb+d").layout == "ntu-rgb+d"
    assert mmaction0x_spec(60, "mmaction_coco").layout == "mmaction_coco"
    with pytest.raises(ValueError, match="no MMAction2 0.x graph"):
        mmaction0x_spec(60, "openpose")


def test_graph_in_weights_sentinel():
    spec = ModelSpec.from_json({"num_classes": 2, "layout": "checkpoint", "num_joints": 7})
    assert spec.graph_in_weights and spec.to_json()["layout"] == "checkpoint"  # the saved format is unchanged
    with pytest.raises(ValueError, match="came from a checkpoint"):
        spec.graph()
    assert not ModelSpec(2).graph_in_weights


def test_custom_bones_follow_the_edges():
    lay = layouts.custom(4, [(1, 0), (2, 1), (3, 1)], center=0)
    np.testing.assert_array_equal(lay.parents(), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="two parents"):
        layouts.custom(3, [(1, 0), (1, 2), (2, 0)], 0).parents()
    with pytest.raises(ValueError, match="leaves the centre joint 0"):
        layouts.custom(2, [(0, 1)], 0).parents()


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"num_joints": 3, "edges": [(0, 3)], "center": 0}, "outside 0..2"),
        ({"num_joints": 3, "edges": [(0, 1)], "center": 5}, "centre joint 5"),
        ({"num_joints": 3, "edges": [(0,)], "center": 0}, "pairs of joint indices"),
        ({"num_joints": 0, "edges": [], "center": 0}, "num_joints must be positive"),
        (
            {"num_joints": 3, "edges": [], "center": 0, "score": True, "zaxis": (0, 1), "xaxis": (1, 2)},
            "this layout is 2D",
        ),
        (
            {"num_joints": 3, "edges": [], "center": 0, "zaxis": (0, 9), "xaxis": (1, 2)},
            "zaxis must be two joint indices",
        ),
    ],
)
def test_custom_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        layouts.custom(**bad)


@pytest.mark.parametrize(
    "mapping, message",
    [
        (None, "config.model.layout='custom' needs config.model.custom_layout"),
        ({"num_joints": 3, "edges": [(1, 0)]}, "config.model.custom_layout: missing ['center']"),
        ({"num_joints": 3, "edges": [(1, 0)], "center": 0, "colour": 1}, "unknown keys ['colour']"),
        (
            {"num_joints": 3, "edges": [(1, 0)], "center": 0, "channels": 4},
            "config.model.custom_layout: layout 'custom': channels must be 2",
        ),
    ],
)
def test_from_config_errors(mapping, message):
    with pytest.raises(ValueError) as e:
        layouts.from_config(mapping)
    assert message in str(e.value)


def test_from_config():
    lay = layouts.from_config(
        {"num_joints": 3, "edges": [[1, 0], [2, 1]], "center": 0, "name": "arm", "zaxis": [0, 1], "xaxis": [1, 2]}
    )
    assert lay == layouts.custom(3, ((1, 0), (2, 1)), 0, name="arm", zaxis=(0, 1), xaxis=(1, 2))
    assert lay.recipes == ("pyskl", "vanilla") and hash(lay) == hash(
        layouts.from_config(
            {"num_joints": 3, "edges": ((1, 0), (2, 1)), "center": 0, "name": "arm", "zaxis": (0, 1), "xaxis": (1, 2)}
        )
    )
