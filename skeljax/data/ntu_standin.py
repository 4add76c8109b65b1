"""Stand-ins for PYSKL's NTU annotation pickles: the same format, names, labels, splits and (for NTU-60's sample
count) the same scale, with random-walk skeletons instead of recorded ones. They measure and test the way to the
data (downloads, preparation) without the real files, which this project cannot redistribute.

Length distribution (an estimate, stated as such): the NTU RGB+D paper (Shahroudy et al., CVPR 2016) reports 56,880
samples and "more than 4 million frames", a mean of at least 70 frames per sample, and st-gcn's 300-frame buffer
holds every NTU-60 sample. Lengths here are log-normal with median 66 and sigma 0.4 (mean ~72), clipped to 32-300.
Two people in the mutual actions A050-A060 (PYSKL keeps at most two), one otherwise; float16 like PYSKL's file.
"""

from __future__ import annotations

import os
import pickle

import numpy as np

from skeljax.data import ntu_meta

NTU60_SAMPLES = 56_578  # PYSKL's ntu60_3danno.pkl: the 56,880 recordings less the 302 with missing skeletons
FRAMES_MEDIAN, FRAMES_SIGMA, FRAMES_RANGE = 66.0, 0.4, (32, 300)


def ntu60_names(count: int, seed: int = 0) -> list[str]:
    """`count` distinct NTU-60 sample names (S001-S017, C001-C003, P001-P040, R001-R002, A001-A060), none of the
    official missing-skeleton list, sorted."""
    dims = (17, 3, 40, 2, 60)
    total = int(np.prod(dims))
    if not 0 < count <= total // 2:
        raise ValueError(f"count must be in 1..{total // 2}, got {count}")
    rng = np.random.default_rng(seed)
    picks = rng.choice(total, size=min(total, count + 1000), replace=False)  # spares for the missing ones
    s, c, p, r, a = np.unravel_index(picks, dims)
    names = [f"S{q[0] + 1:03d}C{q[1] + 1:03d}P{q[2] + 1:03d}R{q[3] + 1:03d}A{q[4] + 1:03d}" for q in zip(s, c, p, r, a)]
    return sorted(ntu_meta.select_samples(names, "ntu60")[:count])


def frame_counts(count: int, rng: np.random.Generator) -> np.ndarray:
    """Sample lengths drawn from the estimated NTU-60 distribution (module docstring)."""
    frames = rng.lognormal(np.log(FRAMES_MEDIAN), FRAMES_SIGMA, size=count)
    return np.clip(np.round(frames), *FRAMES_RANGE).astype(int)


def standin_annotation(name: str, frames: int, rng: np.random.Generator) -> dict:
    """One PYSKL 3D annotation dict of `frames` frames: joints drifting by small random steps around a body."""
    action = ntu_meta.parse_ntu_name(name)["action"]
    persons = 2 if 50 <= action <= 60 else 1
    body = rng.normal(0.0, 0.3, size=(persons, 1, 25, 3)).astype(np.float32)
    steps = rng.normal(0.0, 0.01, size=(persons, frames, 25, 3)).astype(np.float32)
    keypoint = (body + np.cumsum(steps, axis=1)).astype(np.float16)
    return {"frame_dir": name, "label": ntu_meta.ntu_label(name), "keypoint": keypoint, "total_frames": frames}


def write_ntu60_standin(path: str | os.PathLike, count: int = NTU60_SAMPLES, seed: int = 0) -> dict:
    """Writes a PYSKL-format NTU-60 3D pickle of `count` samples with the official xsub/xview splits; returns a summary
    (samples, frames mean / min / max, bytes)."""
    rng = np.random.default_rng(seed)
    names = ntu60_names(count, seed)
    frames = frame_counts(count, rng)
    annotations = [standin_annotation(n, int(t), rng) for n, t in zip(names, frames)]
    data = {"split": ntu_meta.make_split(names, "ntu60"), "annotations": annotations}
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=4)
    return {
        "samples": count,
        "frames_mean": float(frames.mean()),
        "frames_min": int(frames.min()),
        "frames_max": int(frames.max()),
        "bytes": os.path.getsize(path),
    }
