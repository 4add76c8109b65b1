"""skeljax.data transforms and make_pipeline: a loop-based NumPy reference, hand-derived cases, pipeline contracts."""

import itertools
import pickle

import numpy as np
import pytest

from skeljax.data import transforms as T
from skeljax.data.pipelines import make_pipeline, make_rng

try:  # tests/ may or may not be a package
    from . import numpy_reference_transforms as ref
except ImportError:
    import numpy_reference_transforms as ref

NTU = "S001C001P001R001A001"


def ntu_sample(rs, M=2, n=40, empty0=(), empty1=()):
    """Random float16 NTU-like sample (metres, ~3 m from the camera) with some empty frames and a missing joint."""
    kp = (rs.randn(M, n, 25, 3) * 0.4 + [0.1, 0.2, 3.0]).astype(np.float16)
    kp[0, list(empty0)] = 0
    if M == 2:
        kp[1, list(empty1)] = 0
    kp[M - 1, :, 7] = 0  # an untracked joint must stay zero through centring
    return {"frame_dir": NTU, "label": 3, "total_frames": n, "keypoint": kp}


def coco_sample(rs, M=2, n=30):
    kp = (rs.rand(M, n, 17, 2) * [1920, 1080]).astype(np.float32)
    score = rs.rand(M, n, 17).astype(np.float32)
    score[score < 0.15] = 0.005  # below the 0.01 threshold
    return {
        "frame_dir": "S001C001P001R001A050",
        "label": 49,
        "total_frames": n,
        "keypoint": kp,
        "keypoint_score": score,
        "img_shape": (1080, 1920),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Each transform against the loop-based reference
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["one_person", "main_has_gaps", "swap", "second_absent"])
def test_prenormalize3d_matches_reference(case):
    rs = np.random.RandomState(1)
    n = 24
    ann = {
        "one_person": lambda: ntu_sample(rs, M=1, n=n, empty0=[3, 4]),
        "main_has_gaps": lambda: ntu_sample(rs, n=n, empty0=[0, 5, 23], empty1=[1, 2, 3, 4, 5, 6]),
        "swap": lambda: ntu_sample(rs, n=n, empty0=range(15), empty1=[20]),  # person 1 has more valid frames
        "second_absent": lambda: ntu_sample(rs, n=n, empty1=range(n)),
    }[case]()
    orig = ann["keypoint"].copy()
    out = T.PreNormalize3D()(dict(ann))
    want, want_t = ref.prenormalize3d(ann["keypoint"])
    assert out["keypoint"].dtype == np.float64 and out["total_frames"] == want_t == want.shape[1]
    np.testing.assert_allclose(out["keypoint"], want, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ann["keypoint"], orig)  # input untouched
    if case == "swap":
        assert want_t == n - 1  # frame 20 (person 1 empty) is dropped, old person 1 is now person 0
    if case == "main_has_gaps":
        assert want_t == n - 3


def test_prenormalize3d_all_zero_sample_unchanged():
    ann = {"frame_dir": NTU, "label": 0, "total_frames": 5, "keypoint": np.zeros((2, 5, 25, 3), np.float16)}
    out = T.PreNormalize3D()(dict(ann))
    assert out["keypoint"] is ann["keypoint"] and out["total_frames"] == 5 and "body_center" not in out


def test_prenormalize3d_dtype_flow_float16_centring():
    """Centring happens in float16: the result equals float16 subtraction, not float32 subtraction, before rotating."""
    rs = np.random.RandomState(2)
    ann = ntu_sample(rs, M=1, n=6)
    out = T.PreNormalize3D(align_spine=False)(dict(ann))
    kp = ann["keypoint"]
    assert out["keypoint"].dtype == np.float16
    want = np.where((kp != 0).any(-1, keepdims=True), kp - kp[0, 0, 1], np.float16(0))
    np.testing.assert_array_equal(out["keypoint"], want)
    assert np.array_equal(out["body_center"], kp[0, 0, 1])
    # wide magnitudes (subnormals to ~1e4): the float32 evaluation must equal NumPy's float16 arithmetic bit for bit
    x = (rs.randn(2, 50, 25, 3) * np.exp(rs.uniform(-18, 9, size=(2, 50, 25, 1)))).astype(np.float16)
    x[0, 3, 4] = 0
    center = x[0, 0, 1].copy()
    want = (x - center) * (x != 0).any(-1, keepdims=True)
    got = T._center_in_dtype(x, center)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))


def test_prenormalize3d_axes():
    rs = np.random.RandomState(3)
    ann = ntu_sample(rs, n=10)
    spine_only = T.PreNormalize3D(xaxis=(0, 0))(dict(ann))["keypoint"]  # zero shoulder vector: second rotation = I
    u = spine_only[0, 0, 1] - spine_only[0, 0, 0]
    assert u[2] > 0 and np.hypot(u[0], u[1]) < 1e-3 * np.linalg.norm(u)  # float16 unit-vector rounding: ~1e-4
    kp = T.PreNormalize3D()(dict(ann))["keypoint"]
    s = kp[0, 0, 8] - kp[0, 0, 4]
    assert s[0] > 0 and abs(s[1]) < 1e-12 and abs(s[2]) < 1e-12  # second rotation is float64 exact
    np.testing.assert_allclose(kp[0, 0, 1], 0, atol=1e-12)  # centred on spine-mid of frame 0
    np.testing.assert_array_equal(kp[1, :, 7], 0)  # untracked joint stays zero


def test_prenormalize2d_matches_reference_and_hand_cases():
    rs = np.random.RandomState(4)
    ann = coco_sample(rs, M=2, n=12)
    ann["keypoint"][0, 0, 0] = [960, 540]
    ann["keypoint_score"][0, 0, :3] = [0.9, np.float32(0.01), 0.0101]
    out = T.PreNormalize2D()(dict(ann))
    kp = out["keypoint"]
    assert kp.shape == (2, 12, 17, 3) and kp.dtype == np.float32 and "keypoint_score" not in out
    np.testing.assert_allclose(kp, ref.prenormalize2d(ann["keypoint"], ann["keypoint_score"]), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(kp[0, 0, 0], [0, 0, np.float32(0.9)])  # image centre -> origin
    np.testing.assert_array_equal(kp[0, 0, 1, :2], 0)  # score == 0.01 is masked (<=), the score itself kept
    assert kp[0, 0, 1, 2] == np.float32(0.01) and np.all(kp[0, 0, 2, :2] != 0)
    low = ann["keypoint_score"] <= 0.01
    assert low.sum() > 10 and np.all(kp[low][:, :2] == 0)
    # custom image size: x' = (x - w/2) / (w/2)
    small = T.PreNormalize2D()(dict(ann, img_shape=(100, 200)))["keypoint"]
    assert small[0, 0, 0, 0] == pytest.approx((960 - 100) / 100)


@pytest.mark.parametrize("layout,feat", list(itertools.product(["nturgb+d", "coco"], ["j", "b", "jm", "bm"])))
def test_features_match_reference(layout, feat):
    rs = np.random.RandomState(5)
    if layout == "nturgb+d":
        kp = T.PreNormalize3D()(ntu_sample(rs, n=9))["keypoint"]  # float64, like the real flow
    else:
        kp = T.PreNormalize2D()(coco_sample(rs, n=9))["keypoint"]  # float32 with the score channel
    out = T.GenSkeFeat(layout, [feat])({"keypoint": kp, "frame_dir": NTU})["keypoint"]
    want = ref.features(kp, layout, feat)
    dtypes = {"j": kp.dtype, "jm": kp.dtype, "b": np.float32, "bm": np.float32}
    assert out.dtype == dtypes[feat] and out.shape == kp.shape
    np.testing.assert_array_equal(out, want)


def test_feature_hand_cases():
    rs = np.random.RandomState(6)
    kp = rs.randn(2, 6, 25, 3)
    b = T.joint_to_bone(kp, "nturgb+d")
    np.testing.assert_array_equal(b[..., 20, :], 0)  # spine-shoulder is the NTU root
    np.testing.assert_allclose(b[..., 21, :], kp[..., 21, :] - kp[..., 22, :], rtol=1e-6)  # hand tip -> thumb
    m = T.to_motion(kp, "nturgb+d")
    np.testing.assert_array_equal(m[:, -1], 0)
    np.testing.assert_array_equal(m[:, 2], kp[:, 3] - kp[:, 2])
    c = rs.rand(1, 5, 17, 3).astype(np.float32)
    cb = T.joint_to_bone(c, "coco")
    np.testing.assert_array_equal(cb[..., 0, :2], 0)  # COCO root (nose): zero offset ...
    np.testing.assert_array_equal(cb[..., 0, 2], c[..., 0, 2])  # ... but its score channel is the (same) score
    np.testing.assert_array_equal(cb[..., 13, 2], (c[..., 13, 2] + c[..., 11, 2]) / 2)  # knee-hip averaged score
    cm = T.to_motion(c, "coco")
    np.testing.assert_array_equal(cm[:, :-1, :, 2], (c[:, :-1, :, 2] + c[:, 1:, :, 2]) / 2)
    np.testing.assert_array_equal(cm[:, :-1, :, :2], c[:, 1:, :, :2] - c[:, :-1, :, :2])
    np.testing.assert_array_equal(cm[:, -1], 0)
    # single-frame sequences: motion is all zero, not an error
    np.testing.assert_array_equal(T.to_motion(kp[:, :1], "nturgb+d"), 0)


# ---------------------------------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------------------------------


def test_randomstate_255_is_the_global_seed_stream():
    saved = np.random.get_state()
    try:
        np.random.seed(255)
        glob = [
            np.random.rand(),
            np.random.randint(1),
            *np.random.choice(101, 40, replace=False),
            *np.random.randint(np.array([2, 3, 4])),
        ]
        r = np.random.RandomState(255)
        mine = [r.rand(), r.randint(1), *r.choice(101, 40, replace=False), *r.randint(np.array([2, 3, 4]))]
        assert glob == mine
    finally:
        np.random.set_state(saved)


def test_uniform_sample_test_mode_by_hand():
    s = T.UniformSample(clip_len=5, num_clips=1, test_mode=True)
    # n < L: start 0, indices wrap modulo n.
    np.testing.assert_array_equal(s.frame_indices(3), [0, 1, 2, 0, 1])
    # L <= n < 2L: after the unused rand(), choice(6, 2, replace=False) = permutation(6)[:2]; each chosen slot adds 1.
    r = np.random.RandomState(255)
    r.rand()
    chosen = r.permutation(6)[:2]
    assert sorted(chosen) == [2, 4]
    # offsets: j=0,1 -> 0; j=2,3 -> 1 (slot 2); j=4 -> 2 (slot 4)
    np.testing.assert_array_equal(s.frame_indices(7), [0, 1, 3, 4, 6])
    # n >= 2L: segment bounds i*12//5 = [0, 2, 4, 7, 9, 12]; offsets randint(2), randint(2), randint(3), ...
    r = np.random.RandomState(255)
    r.rand()
    offsets = [r.randint(k) for k in (2, 2, 3, 2, 3)]
    assert offsets == [1, 1, 2, 1, 0]
    np.testing.assert_array_equal(s.frame_indices(12), [1, 3, 6, 8, 9])
    # deterministic per video: calling again (even after other draws) gives the same result
    np.testing.assert_array_equal(s.frame_indices(12), [1, 3, 6, 8, 9])


def test_uniform_sample_num_clips_start_offsets():
    # n < L with n >= num_clips: clip i starts at i*n//nc; with n < num_clips it starts at i.
    idx = T.UniformSample(clip_len=20, num_clips=10, test_mode=True).frame_indices(12).reshape(10, 20)
    np.testing.assert_array_equal(idx[:, 0], [0, 1, 2, 3, 4, 6, 7, 8, 9, 10])
    np.testing.assert_array_equal(idx, (idx[:, :1] + np.arange(20)) % 12)
    idx = T.UniformSample(clip_len=5, num_clips=10, test_mode=True).frame_indices(3).reshape(10, 5)
    np.testing.assert_array_equal(idx, (np.arange(10)[:, None] + np.arange(5)) % 3)


def test_uniform_sample_train_mode_by_hand():
    s = T.UniformSample(clip_len=5, num_clips=1, test_mode=False)
    r = np.random.RandomState(7)
    r.rand()
    start = r.randint(0, 3)
    np.testing.assert_array_equal(s.frame_indices(3, np.random.RandomState(7)), (start + np.arange(5)) % 3)
    r = np.random.RandomState(8)
    r.rand()
    chosen = set(r.permutation(6)[:2].tolist())
    want = [j + sum(c <= j for c in chosen) for j in range(5)]
    np.testing.assert_array_equal(s.frame_indices(7, np.random.RandomState(8)), want)


@pytest.mark.parametrize("n", [1, 4, 5, 9, 10, 11, 37, 100, 150, 199, 200, 201, 450])
@pytest.mark.parametrize("num_clips", [1, 3, 10])
def test_uniform_sample_matches_reference(n, num_clips):
    L = 100 if n >= 37 else 5
    got = T.UniformSample(L, num_clips, test_mode=True).frame_indices(n)
    np.testing.assert_array_equal(got, ref.uniform_sample(n, L, num_clips, True))
    got = T.UniformSample(L, num_clips, test_mode=False).frame_indices(n, np.random.RandomState(n))
    np.testing.assert_array_equal(got, ref.uniform_sample(n, L, num_clips, False, np.random.RandomState(n)))
    assert got.min() >= 0 and got.max() < n
    if n >= L:  # every clip is non-decreasing and covers the video
        for clip in got.reshape(num_clips, L):
            assert np.all(np.diff(clip) >= 0)


def test_train_sampling_never_touches_global_state():
    saved = np.random.get_state()
    try:
        np.random.seed(0)
        before = np.random.get_state()[1].copy()
        pipe = make_pipeline("nturgb+d", "j", mode="train")
        pipe(ntu_sample(np.random.RandomState(0), n=150), seed=3)
        make_pipeline("nturgb+d", "j", mode="test")(ntu_sample(np.random.RandomState(0), n=150))
        np.testing.assert_array_equal(np.random.get_state()[1], before)
    finally:
        np.random.set_state(saved)


def test_padding_index_patterns():
    kp = np.arange(2 * 4 * 1 * 1, dtype=np.float64).reshape(2, 4, 1, 1) + 1
    out = T.PadTo(length=10)({"keypoint": kp, "total_frames": 4})
    np.testing.assert_array_equal(out["keypoint"][0, :, 0, 0], [1, 2, 3, 4, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(out["keypoint"], ref.pad_to_zero(kp, 10))
    assert out["total_frames"] == 10 and kp[0, 0, 0, 0] == 1
    loop = T.PadTo(length=10, mode="loop")({"keypoint": kp, "total_frames": 4})["keypoint"]
    np.testing.assert_array_equal(loop[0, :, 0, 0], [1, 2, 3, 4, 1, 2, 3, 4, 1, 2])
    with pytest.raises(ValueError, match="S9.*11 frames"):
        T.PadTo(length=10)({"keypoint": np.zeros((1, 11, 1, 1)), "total_frames": 11, "frame_dir": "S9"})
    np.testing.assert_array_equal(T.PaddingWithLoop(7)({"total_frames": 3})["frame_inds"], [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(T.PaddingWithLoop(4)({"total_frames": 9})["frame_inds"], [0, 1, 2, 3])


def test_format_and_pose_normalize():
    rs = np.random.RandomState(9)
    kp = rs.rand(1, 6, 17, 2).astype(np.float32)
    out = T.FormatGCNInput(2)({"keypoint": kp, "num_clips": 3})["keypoint"]
    assert out.shape == (3, 2, 2, 17, 2) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, ref.format_gcn(kp, 3))
    three = rs.rand(3, 4, 17, 3).astype(np.float32)
    np.testing.assert_array_equal(T.FormatGCNInput(2)({"keypoint": three})["keypoint"][0], three[:2])
    # MMAction2 0.x: zero-padded second person and an undetected joint become -0.5 everywhere after PoseNormalize
    score = rs.rand(1, 6, 17).astype(np.float32)
    kp[0, 0, 3], score[0, 0, 3] = 0, 0
    res = T.FormatNCTVM(2)({"keypoint": kp, "keypoint_score": score})
    assert res["keypoint"].shape == (3, 6, 17, 2)
    res = T.NCTVMToModel()(T.PoseNormalize()(res))
    np.testing.assert_array_equal(res["keypoint"][0, 1], -0.5)
    np.testing.assert_array_equal(res["keypoint"][0, 0, 0, 3], -0.5)


# ---------------------------------------------------------------------------------------------------------------------
# make_pipeline
# ---------------------------------------------------------------------------------------------------------------------

RECIPE_FEATS = (
    [("pyskl", f) for f in ("j", "b", "jm", "bm")]
    + [("vanilla", f) for f in ("j", "b", "jm", "bm")]
    + [("mmaction0x", "j")]
)


@pytest.mark.parametrize("layout", ["nturgb+d", "coco"])
@pytest.mark.parametrize("recipe,feat", RECIPE_FEATS)
@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_make_pipeline_shapes_and_determinism(layout, recipe, feat, mode):
    rs = np.random.RandomState(10)
    ann = ntu_sample(rs, n=130, empty0=[0, 1]) if layout == "nturgb+d" else coco_sample(rs, n=130)
    if recipe == "mmaction0x" and layout == "nturgb+d":
        ann["keypoint"] = ann["keypoint"].astype(np.float32)  # MMAction2's own 3D data are float32
    nc = 3 if (recipe == "pyskl" and mode == "test") else 1
    pipe = make_pipeline(layout, feat, 20 if recipe == "pyskl" else None, nc, mode, recipe=recipe)
    V = 25 if layout == "nturgb+d" else 17
    L = 20 if recipe == "pyskl" else 300
    out = pipe(ann, seed=1)
    assert out.shape == (nc, 2, L, V, 3) == pipe.out_shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(pipe(ann, seed=1), out)  # same seed -> same sample
    random_mode = recipe == "pyskl" and mode == "train"
    assert np.array_equal(pipe(ann, seed=2), out) != random_mode  # other seeds differ only when training
    if mode != "train":
        np.testing.assert_array_equal(pipe(ann), out)  # deterministic without a seed
    assert next(type(t).__name__ for t in pipe.transforms) == "CheckLayout"
    restored = pickle.loads(pickle.dumps(pipe))  # grain workers receive pickled pipelines
    np.testing.assert_array_equal(restored(ann, seed=1), out)


@pytest.mark.parametrize("layout,feat", [("nturgb+d", "j"), ("nturgb+d", "bm"), ("coco", "b"), ("coco", "jm")])
def test_make_pipeline_matches_reference_end_to_end(layout, feat):
    rs = np.random.RandomState(11)
    n = 23
    if layout == "nturgb+d":
        ann = ntu_sample(rs, n=n, empty0=range(12), empty1=[22])  # swap and drop a frame
        kp, n2 = ref.prenormalize3d(ann["keypoint"])
    else:
        ann = coco_sample(rs, M=1, n=n)
        kp, n2 = ref.prenormalize2d(ann["keypoint"], ann["keypoint_score"]), n
    kp = ref.features(kp, layout, feat)
    snapshot = {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in ann.items()}
    for mode, nc, L in (("test", 4, 10), ("train", 1, 30), ("test", 1, 8)):
        got = make_pipeline(layout, feat, L, nc, mode)(ann, seed=5)
        inds = ref.uniform_sample(n2, L, nc, mode == "test", np.random.RandomState(5))
        np.testing.assert_allclose(got, ref.format_gcn(ref.gather(kp, inds), nc), rtol=1e-6, atol=1e-6)
    got = make_pipeline(layout, feat, recipe="vanilla")(ann)
    np.testing.assert_allclose(got, ref.format_gcn(ref.pad_to_zero(ref.gather(kp, range(n2)), 300), 1), atol=1e-6)
    for k, v in snapshot.items():  # the caller's annotation is left as it was
        np.testing.assert_array_equal(ann[k], v)


def test_mmaction0x_matches_reference():
    rs = np.random.RandomState(12)
    ann = coco_sample(rs, M=1, n=7)
    want = ref.mmaction0x(ann["keypoint"], ann["keypoint_score"], normalize=True)
    np.testing.assert_allclose(make_pipeline("coco", "j", recipe="mmaction0x")(ann), want, rtol=1e-6, atol=1e-7)
    kp3 = rs.randn(2, 310, 25, 3).astype(np.float32)
    ann = {"frame_dir": NTU, "label": 0, "total_frames": 310, "keypoint": kp3}
    np.testing.assert_array_equal(make_pipeline("nturgb+d", "j", recipe="mmaction0x")(ann), ref.mmaction0x(kp3, None))


def test_make_pipeline_errors():
    with pytest.raises(ValueError, match="unknown layout 'kinetics'"):
        make_pipeline("kinetics", "j")
    with pytest.raises(ValueError, match="unknown feat 'k'"):
        make_pipeline("coco", "k")
    with pytest.raises(ValueError, match="unknown mode 'eval'"):
        make_pipeline("coco", "j", mode="eval")
    with pytest.raises(ValueError, match="unknown recipe"):
        make_pipeline("coco", "j", recipe="mmaction1x")
    with pytest.raises(ValueError, match="joint input only"):
        make_pipeline("coco", "b", recipe="mmaction0x")
    with pytest.raises(ValueError, match="one clip"):
        make_pipeline("coco", "j", num_clips=10, recipe="vanilla")
    with pytest.raises(ValueError, match="clip_len must be a positive integer"):
        make_pipeline("coco", "j", clip_len=0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        make_rng(-1)
    rs = np.random.RandomState(13)
    coco = coco_sample(rs, n=5)
    with pytest.raises(
        ValueError,
        match=r"expected 25 joints x 3 channels for layout 'nturgb\+d', got 17 x 2 in "
        r"sample S001C001P001R001A050",
    ):
        make_pipeline("nturgb+d", "j")(coco)
    with pytest.raises(ValueError, match="expected 17 joints x 2 channels.*got 25 x 3 in sample " + NTU):
        make_pipeline("coco", "j")(ntu_sample(rs, n=5))
    with pytest.raises(ValueError, match="needs 'keypoint_score'.*A050"):
        make_pipeline("coco", "j")({k: v for k, v in coco.items() if k != "keypoint_score"})
    with pytest.raises(ValueError, match="total_frames=6 but keypoint has 5 frames"):
        make_pipeline("coco", "j")(dict(coco, total_frames=6))
    bad = ntu_sample(rs, n=5)
    bad["keypoint"][0, 2, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in sample " + NTU):
        make_pipeline("nturgb+d", "j")(bad)
    with pytest.raises(ValueError, match="1 or 2 persons"):
        make_pipeline("nturgb+d", "j")(ntu_sample(rs, M=1, n=5) | {"keypoint": np.ones((3, 5, 25, 3), np.float16)})
    with pytest.raises(ValueError, match="padded length 300"):
        make_pipeline("nturgb+d", "j", recipe="vanilla")(ntu_sample(rs, M=1, n=301))


def test_wide_seeds_are_accepted_and_distinct():
    a, b = make_rng(2**40).randint(2**31, size=4), make_rng(2**40 + 1).randint(2**31, size=4)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(make_rng(2**40).randint(2**31, size=4), a)
    np.testing.assert_array_equal(make_rng(7).rand(3), np.random.RandomState(7).rand(3))
