"""Slow, loop-based reference of the PYSKL / MMAction2-0.x skeleton transforms, written after
PYSKL's pyskl/datasets/pipelines/ and MMAction2 0.x's mmaction/datasets/pipelines/pose_loading.py.

Deliberately structured unlike skeljax.data.transforms: explicit loops over persons, frames and joints, a Rodrigues
rotation instead of the quaternion matrix, scalar `randint` calls and `permutation` instead of the vectorised draws.
Only for tests; keep inputs small.
"""

from __future__ import annotations

import math

import numpy as np

NTU_PAIRS = [
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
]
COCO_PAIRS = [
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
]


def _frame_is_empty(frame: np.ndarray) -> bool:
    return all(abs(float(x)) <= 1e-8 for x in frame.reshape(-1))


def _float16_unit(u: np.ndarray) -> np.ndarray:
    """Unit vector rounded the way NumPy does for float16 input: float32 accumulation, float16 results."""
    sq = np.float32(0)
    for x in u:
        sq += np.float32(x) * np.float32(x)
    norm = np.float16(np.sqrt(np.float32(np.float16(sq))))
    return np.array([np.float16(x / norm) for x in u], dtype=np.float16)


def _angle(u: np.ndarray, ref: list[float]) -> float:
    if sum(abs(float(x)) for x in u) < 1e-6:
        return 0.0
    unit = _float16_unit(u) if u.dtype == np.float16 else u / math.sqrt(sum(float(x) ** 2 for x in u))
    dot = sum(float(a) * b for a, b in zip(unit, ref))
    return math.acos(min(1.0, max(-1.0, dot)))


def _rodrigues(axis: list[float], theta: float) -> list[list[float]]:
    """R = cos(t) I + sin(t) [k]x + (1 - cos(t)) k k^T."""
    if sum(abs(a) for a in axis) < 1e-6 or abs(theta) < 1e-6:
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    n = math.sqrt(sum(a * a for a in axis))
    kx, ky, kz = (a / n for a in axis)
    c, s = math.cos(theta), math.sin(theta)
    cross = [[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]]
    k = [kx, ky, kz]
    return [[c * (i == j) + s * cross[i][j] + (1 - c) * k[i] * k[j] for j in range(3)] for i in range(3)]


def _cross(u: list[float], w: list[float]) -> list[float]:
    return [u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0]]


def _rotate_all(skel: np.ndarray, j_from: int, j_to: int, ref: list[float]) -> np.ndarray:
    u = skel[0, 0, j_to] - skel[0, 0, j_from]
    R = _rodrigues(_cross([float(x) for x in u], ref), _angle(u, ref))
    M, T, V, _ = skel.shape
    out = np.zeros((M, T, V, 3), dtype=np.float64)
    for m in range(M):
        for t in range(T):
            for v in range(V):
                x = [float(a) for a in skel[m, t, v]]
                for k in range(3):
                    out[m, t, v, k] = sum(R[k][d] * x[d] for d in range(3))
    return out


def prenormalize3d(kp: np.ndarray) -> tuple[np.ndarray, int]:
    """PreNormalize3D of pyskl/datasets/pipelines/pose_related.py. Returns (keypoint, total_frames)."""
    M, T, V, _ = kp.shape
    if not np.any(kp):
        return kp, T
    valid = [[t for t in range(T) if not _frame_is_empty(kp[p, t])] for p in range(M)]
    if M == 2 and len(valid[1]) > len(valid[0]):
        skel = np.stack([kp[1, valid[1]], kp[0, valid[1]]])
    else:
        skel = np.stack([kp[p, valid[0]] for p in range(M)])
    T2 = skel.shape[1]
    center = skel[0, 0, 1 if V == 25 else V - 1].copy()
    centred = np.zeros_like(skel)
    for m in range(M):
        for t in range(T2):
            for v in range(V):
                if any(float(x) != 0 for x in skel[m, t, v]):
                    centred[m, t, v] = skel[m, t, v] - center  # stays in the input dtype (float16)
    out = _rotate_all(centred, 0, 1, [0.0, 0.0, 1.0])
    out = _rotate_all(out, 4, 8, [1.0, 0.0, 0.0])
    return out, T2


def prenormalize2d(kp: np.ndarray, score: np.ndarray, img_shape=(1080, 1920), threshold=0.01) -> np.ndarray:
    """PreNormalize2D of pyskl/datasets/pipelines/pose_related.py: (M, T, V, 2) + (M, T, V) -> (M, T, V, 3) float32."""
    h, w = img_shape
    M, T, V, _ = kp.shape
    out = np.zeros((M, T, V, 3), dtype=np.float32)
    for m in range(M):
        for t in range(T):
            for v in range(V):
                s = np.float32(score[m, t, v])
                keep = s > np.float32(threshold)
                out[m, t, v, 0] = (float(kp[m, t, v, 0]) - w / 2) / (w / 2) if keep else 0.0
                out[m, t, v, 1] = (float(kp[m, t, v, 1]) - h / 2) / (h / 2) if keep else 0.0
                out[m, t, v, 2] = s
    return out


def bones(kp: np.ndarray, dataset: str) -> np.ndarray:
    pairs = NTU_PAIRS if dataset == "nturgb+d" else COCO_PAIRS
    M, T, V, C = kp.shape
    out = np.zeros((M, T, V, C), dtype=np.float32)
    for v1, v2 in pairs:
        for m in range(M):
            for t in range(T):
                for c in range(C):
                    if c == 2 and dataset == "coco":
                        out[m, t, v1, c] = (kp[m, t, v1, c] + kp[m, t, v2, c]) / 2
                    else:
                        out[m, t, v1, c] = kp[m, t, v1, c] - kp[m, t, v2, c]
    return out


def motion(data: np.ndarray, dataset: str) -> np.ndarray:
    _M, T, _V, C = data.shape
    out = np.zeros_like(data)
    for t in range(T - 1):
        out[:, t] = data[:, t + 1] - data[:, t]
        if C == 3 and dataset == "coco":
            out[:, t, :, 2] = (data[:, t, :, 2] + data[:, t + 1, :, 2]) / 2
    return out


def features(kp: np.ndarray, dataset: str, feat: str) -> np.ndarray:
    if feat == "j":
        return kp
    if feat == "jm":
        return motion(kp, dataset)
    b = bones(kp, dataset)
    return b if feat == "b" else motion(b, dataset)


def uniform_sample(n: int, L: int, num_clips: int, test_mode: bool, rng=None) -> np.ndarray:
    """UniformSample of pyskl/datasets/pipelines/sampling.py with p_interval = 1; test mode uses the seed-255 stream."""
    if test_mode:
        rng = np.random.RandomState(255)
    out = []
    for i in range(num_clips):
        rng.rand()  # the p_interval ratio draw (ratio is always 1)
        if n < L:
            if test_mode:
                start = i if n < num_clips else i * n // num_clips
            else:
                start = rng.randint(0, n)
            idx = [start + j for j in range(L)]
        elif n < 2 * L:
            chosen = {int(x) for x in rng.permutation(L + 1)[: n - L]}
            idx, shift = [], 0
            for j in range(L):
                shift += j in chosen
                idx.append(j + shift)
        else:
            idx = []
            for j in range(L):
                lo, hi = j * n // L, (j + 1) * n // L
                idx.append(lo + int(rng.randint(hi - lo)))
        out += [x % n for x in idx]
    return np.array(out, dtype=np.int64)


def gather(kp: np.ndarray, inds) -> np.ndarray:
    return np.stack([kp[:, i] for i in inds], axis=1).astype(np.float32)


def format_gcn(kp: np.ndarray, num_clips: int, num_person: int = 2) -> np.ndarray:
    """(M, nc*L, V, C) -> (nc, num_person, L, V, C)."""
    M, T, V, C = kp.shape
    L = T // num_clips
    out = np.zeros((num_clips, num_person, L, V, C), dtype=kp.dtype)
    for i in range(num_clips):
        for m in range(min(M, num_person)):
            for t in range(L):
                out[i, m, t] = kp[m, i * L + t]
    return out


def pad_to_zero(kp: np.ndarray, length: int) -> np.ndarray:
    M, T, V, C = kp.shape
    out = np.zeros((M, length, V, C), dtype=kp.dtype)
    for t in range(T):
        out[:, t] = kp[:, t]
    return out


def mmaction0x(kp: np.ndarray, score: np.ndarray | None, clip_len: int = 300, normalize: bool = False) -> np.ndarray:
    """PaddingWithLoop -> PoseDecode -> NCTVM (2 persons) -> PoseNormalize, returned as (1, 2, clip_len, V, C)."""
    M, T, V, _ = kp.shape
    C = kp.shape[-1] + (score is not None)
    out = np.zeros((1, 2, clip_len, V, C), dtype=np.float32)
    mean, scale = [960.0, 540.0, 0.5], [1920.0, 1080.0, 1.0]
    for m in range(2):
        for t in range(clip_len):
            for v in range(V):
                for c in range(C):
                    if m < M:
                        src = t % T
                        val = np.float32(score[m, src, v] if c == kp.shape[-1] else kp[m, src, v, c])
                    else:
                        val = np.float32(0)
                    if normalize:
                        val = (val - np.float32(mean[c])) / np.float32(scale[c])
                    out[0, m, t, v, c] = val
    return out
