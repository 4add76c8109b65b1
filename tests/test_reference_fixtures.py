"""skeljax's transforms, pipelines and raw NTU conversions against arrays produced by PYSKL's and MMAction2 0.x's own code.

The fixtures in tests/fixtures/reference/ were written by scripts/make_reference_fixtures.py, which imports the
reference projects' pipeline classes and NTU scripts from checkouts at the commits recorded in manifest.json.
Every comparison is bit for bit: same dtype, same shape, same bytes (so even the sign of a zero must agree), with
float64 arccos computed by the C library on every CPU (see arccos_of_the_c_library; docs/testing.md).
"""

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from skeljax.data import transforms as T
from skeljax.data.ntu_raw import read_ntu_skeleton, read_ntu_skeleton_mmaction0x
from skeljax.data.pipelines import make_pipeline

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
_ARRAYS = {}


_NUMPY_ARCCOS = np.arccos


def _libm_arccos(x, *args, **kwargs):
    """np.arccos through the C library's acos for float64 (other dtypes: NumPy's own)."""
    x = np.asarray(x)
    if args or kwargs or x.dtype != np.float64:
        return _NUMPY_ARCCOS(x, *args, **kwargs)
    return np.array([math.acos(v) for v in x.reshape(-1).tolist()], np.float64).reshape(x.shape)[()]


@pytest.fixture(autouse=True)
def arccos_of_the_c_library(monkeypatch):
    """NumPy 2's float64 arccos depends on the CPU: with AVX-512 it runs NumPy's own SIMD loop, which differs from the C
    library's acos (NumPy's loop elsewhere, and on the machine that wrote the fixtures) by an ulp for some inputs.
    PreNormalize3D's rotation angle goes through it, so on such CPUs PYSKL's own code gives other bits too; pinning
    arccos to the C library's keeps every comparison bit for bit on every CPU."""
    probe = np.linspace(-1.0, 1.0, 4097)
    if not np.array_equal(_NUMPY_ARCCOS(probe), _libm_arccos(probe)):
        monkeypatch.setattr(np, "arccos", _libm_arccos)


def arrays(name):
    if name not in _ARRAYS:
        with np.load(FIXTURES / name) as f:
            _ARRAYS[name] = dict(f)
    return _ARRAYS[name]


def cases(name):
    return [pytest.param(c, id=c["key"]) for c in MANIFEST["files"][name]]


def annotation(name, prefix):
    """The input annotation dict stored under `prefix` (fresh arrays, so a transform writing into them is caught)."""
    a = arrays(name)
    ann = {"frame_dir": "S001C001P001R001A001", "label": 0, "keypoint": a[f"{prefix}/in_keypoint"].copy()}
    ann["total_frames"] = ann["keypoint"].shape[1]
    if f"{prefix}/in_keypoint_score" in a:
        ann["keypoint_score"] = a[f"{prefix}/in_keypoint_score"].copy()
    if f"{prefix}/in_img_shape" in a:
        ann["img_shape"] = tuple(int(x) for x in a[f"{prefix}/in_img_shape"])
    return ann


def assert_bits(got, want, what):
    got = np.asarray(got)
    assert (got.dtype, got.shape) == (want.dtype, want.shape), (
        f"{what}: {got.dtype}{got.shape} != {want.dtype}{want.shape}"
    )
    if got.tobytes() != want.tobytes():
        bits = f"u{want.dtype.itemsize}"
        diff = np.flatnonzero(got.reshape(-1).view(bits) != want.reshape(-1).view(bits))
        pytest.fail(
            f"{what}: {diff.size} of {got.size} elements differ, first at flat index {diff[0]}: "
            f"{got.reshape(-1)[diff[0]]!r} != {want.reshape(-1)[diff[0]]!r}"
        )


def test_manifest_records_the_references():
    refs = MANIFEST["references"]
    assert refs["pyskl"]["url"].endswith("kennymckormick/pyskl")
    assert refs["mmaction2"]["url"].endswith("open-mmlab/mmaction2")
    assert all(len(r["commit"]) == 40 for r in refs.values())
    assert set(MANIFEST["files"]) == {
        "pyskl_transforms.npz",
        "pyskl_pipelines.npz",
        "mmaction0x_transforms.npz",
        "ntu_raw.npz",
    }


# ---------------------------------------------------------------------------------------------------------------------
# PYSKL: pyskl/datasets/pipelines/pose_related.py and sampling.py
# ---------------------------------------------------------------------------------------------------------------------


def _pyskl_transform(case):
    args, name = case["args"], case["transform"]
    if name == "UniformSample":
        return T.UniformSample(
            args["clip_len"], args["num_clips"], test_mode=args["test_mode"], p_interval=args["p_interval"]
        )
    if name == "PoseDecode+FormatGCNInput":
        return lambda r: T.FormatGCNInput(num_person=2)(T.PoseDecode()(r))
    return {
        "PreNormalize3D": T.PreNormalize3D,
        "PreNormalize2D": T.PreNormalize2D,
        "GenSkeFeat": T.GenSkeFeat,
        "PadTo": T.PadTo,
    }[name](**args)


@pytest.mark.parametrize("case", cases("pyskl_transforms.npz"))
def test_pyskl_transform(case):
    name, a, key = "pyskl_transforms.npz", arrays("pyskl_transforms.npz"), case["key"]
    transform = _pyskl_transform(case)
    if case["transform"] == "UniformSample":
        n = case["total_frames"]
        # PYSKL trains from np.random after np.random.seed(seed); skeljax's RandomState(seed) is the same stream.
        rng = np.random.RandomState(case["seed"]) if case["seed"] is not None else None
        out = transform({"total_frames": n, "keypoint": np.zeros((2, n, 25, 3), np.float32)}, rng=rng)
        assert_bits(out["frame_inds"], a[f"{key}/out_frame_inds"], key)
        return
    ann = annotation(name, case["input"])
    if case["transform"] == "PoseDecode+FormatGCNInput":
        ann.update(frame_inds=a[f"{key}/in_frame_inds"], num_clips=case["args"]["num_clips"])
    before = {k: v.copy() for k, v in ann.items() if isinstance(v, np.ndarray)}
    out = transform(dict(ann))
    assert_bits(out["keypoint"], a[f"{key}/out_keypoint"], key)
    if f"{key}/out_total_frames" in a:
        assert out["total_frames"] == int(a[f"{key}/out_total_frames"])
    for k, v in before.items():  # skeljax's transforms never write into their inputs
        assert_bits(ann[k], v, f"{key} input {k}")


@pytest.mark.parametrize("case", cases("pyskl_pipelines.npz"))
def test_pyskl_pipeline(case):
    """make_pipeline against PYSKL's ST-GCN++ (UniformSample) and stgcn_vanilla (PadTo) transform lists."""
    a = arrays("pyskl_pipelines.npz")
    pipe = make_pipeline(
        case["layout"], case["feat"], case["clip_len"], case["num_clips"], case["mode"], recipe=case["recipe"]
    )
    got = pipe(annotation("pyskl_pipelines.npz", case["input"]), seed=case["seed"])
    assert_bits(got, a[f"{case['key']}/out_keypoint"], case["key"])


# ---------------------------------------------------------------------------------------------------------------------
# MMAction2 0.x: mmaction/datasets/pipelines/pose_loading.py and formatting.py
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("mmaction0x_transforms.npz"))
def test_mmaction0x(case):
    name, a, key = "mmaction0x_transforms.npz", arrays("mmaction0x_transforms.npz"), case["key"]
    if case["kind"] == "PaddingWithLoop":
        out = T.PaddingWithLoop(case["clip_len"])({"total_frames": case["total_frames"]})
        assert_bits(out["frame_inds"], a[f"{key}/out_frame_inds"], key)
        return
    ann = annotation(name, case["input"])
    if case["kind"] == "PoseDecode+FormatNCTVM":
        out = T.FormatNCTVM(num_person=2)(T.PoseDecode()(dict(ann)))
        assert_bits(out["keypoint"], a[f"{key}/out_keypoint"], key)
        if f"{key}/out_normalized" in a:
            assert_bits(T.PoseNormalize()(out)["keypoint"], a[f"{key}/out_normalized"], f"{key} PoseNormalize")
        return
    pipe = make_pipeline(case["layout"], "j", case["clip_len"], 1, "test", recipe="mmaction0x")
    want = a[f"{key}/out_keypoint"]  # (C, T, V, M); skeljax's model input is (1, M, T, V, C)
    assert_bits(pipe(ann), np.ascontiguousarray(want.transpose(3, 1, 2, 0)[None]), key)


# ---------------------------------------------------------------------------------------------------------------------
# Raw .skeleton files: PYSKL tools/data/ntu_preproc.py, MMAction2 0.x tools/data/skeleton/gen_ntu_rgbd_raw.py
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("ntu_raw.npz"))
def test_ntu_raw(case, tmp_path):
    a, key = arrays("ntu_raw.npz"), case["key"]
    path = tmp_path / Path(case["file"]).name.removesuffix(".gz")
    path.write_bytes(gzip.decompress((FIXTURES / case["file"]).read_bytes()))
    ann = read_ntu_skeleton(path)
    assert_bits(ann["keypoint"], a[f"{key}/pyskl_keypoint"], f"{key} (PYSKL)")
    assert (ann["label"], ann["total_frames"]) == (case["label"], case["total_frames"])
    ann = read_ntu_skeleton_mmaction0x(path)
    assert_bits(ann["keypoint"], a[f"{key}/mmaction0x_keypoint"], f"{key} (MMAction2 0.x)")
    assert ann["label"] == case["mmaction0x_label"]
