"""PYSKL / MMAction2-0.x skeleton transforms in NumPy, reproducing their arithmetic and dtype flow exactly.

Every transform is a small top-level class (picklable for grain workers) whose `__call__(results) -> results` reads and
writes a PYSKL annotation dict: `frame_dir`, `label`, `total_frames`, `keypoint` (M, T, V, C), optional
`keypoint_score` (M, T, V) and `img_shape`. Transforms never write into the arrays they are given.
Transforms that draw random numbers set `uses_rng = True` and take `rng=` (a legacy `np.random.RandomState`); they never
touch NumPy's global random state. References: `pyskl/datasets/pipelines/pose_related.py` and `sampling.py`;
`mmaction/datasets/pipelines/pose_loading.py` (MMAction2 0.x). Joint layouts come from `skeljax.layouts`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skeljax import layouts

Results = dict[str, Any]

FEATS = ("j", "b", "jm", "bm")


def sample_name(results: Results) -> str:
    """The sample's name for error messages."""
    return str(results.get("frame_dir", "<sample without frame_dir>"))


def _kp_shape(results: Results, who: str) -> tuple[int, int, int, int]:
    kp = results.get("keypoint")
    if not isinstance(kp, np.ndarray) or kp.ndim != 4:
        got = None if kp is None else getattr(kp, "shape", type(kp).__name__)
        raise ValueError(f"{who}: 'keypoint' must be an array (M, T, V, C), got {got} in sample {sample_name(results)}")
    return kp.shape


class CheckLayout:
    """Reject annotations that do not match the layout (joints, channels, score, frame count) or hold NaN/inf."""

    def __init__(self, layout: layouts.LayoutArg):
        self.layout = layouts.get(layout)

    def __call__(self, results: Results) -> Results:
        M, T, V, C = _kp_shape(results, "CheckLayout")
        name, lay = sample_name(results), self.layout
        if (V, C) != (lay.num_joints, lay.keypoint_channels):
            raise ValueError(
                f"expected {lay.num_joints} joints x {lay.keypoint_channels} channels for layout "
                f"{lay.name!r}, got {V} x {C} in sample {name}"
            )
        if M < 1 or T < 1:
            raise ValueError(f"keypoint shape {(M, T, V, C)} has no person or no frame in sample {name}")
        if results.get("total_frames", T) != T:
            raise ValueError(f"total_frames={results['total_frames']} but keypoint has {T} frames in sample {name}")
        score = results.get("keypoint_score")
        if lay.score and score is None:
            raise ValueError(f"layout {lay.name!r} needs 'keypoint_score' (M, T, V); missing in sample {name}")
        if score is not None and getattr(score, "shape", None) != (M, T, V):
            raise ValueError(
                f"keypoint_score shape {getattr(score, 'shape', None)} does not match keypoint "
                f"{(M, T, V, C)} in sample {name}"
            )
        if not np.isfinite(results["keypoint"]).all() or (score is not None and not np.isfinite(score).all()):
            raise ValueError(f"keypoint or keypoint_score holds NaN or inf in sample {name}")
        return results


# ---------------------------------------------------------------------------------------------------------------------
# PYSKL normalisation
# ---------------------------------------------------------------------------------------------------------------------


def _angle_to(v: np.ndarray, ref: np.ndarray) -> float:
    """Angle between v and a unit reference axis, computed in v's dtype as PYSKL does (float16 on raw pickles)."""
    if np.abs(v).sum() < 1e-6 or np.abs(ref).sum() < 1e-6:
        return 0
    unit = v / np.linalg.norm(v)  # stays float16 for float16 input: this rounding is part of the reference result
    return np.arccos(np.clip(np.dot(unit, ref), -1.0, 1.0))


def axis_angle_matrix(axis: np.ndarray, theta: float) -> np.ndarray:
    """Rotation by theta about axis (quaternion form of PYSKL / 2s-AGCN), applied as x' = R x."""
    if np.abs(axis).sum() < 1e-6 or np.abs(theta) < 1e-6:
        return np.eye(3)
    axis = axis / np.sqrt(np.dot(axis, axis))
    a = np.cos(theta / 2.0)
    b, c, d = -axis * np.sin(theta / 2.0)
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c + a * d), 2 * (b * d - a * c)],
            [2 * (b * c - a * d), a * a + c * c - b * b - d * d, 2 * (c * d + a * b)],
            [2 * (b * d + a * c), 2 * (c * d - a * b), a * a + d * d - b * b - c * c],
        ]
    )


def _align(skel: np.ndarray, j_from: int, j_to: int, ref: np.ndarray) -> np.ndarray:
    """Rotate all points so that (joint j_to - joint j_from) of person 0, frame 0 points along ref."""
    u = skel[0, 0, j_to] - skel[0, 0, j_from]
    rot = axis_angle_matrix(np.cross(u, ref.astype(np.int64)), _angle_to(u, ref))
    # PYSKL's einsum promotes float16 x float64 to float64; casting first gives bit-identical results ~5x faster.
    return np.einsum("abcd,kd->abck", skel.astype(np.float64, copy=False), rot)


def _center_in_dtype(skel: np.ndarray, center: np.ndarray) -> np.ndarray:
    """(skel - center) * mask(non-zero joints), rounded to skel's dtype as PYSKL's float16 arithmetic does."""
    if skel.dtype != np.float16:
        return (skel - center) * (skel != 0).any(axis=-1, keepdims=True)
    # float16 ops evaluated in float32 and rounded once more give the correctly rounded float16 result (24 >= 2*11+2
    # bits, so double rounding is harmless), i.e. exactly NumPy's float16 result, and twice as fast.
    x = skel.astype(np.float32)
    return ((x - center.astype(np.float32)) * (x != 0).any(axis=-1, keepdims=True)).astype(np.float16)


class PreNormalize3D:
    """Drop empty frames, centre on the main body's spine-mid (frame 0) and rotate spine to +z, shoulders to +x.

    `center_joint` None is PYSKL's rule (joint 1 for 25 joints, else the last); custom layouts pass their centre.
    """

    def __init__(
        self,
        zaxis=(0, 1),
        xaxis=(8, 4),
        align_spine: bool = True,
        align_center: bool = True,
        center_joint: int | None = None,
    ):
        self.zaxis, self.xaxis = tuple(zaxis), tuple(xaxis)
        self.align_spine, self.align_center, self.center_joint = align_spine, align_center, center_joint

    def __call__(self, results: Results) -> Results:
        M, T, V, C = _kp_shape(results, "PreNormalize3D")
        skel = results["keypoint"]
        if results.get("total_frames", T) != T:
            raise ValueError(
                f"PreNormalize3D: total_frames={results['total_frames']} but keypoint has {T} frames "
                f"in sample {sample_name(results)}"
            )
        if M not in (1, 2) or C != 3:
            raise ValueError(
                f"PreNormalize3D: expected 1 or 2 persons with 3 coordinates, got keypoint shape "
                f"{skel.shape} in sample {sample_name(results)}"
            )
        if skel.sum() == 0:  # PYSKL leaves an all-zero sample untouched (no body_center either)
            return results

        # A frame is valid for a person unless all its coordinates are ~0 (np.isclose(x, 0) is |x| <= 1e-8 in float64).
        valid = ~(np.abs(skel.astype(np.float64)) <= 1e-8).all(axis=(2, 3))
        if M == 2 and valid[1].sum() > valid[0].sum():
            skel = skel[:, valid[1]][::-1].copy()  # the person seen in more frames becomes the main person
        else:
            skel = skel[:, valid[0]]
        if skel.shape[1] == 0:  # only possible when every non-zero coordinate is below isclose's 1e-8
            raise ValueError(f"PreNormalize3D: no frame with a non-zero main person in sample {sample_name(results)}")

        center = None
        if self.align_center:
            joint = self.center_joint if self.center_joint is not None else (1 if V == 25 else -1)
            center = skel[0, 0, joint].copy()
            skel = _center_in_dtype(skel, center)
        if self.align_spine:
            skel = _align(skel, self.zaxis[0], self.zaxis[1], np.array([0.0, 0.0, 1.0]))
            skel = _align(skel, self.xaxis[1], self.xaxis[0], np.array([1.0, 0.0, 0.0]))

        results["keypoint"] = skel
        results["total_frames"] = skel.shape[1]
        results["body_center"] = center
        return results


class PreNormalize2D:
    """Append the score channel, map pixels to [-1, 1] by image size, zero x,y of joints with score <= threshold."""

    def __init__(self, img_shape=(1080, 1920), threshold: float = 0.01):
        self.img_shape, self.threshold = tuple(img_shape), threshold

    def __call__(self, results: Results) -> Results:
        _kp_shape(results, "PreNormalize2D")
        kp = results["keypoint"].astype(np.float32)
        if "keypoint_score" in results:
            score = results.pop("keypoint_score").astype(np.float32)
            if score.shape != kp.shape[:3]:
                raise ValueError(
                    f"PreNormalize2D: keypoint_score shape {score.shape} does not match keypoint "
                    f"{kp.shape} in sample {sample_name(results)}"
                )
            kp = np.concatenate([kp, score[..., None]], axis=-1)
        h, w = results.get("img_shape", self.img_shape)
        kp[..., 0] = (kp[..., 0] - w / 2) / (w / 2)
        kp[..., 1] = (kp[..., 1] - h / 2) / (h / 2)
        if kp.shape[-1] == 3:
            kp[kp[..., 2] <= self.threshold, :2] = 0
        results["keypoint"] = kp
        return results


# ---------------------------------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------------------------------


def joint_to_bone(kp: np.ndarray, dataset: layouts.LayoutArg) -> np.ndarray:
    """Bones as float32: joint minus its partner (float64 arithmetic for float64 joints); scores averaged for 2D.

    Partners are the layout's bone pairs (PYSKL's JointToBone tables for built-ins; custom layouts: the parent along
    the inward edges, the centre itself). Channel 2 is averaged, not differenced, when it is a detection score.
    """
    dataset = layouts.get(dataset)
    parents = dataset.parents()
    if kp.shape[-2] != len(parents):
        raise ValueError(f"joint_to_bone: {kp.shape[-2]} joints, layout {dataset.name!r} has {len(parents)}")
    bone = (kp - kp[..., parents, :]).astype(np.float32)
    if kp.shape[-1] == 3 and dataset.score:
        bone[..., 2] = (kp[..., 2] + kp[..., parents, 2]) / 2
    return bone


def to_motion(data: np.ndarray, dataset: layouts.LayoutArg) -> np.ndarray:
    """Forward frame difference in data's dtype, last frame zero; scores averaged over the two frames for 2D."""
    motion = np.zeros_like(data)
    motion[:, :-1] = data[:, 1:] - data[:, :-1]
    if data.shape[-1] == 3 and layouts.get(dataset).score:
        motion[:, :-1, :, 2] = (data[:, :-1, :, 2] + data[:, 1:, :, 2]) / 2
    return motion


class GenSkeFeat:
    """Compute the requested features (j, b, jm, bm) on the full sequence and concatenate them on the last axis."""

    def __init__(self, dataset: layouts.LayoutArg = "nturgb+d", feats=("j",)):
        try:
            dataset = layouts.get(dataset)
        except ValueError as e:
            raise ValueError(f"GenSkeFeat: {e}") from e
        bad = [f for f in feats if f not in FEATS]
        if bad or not feats:
            raise ValueError(f"GenSkeFeat: unknown feats {list(feats)!r}; expected a non-empty list from {FEATS}")
        self.dataset, self.feats = dataset, tuple(feats)

    def __call__(self, results: Results) -> Results:
        _kp_shape(results, "GenSkeFeat")
        kp = results.pop("keypoint")
        if "keypoint_score" in results:
            if kp.shape[-1] != 2 or not self.dataset.score:
                raise ValueError(
                    f"GenSkeFeat: keypoint_score given with {kp.shape[-1]}-D keypoints for dataset "
                    f"{self.dataset.name!r} in sample {sample_name(results)}"
                )
            kp = np.concatenate([kp, results.pop("keypoint_score")[..., None]], axis=-1)
        if kp.shape[-1] not in (2, 3):
            raise ValueError(f"GenSkeFeat: expected 2 or 3 channels, got {kp.shape} in sample {sample_name(results)}")
        feats = {"j": kp}
        if "b" in self.feats or "bm" in self.feats:
            feats["b"] = joint_to_bone(kp, self.dataset)
        if "jm" in self.feats:
            feats["jm"] = to_motion(kp, self.dataset)
        if "bm" in self.feats:
            feats["bm"] = to_motion(feats["b"], self.dataset)
        results["keypoint"] = np.concatenate([feats[f] for f in self.feats], axis=-1)
        return results


# ---------------------------------------------------------------------------------------------------------------------
# Temporal sampling
# ---------------------------------------------------------------------------------------------------------------------


class UniformSample:
    """PYSKL UniformSample(Frames): one frame per equal segment; test mode reseeds with `seed` for every video.

    Draws follow PYSKL's legacy global-RandomState call sequence exactly (unused p_interval `rand()`, `randint(1)`,
    `choice(L+1, n-L, replace=False)`, vectorised `randint(sizes)`), but on a private `RandomState`: in test mode
    `RandomState(seed)` (the same stream as `np.random.seed(seed)`), in train mode the `rng` passed in.
    """

    uses_rng = True

    def __init__(self, clip_len: int = 100, num_clips: int = 1, test_mode: bool = False, p_interval=1, seed: int = 255):
        if clip_len < 1 or num_clips < 1:
            raise ValueError(f"UniformSample: clip_len and num_clips must be >= 1, got {clip_len}, {num_clips}")
        self.clip_len, self.num_clips, self.test_mode, self.seed = clip_len, num_clips, test_mode, seed
        self.p_interval = tuple(p_interval) if isinstance(p_interval, (tuple, list)) else (p_interval, p_interval)

    def _clip(self, n: int, clip: int, rng: np.random.RandomState) -> np.ndarray:
        L, (lo, hi) = self.clip_len, self.p_interval
        used = int((rng.rand() * (hi - lo) + lo) * n)
        off = rng.randint(n - used + 1)
        if used < L:
            if self.test_mode:
                start = clip if used < self.num_clips else clip * used // self.num_clips
            else:
                start = rng.randint(0, used)
            inds = np.arange(start, start + L)
        elif used < 2 * L:
            # Insert one repeated step at each of (used - L) random positions among L + 1 slots.
            step = np.zeros(L + 1, dtype=np.int64)
            step[rng.choice(L + 1, used - L, replace=False)] = 1
            inds = np.arange(L) + np.cumsum(step)[:-1]
        else:
            bounds = np.arange(L + 1, dtype=np.int64) * used // L
            inds = bounds[:-1] + rng.randint(np.diff(bounds))
        return inds + off

    def frame_indices(self, n: int, rng: np.random.RandomState | None = None) -> np.ndarray:
        """Indices (num_clips * clip_len,) into a video of n frames."""
        if n < 1:
            raise ValueError(f"UniformSample: cannot sample from a video with {n} frames")
        if self.test_mode:
            rng = np.random.RandomState(self.seed)
        elif rng is None:
            rng = np.random.RandomState()  # fresh OS entropy; never the global state
        inds = np.concatenate([self._clip(n, i, rng) for i in range(self.num_clips)])
        return np.mod(inds, n)

    def __call__(self, results: Results, rng: np.random.RandomState | None = None) -> Results:
        n = results["total_frames"]
        if "keypoint" in results and results["keypoint"].shape[1] != n:
            raise ValueError(
                f"UniformSample: total_frames={n} but keypoint has {results['keypoint'].shape[1]} "
                f"frames in sample {sample_name(results)}"
            )
        # PYSKL's "transitional frame" blending is a no-op on integer indices, so it is omitted.
        results["frame_inds"] = self.frame_indices(n, rng) + results.get("start_index", 0)
        results.update(clip_len=self.clip_len, num_clips=self.num_clips, frame_interval=None)
        return results


class PadTo:
    """Vanilla PYSKL ST-GCN: loop-index to `length` frames, then zero the frames past the original end (mode 'zero')."""

    def __init__(self, length: int = 300, mode: str = "zero"):
        if mode not in ("zero", "loop"):
            raise ValueError(f"PadTo: mode must be 'zero' or 'loop', got {mode!r}")
        self.length, self.mode = length, mode

    def __call__(self, results: Results) -> Results:
        n = results["total_frames"]
        if n > self.length:
            raise ValueError(
                f"PadTo: sample {sample_name(results)} has {n} frames, more than the padded length {self.length}"
            )
        kp = results["keypoint"][:, np.arange(self.length) % n]
        if self.mode == "zero":
            kp[:, n:] = 0
        results["keypoint"], results["total_frames"] = kp, self.length
        return results


class PaddingWithLoop:
    """MMAction2 0.x: frames 0..clip_len-1 modulo the video length (the first clip_len frames of longer videos)."""

    def __init__(self, clip_len: int = 300):
        self.clip_len = clip_len

    def __call__(self, results: Results) -> Results:
        results["frame_inds"] = np.arange(self.clip_len) % results["total_frames"]
        results.update(clip_len=self.clip_len, num_clips=1, frame_interval=None)
        return results


class PoseDecode:
    """Gather the sampled frames (all frames if none were sampled) and cast to float32."""

    def __call__(self, results: Results) -> Results:
        inds = results.get("frame_inds")
        if inds is None:
            inds = np.arange(results["total_frames"])
        inds = np.asarray(inds).reshape(-1) + results.get("offset", 0)
        for key in ("keypoint_score", "keypoint"):
            if key in results:
                results[key] = results[key][:, inds].astype(np.float32)
        return results


# ---------------------------------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------------------------------


def _fit_persons(kp: np.ndarray, num_person: int, axis: int) -> np.ndarray:
    """Zero-pad or truncate the person axis to num_person."""
    have = kp.shape[axis]
    if have > num_person:
        return np.take(kp, np.arange(num_person), axis=axis)
    if have < num_person:
        pad = [(0, 0)] * kp.ndim
        pad[axis] = (0, num_person - have)
        return np.pad(kp, pad)
    return kp


class FormatGCNInput:
    """PYSKL: (M, nc*L, V, C) -> (nc, num_person, L, V, C), zero persons appended or extra persons dropped."""

    def __init__(self, num_person: int = 2):
        self.num_person = num_person

    def __call__(self, results: Results) -> Results:
        kp = results["keypoint"]
        if "keypoint_score" in results:
            kp = np.concatenate([kp, results.pop("keypoint_score")[..., None]], axis=-1)
        kp = _fit_persons(kp, self.num_person, axis=0)
        M, T, V, C = kp.shape
        nc = results.get("num_clips", 1)
        if T % nc:
            raise ValueError(
                f"FormatGCNInput: {T} frames do not split into {nc} clips in sample {sample_name(results)}"
            )
        results["keypoint"] = np.ascontiguousarray(kp.reshape(M, nc, T // nc, V, C).transpose(1, 0, 2, 3, 4))
        return results


class FormatNCTVM:
    """MMAction2 0.x FormatGCNInput('NCTVM'): append the score channel, (M, T, V, C) -> (C, T, V, num_person)."""

    def __init__(self, num_person: int = 2):
        self.num_person = num_person

    def __call__(self, results: Results) -> Results:
        kp = results["keypoint"]
        if "keypoint_score" in results:
            kp = np.concatenate([kp, results["keypoint_score"][..., None]], axis=-1)
        results["keypoint"] = _fit_persons(kp.transpose(3, 1, 2, 0), self.num_person, axis=-1)
        return results


class PoseNormalize:
    """MMAction2 0.x 2D normalisation on (C, T, V, M): (x - mean) / (max - min) for every entry, padding included."""

    def __init__(self, mean=(960.0, 540.0, 0.5), min_value=(0.0, 0.0, 0.0), max_value=(1920.0, 1080.0, 1.0)):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1, 1)
        self.scale = (np.asarray(max_value, dtype=np.float32) - np.asarray(min_value, dtype=np.float32)).reshape(
            -1, 1, 1, 1
        )

    def __call__(self, results: Results) -> Results:
        results["keypoint"] = (results["keypoint"] - self.mean) / self.scale
        return results


class NCTVMToModel:
    """(C, T, V, M) -> skeljax's model layout (1, M, T, V, C), one clip."""

    def __call__(self, results: Results) -> Results:
        results["keypoint"] = np.ascontiguousarray(results["keypoint"].transpose(3, 1, 2, 0)[None])
        return results


# ---------------------------------------------------------------------------------------------------------------------
# ST-GCN's own Kinetics-skeleton input (`feeder/feeder_kinetics.py`, `feeder/feeder.py`, `feeder/tools.py` of st-gcn)
# ---------------------------------------------------------------------------------------------------------------------


class OriginalKineticsInput:
    """The original Kinetics feeder: (M, T, V, 2) fractions + scores -> (num_person_out, num_frames, V, 3) float32.

    Reads the first `num_person_in` people into zero-padded `num_frames` frames, centres x and y by -0.5, zeroes x and y
    where the score is 0, then ranks the people of every frame by summed score (descending; ties keep the reading
    order, as NumPy's sort of so few entries did) and keeps `num_person_out`. Arithmetic in float64, then float32, as
    the original writes its .npy files. Channels: x, y, score.
    """

    def __init__(self, num_frames: int = 300, num_person_in: int = 5, num_person_out: int = 2):
        self.num_frames, self.num_person_in, self.num_person_out = num_frames, num_person_in, num_person_out

    def __call__(self, results: Results) -> Results:
        M, T, V, C = _kp_shape(results, "OriginalKineticsInput")
        score = results.get("keypoint_score")
        if C != 2 or score is None:
            raise ValueError(
                f"OriginalKineticsInput: expected 2D keypoints (M, T, V, 2) and keypoint_score, got "
                f"{(M, T, V, C)} in sample {sample_name(results)}"
            )
        if T > self.num_frames:
            raise ValueError(
                f"OriginalKineticsInput: sample {sample_name(results)} has {T} frames; the original "
                f"feeder holds {self.num_frames}"
            )
        m = min(M, self.num_person_in)
        data = np.zeros((self.num_person_in, self.num_frames, V, 3))
        data[:m, :T, :, :2] = results["keypoint"][:m]
        data[:m, :T, :, 2] = score[:m]
        data[..., :2] -= 0.5
        data[data[..., 2] == 0, :2] = 0
        rank = np.argsort(-data[..., 2].sum(axis=2), axis=0, kind="stable")  # (person, frame): per-frame order
        data = np.take_along_axis(data, rank[:, :, None, None], axis=0)[: self.num_person_out]
        results.pop("keypoint_score")
        results["keypoint"], results["total_frames"] = data.astype(np.float32), self.num_frames
        return results


class RandomChoose:
    """The original `random_choose`: a random window of `size` frames, or zero padding at a random start if shorter."""

    uses_rng = True

    def __init__(self, size: int = 150):
        self.size = size

    def __call__(self, results: Results, *, rng: np.random.RandomState) -> Results:
        kp = results["keypoint"]
        T = kp.shape[1]
        if T > self.size:
            begin = rng.randint(0, T - self.size + 1)  # both ends included, as Python's random.randint
            kp = kp[:, begin : begin + self.size]
        elif T < self.size:
            begin = rng.randint(0, self.size - T + 1)
            padded = np.zeros(kp.shape[:1] + (self.size,) + kp.shape[2:], kp.dtype)
            padded[:, begin : begin + T] = kp
            kp = padded
        results["keypoint"], results["total_frames"] = kp, self.size
        return results


class RandomMove:
    """The original `random_move` with one segment: rotation, scale and shift of x, y, each interpolated linearly
    from a random start value to a random end value over the clip; applied to every entry (zeros included, as the
    original does). Draws: angles, scales, x shifts, y shifts, two of each."""

    uses_rng = True

    def __init__(
        self, angles=(-10.0, -5.0, 0.0, 5.0, 10.0), scales=(0.9, 1.0, 1.1), shifts=(-0.2, -0.1, 0.0, 0.1, 0.2)
    ):
        self.angles, self.scales, self.shifts = angles, scales, shifts

    def __call__(self, results: Results, *, rng: np.random.RandomState) -> Results:
        kp = results["keypoint"]
        T = kp.shape[1]
        ends = [rng.choice(values, 2) for values in (self.angles, self.scales, self.shifts, self.shifts)]
        angle, scale, tx, ty = (np.linspace(a, b, T) for a, b in ends)
        angle = angle * np.pi / 180
        cos, sin = np.cos(angle) * scale, np.sin(angle) * scale  # per frame
        x, y = kp[..., 0].astype(np.float64), kp[..., 1].astype(np.float64)
        frame = (None, slice(None), None)  # broadcast (T,) over (M, T, V)
        out = kp.copy()
        out[..., 0] = cos[frame] * x - sin[frame] * y + tx[frame]
        out[..., 1] = sin[frame] * x + cos[frame] * y + ty[frame]
        results["keypoint"] = out
        return results
