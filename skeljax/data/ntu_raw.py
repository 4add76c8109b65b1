"""Raw NTU RGB+D `.skeleton` files: strict parsing; PYSKL's, MMAction2 0.x's and the original ST-GCN's 3D conversions."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skeljax.data import ntu_meta
from skeljax.data.transforms import axis_angle_matrix

NUM_JOINTS = 25
BODY_FIELDS = 10  # bodyID clippedEdges handLeft{Confidence,State} handRight{Confidence,State} isRestricted leanX leanY trackingState
JOINT_FIELDS = 12  # x y z depthX depthY colorX colorY orientation{W,X,Y,Z} trackingState
MMACTION0X_MAX_FRAMES = 300
# The original ST-GCN's NTU data (st-gcn tools/ntu_gendata.py): a fixed buffer of 300 frames and 2 bodies.
ORIGINAL_MAX_FRAMES = 300
ORIGINAL_MAX_BODIES = 2

# PYSKL denoising constants (tools/data/ntu_preproc.py).
_MIN_BODY_FRAMES = 11
_WH_RATIO = 0.8
_SPREAD_NOISE_RATIO = 0.69754
_EPS = 1e-3


class SkeletonFormatError(ValueError):
    """A `.skeleton` file that does not follow the NTU text format."""

    def __init__(self, path: str | os.PathLike, line: int, message: str):
        self.path, self.line = str(path), line
        super().__init__(f"{self.path}:{line}: {message}")


class EmptySkeletonError(ValueError):
    """A well-formed `.skeleton` file with no usable body (no skeleton at all, or none survives denoising)."""

    def __init__(self, path: str | os.PathLike, message: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


# ------------------------------------------------------------------------------------------------
# Parsing


def _read_lines(path: str | os.PathLike) -> list[str]:
    """File lines with LF, CRLF or CR endings, trailing blank lines dropped."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as e:
        raise SkeletonFormatError(
            path, data[: e.start].count(b"\n") + 1, "expected ASCII text, found a non-ASCII byte"
        ) from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


class _Reader:
    """Line cursor that turns every surprise into a SkeletonFormatError with a 1-based line number."""

    def __init__(self, path, lines):
        self.path, self.lines, self.i = path, lines, 0

    def fail(self, line: int, message: str):
        raise SkeletonFormatError(self.path, line, message)

    def line(self, what: str) -> str:
        if self.i >= len(self.lines):
            self.fail(self.i + 1, f"unexpected end of file (truncated?), expected {what}")
        self.i += 1
        return self.lines[self.i - 1]

    def count(self, what: str) -> int:
        text = self.line(what)
        try:
            value = int(text.strip())
        except ValueError:
            self.fail(self.i, f"expected {what} (a non-negative integer), got {text.strip()!r}")
        if value < 0:
            self.fail(self.i, f"expected {what} (a non-negative integer), got {value}")
        return value

    def body_id(self, where: str) -> int:
        text = self.line(f"the {BODY_FIELDS}-number body line of {where}")
        fields = text.split()
        if len(fields) != BODY_FIELDS:
            self.fail(self.i, f"expected {BODY_FIELDS} numbers on the body line of {where}, got {len(fields)}")
        try:
            body_id = int(fields[0])
            [float(f) for f in fields[1:]]
        except ValueError:
            self.fail(self.i, f"expected numbers on the body line of {where} (bodyID an integer), got {text.strip()!r}")
        return body_id

    def joints(self, where: str) -> np.ndarray:
        """(25, 3) float64 x, y, z of the next 25 joint lines."""
        start = self.i
        block = self.lines[start : start + NUM_JOINTS]
        values = " ".join(block).split()
        arr = None
        if len(block) == NUM_JOINTS and len(values) == NUM_JOINTS * JOINT_FIELDS:
            try:
                arr = np.array(values, dtype=np.float64).reshape(NUM_JOINTS, JOINT_FIELDS)
            except ValueError:
                arr = None
        if arr is None:  # slow path: find the offending line for the message
            for j in range(NUM_JOINTS):
                text = self.line(f"joint {j + 1} of {NUM_JOINTS} of {where}")
                fields = text.split()
                if len(fields) != JOINT_FIELDS:
                    self.fail(
                        self.i, f"expected {JOINT_FIELDS} numbers for joint {j + 1} of {where}, got {len(fields)}"
                    )
                for f in fields:
                    try:
                        float(f)
                    except ValueError:
                        self.fail(self.i, f"expected a number for joint {j + 1} of {where}, got {f!r}")
            self.fail(start + 1, "unparseable joint block")  # not reached: every line parsed above
        bad = ~np.isfinite(arr[:, :3]).all(axis=1)
        if bad.any():
            self.fail(start + 1 + int(np.argmax(bad)), f"non-finite x/y/z for a joint of {where}")
        self.i = start + NUM_JOINTS
        return arr[:, :3]


def parse_skeleton_file(path: str | os.PathLike) -> list[list[tuple[int, np.ndarray]]]:
    """Frames of a raw file, each a list of (bodyID, float64 (25, 3) x/y/z) in file order (empty frames kept)."""
    r = _Reader(path, _read_lines(path))
    num_frames = r.count("the number of frames")
    frames = []
    for f in range(num_frames):
        num_bodies = r.count(f"the number of bodies of frame {f + 1}")
        bodies = []
        for b in range(num_bodies):
            where = f"body {b + 1} of frame {f + 1}"
            body_id = r.body_id(where)
            num_joints = r.count(f"the number of joints of {where}")
            if num_joints != NUM_JOINTS:
                r.fail(r.i, f"expected {NUM_JOINTS} joints for {where}, got {num_joints}")
            bodies.append((body_id, r.joints(where)))
        frames.append(bodies)
    if r.i < len(r.lines):
        r.fail(r.i + 1, f"expected end of file after {num_frames} frames, got {r.lines[r.i].strip()!r}")
    return frames


# ------------------------------------------------------------------------------------------------
# PYSKL conversion (tools/data/ntu_preproc.py)


@dataclass
class TrackedBody:
    """One bodyID's joints over the non-empty frames it appears in."""

    body_id: int
    start: int  # index among non-empty frames of its first appearance
    kpt: np.ndarray  # float32 (T_b, 25, 3)
    motion: np.float32 = field(default=np.float32(0))


def _motion(kpt: np.ndarray) -> np.float32:
    """Sum over x, y, z of the variance over all joints and frames (float32, as PYSKL)."""
    return np.sum(np.var(kpt.reshape(-1, 3), axis=0))


def track_bodies(frames: list[list[tuple[int, np.ndarray]]]) -> list[TrackedBody]:
    """Groups bodies by bodyID in order of first appearance; empty frames do not advance the frame index."""
    joints: dict[int, list[np.ndarray]] = {}
    starts: dict[int, int] = {}
    fidx = 0
    for bodies in frames:
        if not bodies:
            continue
        for body_id, xyz in bodies:
            if body_id not in joints:
                joints[body_id], starts[body_id] = [], fidx
            joints[body_id].append(xyz)
        fidx += 1
    out = []
    for body_id, seq in joints.items():
        kpt = np.stack(seq).astype(np.float32)  # float64 -> float32 rounds like np.array(str, float32)
        out.append(TrackedBody(body_id, starts[body_id], kpt, _motion(kpt)))
    return out


def _spread_valid_frames(kpt: np.ndarray) -> np.ndarray:
    """Frames whose x extent is at most 0.8 times their y extent."""
    xr = kpt[:, :, 0].max(axis=1) - kpt[:, :, 0].min(axis=1)
    yr = kpt[:, :, 1].max(axis=1) - kpt[:, :, 1].min(axis=1)
    # The released data was made with NumPy 1.x, where float32 scalar * Python float is float64.
    return np.flatnonzero(xr.astype(np.float64) <= _WH_RATIO * yr.astype(np.float64))


def _spread_denoise(bodies: list[TrackedBody]) -> list[TrackedBody]:
    """Drops bodies that are mostly wider than tall; lowers the motion of partly noisy ones."""
    kept = []
    for b in bodies:
        valid = _spread_valid_frames(b.kpt)
        total = b.kpt.shape[0]
        if len(valid) == total:
            kept.append(b)
        elif 1 - len(valid) / total < _SPREAD_NOISE_RATIO:
            b.motion = min(b.motion, _motion(b.kpt[valid]))
            kept.append(b)
    return sorted(kept, key=lambda b: -b.motion)


def _trim(keypoint: np.ndarray, path) -> np.ndarray:
    """Removes leading and trailing frames where both tracks are (almost) zero."""
    sums = [float(np.sum(np.abs(keypoint[:, t]))) for t in range(keypoint.shape[1])]
    nz = [t for t, s in enumerate(sums) if not s < _EPS]
    if not nz:
        raise EmptySkeletonError(path, "all joint coordinates of the kept bodies are zero")
    return keypoint[:, nz[0] : nz[-1] + 1]


def pyskl_keypoints(bodies: list[TrackedBody], path: str | os.PathLike = "<bodies>") -> np.ndarray:
    """PYSKL's denoising and merging of tracked bodies into a float32 (M, T, 25, 3) array, M in {1, 2}."""
    if not bodies:
        raise EmptySkeletonError(path, "no skeleton in any frame")
    bodies = sorted((TrackedBody(b.body_id, b.start, b.kpt, b.motion) for b in bodies), key=lambda b: -b.motion)
    if len(bodies) == 1:
        return bodies[0].kpt[None]
    bodies = [b for b in bodies if b.kpt.shape[0] > _MIN_BODY_FRAMES]
    if len(bodies) == 1:
        return bodies[0].kpt[None]
    if not bodies:  # PYSKL would fail an assertion here
        raise EmptySkeletonError(path, f"every body lasts at most {_MIN_BODY_FRAMES} frames")
    bodies = _spread_denoise(bodies)
    if not bodies:
        raise EmptySkeletonError(path, "every body fails the spread (width/height) test")
    if len(bodies) == 1:
        return bodies[0].kpt[None]

    length = max(b.start + b.kpt.shape[0] for b in bodies)
    keypoint = np.zeros((2, length, NUM_JOINTS, 3), np.float32)
    first = bodies[0]
    spans = [[first.start, first.start + first.kpt.shape[0]], [0, 0]]  # slot 1 starts as the empty span (0, 0)
    keypoint[0, spans[0][0] : spans[0][1]] = first.kpt
    for b in bodies[1:]:
        s, e = b.start, b.start + b.kpt.shape[0]
        for slot in (0, 1):
            s0, e0 = spans[slot]
            if max(s0, s) >= min(e0, e):  # no overlap with what the slot already holds
                keypoint[slot, s:e] = b.kpt
                spans[slot] = [min(s, s0), max(e, e0)]
                break
    keypoint = _trim(keypoint, path)
    if float(np.sum(np.abs(keypoint[0, 0, 1]))) < _EPS and float(np.sum(np.abs(keypoint[1, 0, 1]))) > _EPS:
        keypoint = keypoint[::-1]
    return np.ascontiguousarray(keypoint)


def read_ntu_skeleton(path: str | os.PathLike) -> dict:
    """One `.skeleton` file -> PYSKL 3D annotation dict (frame_dir, label, total_frames, float16 keypoint)."""
    frame_dir = Path(path).name.split(".")[0]
    label = ntu_meta.ntu_label(frame_dir)
    keypoint = pyskl_keypoints(track_bodies(parse_skeleton_file(path)), path).astype(np.float16)
    return {"frame_dir": frame_dir, "label": label, "keypoint": keypoint, "total_frames": keypoint.shape[1]}


# ------------------------------------------------------------------------------------------------
# MMAction2 0.x conversion (tools/data/skeleton/gen_ntu_rgbd_raw.py)


def _angle_between(v1: np.ndarray, v2) -> float:
    if float(np.abs(v1).sum()) < 1e-6 or float(np.abs(np.asarray(v2)).sum()) < 1e-6:
        return 0.0
    u1 = v1 / np.linalg.norm(v1)
    u2 = np.asarray(v2) / np.linalg.norm(v2)
    return float(np.arccos(np.clip(np.dot(u1, u2), -1.0, 1.0)))


def _align(s: np.ndarray, j_from: int, j_to: int, target) -> None:
    """Rotates, in place, every non-empty frame so that person 0's frame-0 bone j_from->j_to points along target."""
    v = s[0, 0, j_to] - s[0, 0, j_from]
    # The same quaternion formula as PYSKL's PreNormalize3D (pyskl/datasets/pipelines/pose_related.py); theta is a float64 here, as in gen_ntu_rgbd_raw.
    rot = axis_angle_matrix(np.cross(v, target), _angle_between(v, target))
    for person in s:
        if person.sum() == 0:
            continue
        frames = np.flatnonzero(person.sum(axis=(1, 2)) != 0)
        person[frames] = np.einsum("ij,tvj->tvi", rot, person[frames].astype(np.float64))


def mmaction0x_pre_normalization(s: np.ndarray) -> np.ndarray:
    """2s-AGCN style pre_normalization of one float32 (M, 300, 25, 3) buffer, in place."""
    if s.sum() == 0:
        return s
    for person in s:  # (a) move the first non-empty frame to 0, loop the sequence over the empty tail
        if person.sum() == 0:
            continue
        if person[0].sum() == 0:
            tmp = person[person.sum(-1).sum(-1) != 0].copy()
            person[:] = 0
            person[: len(tmp)] = tmp
        for i in range(1, len(person)):
            if person[i].sum() == 0 and person[i:].sum() == 0:
                rest = len(person) - i
                person[i:] = np.concatenate([person[:i]] * math.ceil(rest / i), 0)[:rest]
                break
    center = s[0][:, 1:2, :].copy()  # (b) per-frame centre: joint 1 of person 0
    for person in s:
        if person.sum() == 0:
            continue
        mask = (person.sum(-1) != 0)[..., None]
        person[:] = (person - center) * mask
    _align(s, 0, 1, [0, 0, 1])  # (c) spine (joint 0 -> 1) along +z
    _align(s, 4, 8, [1, 0, 0])  # (d) shoulders (joint 4 -> 8) along +x
    return s


def mmaction0x_keypoints(frames: list[list[tuple[int, np.ndarray]]], path="<frames>") -> np.ndarray:
    """MMAction2 0.x's conversion of parsed frames: float32 (2, T, 25, 3), T = all frames of the file."""
    num_frames = len(frames)
    if num_frames > MMACTION0X_MAX_FRAMES:
        raise SkeletonFormatError(
            path, 1, f"MMAction2 0.x conversion holds at most {MMACTION0X_MAX_FRAMES} frames, the file has {num_frames}"
        )
    if not any(frames):
        raise EmptySkeletonError(path, "no skeleton in any frame")
    data = np.zeros((4, num_frames, NUM_JOINTS, 3))
    for t, bodies in enumerate(frames):
        for m, (_, xyz) in enumerate(bodies[:4]):  # by position in the frame, no bodyID tracking
            data[m, t] = xyz
    energy = np.zeros(4)
    for m in range(4):
        nz = data[m][data[m].sum(-1).sum(-1) != 0]
        if len(nz):
            energy[m] = nz[..., 0].std() + nz[..., 1].std() + nz[..., 2].std()
    order = np.argsort(energy, kind="stable")[::-1][:2]  # small-array quicksort was stable in 2021 NumPy
    buf = np.zeros((2, MMACTION0X_MAX_FRAMES, NUM_JOINTS, 3), np.float32)
    buf[:, :num_frames] = data[order].astype(np.float32)
    mmaction0x_pre_normalization(buf)
    return np.ascontiguousarray(buf[:, :num_frames])


def read_ntu_skeleton_mmaction0x(path: str | os.PathLike) -> dict:
    """One `.skeleton` file -> MMAction2 0.x 3D annotation dict (keypoint float32 (2, T, 25, 3))."""
    frame_dir = Path(path).name.split(".")[0]
    label = ntu_meta.ntu_label(frame_dir)
    keypoint = mmaction0x_keypoints(parse_skeleton_file(path), path)
    return {
        "total_frames": keypoint.shape[1],
        "keypoint": keypoint,
        "frame_dir": frame_dir,
        "img_shape": (1080, 1920),
        "original_shape": (1080, 1920),
        "label": label,
    }


# ------------------------------------------------------------------------------------------------
# The original ST-GCN's conversion (st-gcn tools/ntu_gendata.py and tools/utils/ntu_read_skeleton.py)


def original_keypoints(
    frames: list[list[tuple[int, np.ndarray]]], path="<frames>", max_frames: int | None = ORIGINAL_MAX_FRAMES
) -> np.ndarray:
    """The ST-GCN authors' NTU data of parsed frames: float32 (M, T, 25, 3) raw Kinect x, y, z, T = the file's frames.

    Frame t's bodies fill slots 0 and 1 in the order the file lists them (no bodyID tracking: a second body listed
    first in some frame takes slot 0 there); further bodies are dropped, and slots a frame does not fill, like every
    slot of a frame with no body, stay zero. No centring, no denoising. M is 2 when some frame lists two or more
    bodies, else 1 (the recipe pads the missing person with zeros, as the original's fixed 2-body buffer holds).
    Coordinates are parsed as float64 and rounded once to float32, as the original writes its .npy buffer. Files
    longer than `max_frames` (300) do not fit that buffer (the original's conversion stops on them) and are refused;
    prediction passes None and cuts long recordings into windows instead.
    """
    num_frames = len(frames)
    if max_frames is not None and num_frames > max_frames:
        raise SkeletonFormatError(
            path,
            1,
            f"the original ST-GCN's NTU data holds at most {max_frames} frames, the file has {num_frames}",
        )
    if not any(frames):
        raise EmptySkeletonError(path, "no skeleton in any frame")
    persons = min(ORIGINAL_MAX_BODIES, max(len(bodies) for bodies in frames))
    keypoint = np.zeros((persons, num_frames, NUM_JOINTS, 3), np.float32)
    for t, bodies in enumerate(frames):
        for slot, (_, xyz) in enumerate(bodies[:persons]):
            keypoint[slot, t] = xyz
    return keypoint


def read_ntu_skeleton_original(path: str | os.PathLike) -> dict:
    """One `.skeleton` file -> the original ST-GCN's sample as an annotation dict (keypoint float32 (M, T, 25, 3))."""
    frame_dir = Path(path).name.split(".")[0]
    label = ntu_meta.ntu_label(frame_dir)
    keypoint = original_keypoints(parse_skeleton_file(path), path)
    return {"frame_dir": frame_dir, "label": label, "keypoint": keypoint, "total_frames": keypoint.shape[1]}


# ------------------------------------------------------------------------------------------------
# Folder conversion (scripts/prepare_ntu.py)

CONVERTERS = {
    "pyskl": read_ntu_skeleton,
    "mmaction0x": read_ntu_skeleton_mmaction0x,
    "original": read_ntu_skeleton_original,
}


@dataclass
class ConversionReport:
    """What convert_folder did: converted samples and every file it skipped, with the reason."""

    out_path: str
    converted: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, error message)
    skipped_missing: list[str] = field(default_factory=list)
    skipped_other: list[str] = field(default_factory=list)  # outside the benchmark or not an NTU name
    split_sizes: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        action = "wrote" if self.converted else "nothing converted, did not write"
        lines = [
            (
                f"{action} {self.out_path}: {self.converted} samples converted, {len(self.failed)} failed, "
                f"{len(self.skipped_missing)} skipped as missing-skeleton samples, "
                f"{len(self.skipped_other)} outside the benchmark or not NTU names"
            )
        ]
        lines += [f"  {k}: {v}" for k, v in self.split_sizes.items()]
        if self.failed:
            lines.append("failed files (skipped):")
            lines += [f"  {msg}" for _, msg in self.failed]
        return "\n".join(lines)


def _convert_one(task: tuple[str, str]) -> tuple[str, dict | None, str | None]:
    """Worker: (path, format) -> (path, annotation or None, error message or None)."""
    path, fmt = task
    try:
        return path, CONVERTERS[fmt](path), None
    except (SkeletonFormatError, EmptySkeletonError) as e:
        return path, None, str(e)
    except OSError as e:
        return path, None, f"{path}: cannot read: {e}"


def convert_folder(
    raw_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    benchmark: str = "ntu60",
    fmt: str = "pyskl",
    workers: int = 1,
    progress: bool = True,
    save=None,
) -> ConversionReport:
    """Converts every `.skeleton` file of raw_dir into one PYSKL-style pickle {'split', 'annotations'} (formats
    'pyskl' and 'original'), or into what `save(out_path, split, annotations)` writes (MMAction2 0.x's per-split
    lists: skeljax/data/prepare_ntu.py). The benchmark's missing-skeleton samples are skipped in every format."""
    from skeljax.data.annotations import save_annotations

    if fmt not in CONVERTERS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {sorted(CONVERTERS)}")
    if fmt == "original" and benchmark != "ntu60":
        raise ValueError(f"format 'original': the original ST-GCN was released for NTU-60 only, not {benchmark!r}")
    report = ConversionReport(str(out_path))
    files, selected = _select_files(Path(raw_dir), benchmark, report)
    annos = _convert_all(
        [(str(files[n]), fmt) for n in selected],
        desc=f"{benchmark} ({fmt})",
        workers=workers,
        progress=progress,
        report=report,
    )
    names = [n for n in selected if n in annos]
    split = ntu_meta.make_split(names, benchmark)
    report.converted = len(names)
    report.split_sizes = {k: len(v) for k, v in split.items()}
    if not names:  # nothing converted: never replace an existing output with an empty file
        return report
    if save is not None:
        save(out_path, split, [annos[n] for n in names])
    else:
        save_annotations(out_path, {"split": split, "annotations": [annos[n] for n in names]})
    return report


def _select_files(raw_dir: Path, benchmark: str, report: ConversionReport) -> tuple[dict, list[str]]:
    """({name: path} of raw_dir's .skeleton files, the names the benchmark uses, in order); what is left out is
    recorded in `report` (official missing-skeleton samples, non-NTU names, samples of the other benchmark)."""
    if not raw_dir.is_dir():
        raise ValueError(f"{raw_dir}: not a folder of .skeleton files")
    files = {p.name.split(".")[0]: p for p in sorted(raw_dir.glob("*.skeleton"))}
    if not files:
        raise ValueError(f"{raw_dir}: no .skeleton files found")
    ntu_names = []
    for name in files:
        try:
            ntu_meta.parse_ntu_name(name)
            ntu_names.append(name)
        except ValueError:
            report.skipped_other.append(name)
    missing = ntu_meta.missing_samples(benchmark)
    report.skipped_missing = [n for n in ntu_names if n in missing]
    selected = ntu_meta.select_samples(ntu_names, benchmark)
    chosen = set(selected)
    report.skipped_other += [n for n in ntu_names if n not in missing and n not in chosen]
    return files, selected


def _convert_all(tasks, *, desc: str, workers: int, progress: bool, report: ConversionReport) -> dict:
    """{name: annotation} of the (path, format) tasks, in `workers` spawned processes when more than one."""
    from tqdm import tqdm

    annos = {}
    bar = tqdm(total=len(tasks), unit="file", desc=desc, disable=not progress, dynamic_ncols=True)
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:  # spawn: safe even if JAX is already imported
            _collect(pool.imap(_convert_one, tasks, chunksize=8), annos, report, bar)
    else:
        _collect(map(_convert_one, tasks), annos, report, bar)
    bar.close()
    return annos


def _collect(results, annos: dict, report: ConversionReport, bar) -> None:
    for path, anno, error in results:
        if error is None:
            annos[anno["frame_dir"]] = anno
        else:
            report.failed.append((path, error))
            bar.write(f"skipping {error}")
        bar.update()
