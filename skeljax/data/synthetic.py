"""Procedural NTU-25 skeleton actions in PYSKL's released annotation format (3D and COCO-17 2D).

Each sample is a forward-kinematics body (bone lengths from a per-subject body model) driven by a
class-specific joint-angle script, placed in a scene, viewed by a randomly placed Kinect-like camera
(right-handed, x to the sensor's left, y up, z away from the sensor, metres) and corrupted with joint
noise and dropped (all-zero) frames. Paired classes are exact time reversals of each other (raise vs
lower hand, squat down vs stand up, walk forward vs backward, approach vs walk apart), so the set of
poses they visit has the same distribution: they can only be told apart by temporal order.

Everything is deterministic given ``seed``: a sample depends only on (seed, label, index in class, frame range).

Sets of more than the 14 scripted classes (``num_classes``, e.g. 60 for an NTU-60-shaped set) reuse the scripts:
class ``L`` performs the motion of class ``L % 14`` in posture variant ``L // 14`` (stance width and forward lean
grow with the variant), so ``L`` and ``L + 14`` share a motion and differ only in that static posture. Such sets
are meant for measuring throughput at a real dataset's size and shape, not for judging accuracy.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

SYNTHETIC_CLASSES = (
    "raise left hand",
    "lower left hand",
    "wave right hand",
    "clap",
    "squat down",
    "stand up",
    "walk forward",
    "walk backward",
    "turn around",
    "kick with right leg",
    "approach each other",
    "walk apart",
    "push other person",
    "handshake",
)
TWO_PERSON = frozenset({10, 11, 12, 13})
# (class, class it is the time reversal of)
REVERSED_OF = {1: 0, 5: 4, 7: 6, 11: 10}
NUM_SUBJECTS = 40
DEFAULT_FRAMES = (30, 150)  # frames per sample of the 14-class sets, both ends included
MAX_CLASSES = 120  # 14 scripts x 9 posture variants, at least NTU-120's class count
FPS = 30.0
IMG_SHAPE = (1080, 1920)
# COCO-17 joints taken from NTU joints; 0-4 (nose, eyes, ears) come from the head model instead.
NTU_FOR_COCO = {5: 4, 6: 8, 7: 5, 8: 9, 9: 6, 10: 10, 11: 12, 12: 16, 13: 13, 14: 17, 15: 14, 16: 18}

_SIDES = (("l", 1.0, (4, 5, 6, 7, 21, 22), (12, 13, 14, 15)), ("r", -1.0, (8, 9, 10, 11, 23, 24), (16, 17, 18, 19)))
_ANGLES = ("flex", "abd", "horiz", "twist", "elbow", "hip", "hip_abd", "knee")


# ----------------------------------------------------------------------------------------------
# Rotations and forward kinematics (body frame: x = body's left, y = up, z = facing direction).
# ----------------------------------------------------------------------------------------------
def _rot(axis: int, a: np.ndarray) -> np.ndarray:
    """Right-handed rotation matrices (T, 3, 3) about a coordinate axis by angles ``a`` (T,)."""
    c, s = np.cos(a), np.sin(a)
    r = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r[..., axis, axis] = 1.0
    r[..., i, i], r[..., i, j], r[..., j, i], r[..., j, j] = c, -s, s, c
    return r


def _along(r: np.ndarray, v) -> np.ndarray:
    """Rotate the body-frame offset ``v`` (3,) by every matrix in ``r`` (T, 3, 3)."""
    return r @ np.asarray(v, dtype=np.float64)


def _subject_dims(rng: np.random.Generator) -> dict:
    """Bone lengths (metres) of one subject: overall size and per-bone proportions vary."""
    s = rng.uniform(0.85, 1.12)
    base = dict(
        spine1=0.25,
        spine2=0.22,
        neck=0.07,
        head=0.15,
        shoulder=0.18,
        upper_arm=0.28,
        forearm=0.25,
        hand=0.08,
        hand_tip=0.07,
        hip=0.09,
        thigh=0.43,
        shin=0.42,
        foot=0.14,
    )
    return {k: v * s * rng.uniform(0.94, 1.06) for k, v in base.items()}


def _fk(p: dict, d: dict) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions (T, 25, 3) and face points (T, 5, 3: nose, eyes, ears) in the scene frame."""
    t = len(p["yaw"])
    r_pel = _rot(1, p["yaw"])
    r_tor = r_pel @ _rot(0, p["pitch"])
    j = np.zeros((t, 25, 3))
    j[:, 1] = _along(r_tor, [0, d["spine1"], -0.01])
    j[:, 20] = j[:, 1] + _along(r_tor, [0, d["spine2"], 0.0])
    j[:, 2] = j[:, 20] + _along(r_tor, [0, d["neck"], 0.01])
    j[:, 3] = j[:, 2] + _along(r_tor, [0, d["head"], 0.02])
    for k, side, (sh, el, wr, ha, tip, th), (hp, kn, an, ft) in _SIDES:
        j[:, sh] = j[:, 20] + _along(r_tor, [side * d["shoulder"], -0.03, 0.0])
        r_up = (
            r_tor
            @ _rot(1, -side * p[k + "horiz"])
            @ _rot(2, side * p[k + "abd"])
            @ _rot(0, -p[k + "flex"])
            @ _rot(1, side * p[k + "twist"])
        )
        j[:, el] = j[:, sh] + _along(r_up, [0, -d["upper_arm"], 0])
        r_fo = r_up @ _rot(0, -p[k + "elbow"])
        j[:, wr] = j[:, el] + _along(r_fo, [0, -d["forearm"], 0])
        j[:, ha] = j[:, wr] + _along(r_fo, [0, -d["hand"], 0])
        j[:, tip] = j[:, ha] + _along(r_fo, [0, -d["hand_tip"], 0])
        j[:, th] = j[:, ha] + _along(r_fo, [-side * 0.01, -0.02, 0.045])
        j[:, hp] = _along(r_pel, [side * d["hip"], -0.05, 0.0])
        r_th = r_pel @ _rot(2, side * p[k + "hip_abd"]) @ _rot(0, -p[k + "hip"])
        j[:, kn] = j[:, hp] + _along(r_th, [0, -d["thigh"], 0])
        r_sh = r_th @ _rot(0, p[k + "knee"])
        j[:, an] = j[:, kn] + _along(r_sh, [0, -d["shin"], 0])
        j[:, ft] = j[:, an] + _along(r_sh, [0, -0.06, d["foot"]])
    face = j[:, 3:4] + np.stack(
        [
            _along(r_tor, v)
            for v in ([0, -0.02, 0.10], [0.035, 0.02, 0.085], [-0.035, 0.02, 0.085], [0.075, 0, 0], [-0.075, 0, 0])
        ],
        1,
    )
    # Stand on the ground: the lowest foot/ankle joint touches y = 0 in every frame.
    lift = -j[:, [14, 15, 18, 19], 1].min(1) + 0.02
    j[..., 1] += lift[:, None]
    face[..., 1] += lift[:, None]
    j[..., 0] += p["root"][:, None, 0]
    j[..., 2] += p["root"][:, None, 1]
    face[..., 0] += p["root"][:, None, 0]
    face[..., 2] += p["root"][:, None, 1]
    return j, face


# ----------------------------------------------------------------------------------------------
# Motion scripts: each returns per-person angle dicts for T frames.
# ----------------------------------------------------------------------------------------------
def _wiggle(rng, t, amp):
    """Smooth idle motion: two slow sinusoids with random frequency and phase."""
    f = rng.uniform(0.1, 0.6, 2) / FPS
    ph = rng.uniform(0, 2 * np.pi, 2)
    return amp * (0.6 * np.sin(2 * np.pi * f[0] * t + ph[0]) + 0.4 * np.sin(2 * np.pi * f[1] * t + ph[1]))


def _rest(rng, n):
    """A relaxed standing person: arms hanging slightly open, small idle sway."""
    t = np.arange(n, dtype=np.float64)
    p = {"yaw": _wiggle(rng, t, 0.05), "pitch": 0.03 + _wiggle(rng, t, 0.03), "root": np.zeros((n, 2))}
    for k in "lr":
        p[k + "flex"] = rng.uniform(0.0, 0.15) + _wiggle(rng, t, 0.05)
        p[k + "abd"] = rng.uniform(0.05, 0.2) + _wiggle(rng, t, 0.04)
        p[k + "horiz"] = np.zeros(n)
        p[k + "twist"] = np.zeros(n)
        p[k + "elbow"] = rng.uniform(0.05, 0.35) + _wiggle(rng, t, 0.05)
        p[k + "hip"] = _wiggle(rng, t, 0.02)
        p[k + "hip_abd"] = rng.uniform(0.0, 0.08) + np.zeros(n)
        p[k + "knee"] = rng.uniform(0.0, 0.1) + np.abs(_wiggle(rng, t, 0.03))
    return p


def _progress(rng, n):
    """Action progress 0 → 1 with random (time-symmetric) holds before and after; smoothstep eased."""
    a, b = rng.uniform(0.0, 0.25, 2)
    u = np.clip((np.linspace(0, 1, n) - a) / (1.0 - a - b), 0, 1)
    return u * u * (3 - 2 * u)


def _window(p, lo=0.15, hi=0.85):
    """Smooth 0-1-0 envelope over progress: ramps in below ``lo`` and out above ``hi``."""
    return np.clip(np.minimum(p / lo, (1 - p) / (1 - hi)), 0, 1)


def _gait(rng, p, q, dist, yaw, start):
    """Walk ``dist`` metres along heading ``yaw`` as progress ``p`` goes 0 → 1; legs and arms swing."""
    steps = max(1.0, round(dist / rng.uniform(0.55, 0.75)))
    ph = np.pi * steps * p
    env = np.sqrt(np.sin(np.pi * p))
    amp = rng.uniform(0.3, 0.45) * env
    for k, sgn in (("l", 1), ("r", -1)):
        q[k + "hip"] = q[k + "hip"] + sgn * amp * np.sin(ph)
        q[k + "knee"] = q[k + "knee"] + 1.6 * amp * np.clip(np.sin(ph * sgn + 0.9), 0, None)
        q[k + "flex"] = q[k + "flex"] - sgn * 0.8 * amp * np.sin(ph)
    q["root"] = np.asarray(start) + dist * p[:, None] * np.array([np.sin(yaw), np.cos(yaw)])
    q["yaw"] = q["yaw"] + yaw
    return q


def _script(label: int, rng: np.random.Generator, n: int) -> list[dict]:
    """Joint-angle scripts of the people in one sample of class ``label`` (before any time reversal)."""
    base = {0: 0, 1: 0, 4: 4, 5: 4, 6: 6, 7: 6, 10: 10, 11: 10}.get(label, label)
    t = np.arange(n, dtype=np.float64)
    p = _progress(rng, n)
    a = _rest(rng, n)
    if base == 0:  # raise left hand: forward/side raise above the head, elbow bends on the way
        a["lflex"] += rng.uniform(2.5, 2.9) * p
        a["labd"] += rng.uniform(0.0, 0.4) * p
        a["lelbow"] += rng.uniform(0.2, 0.6) * np.sin(np.pi * p)
    elif base == 2:  # wave: forearm up, rotating about the upper arm
        w = _window(p)
        a["rflex"] += rng.uniform(1.2, 1.6) * w
        a["rabd"] += rng.uniform(0.5, 0.9) * w
        a["relbow"] += rng.uniform(1.3, 1.7) * w
        f = rng.uniform(1.5, 2.5) / FPS
        a["rtwist"] += rng.uniform(0.35, 0.6) * w * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
    elif base == 3:  # clap: both hands in front, repeatedly brought together
        w = _window(p)
        f = rng.uniform(1.5, 3.0) / FPS
        close = 0.5 - 0.5 * np.cos(2 * np.pi * f * t)
        for k in "lr":
            a[k + "flex"] += rng.uniform(0.9, 1.2) * w
            a[k + "elbow"] += rng.uniform(0.9, 1.2) * w
            a[k + "horiz"] += w * (rng.uniform(0.0, 0.1) + rng.uniform(0.55, 0.7) * close)
    elif base == 4:  # squat down: hips and knees flex, torso leans, arms may go forward for balance
        th = rng.uniform(1.1, 1.5)
        for k in "lr":
            a[k + "hip"] += th * p
            a[k + "knee"] += 1.9 * th * p
        a["pitch"] += 0.45 * th * p
        arms = rng.uniform(0.0, 1.3)
        a["lflex"] += arms * p
        a["rflex"] += arms * p
    elif base == 6:  # walk forward along the facing direction
        _gait(rng, p, a, rng.uniform(1.2, 2.2), 0.0, (0.0, 0.0))
    elif base == 8:  # turn around to the left or to the right, stepping in place
        a["yaw"] += rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.1) * np.pi * p
        step = 0.2 * np.sin(np.pi * p) * np.sin(2 * np.pi * rng.uniform(1.5, 3) * p)
        a["lhip"] += step
        a["rhip"] -= step
        a["lknee"] += np.abs(step)
        a["rknee"] += np.abs(step)
    elif base == 9:  # kick: wind up (knee bent back), snap the leg forward, return
        k = [0, 0.25, 0.45, 0.7, 1.0]
        a["rhip"] += np.interp(p, k, [0, -0.3, rng.uniform(1.1, 1.5), 0.3, 0])
        a["rknee"] += np.interp(p, k, [0, 1.2, 0.05, 0.8, 0])
        a["pitch"] += np.interp(p, k, [0, 0.1, -0.2, 0, 0])
        for s in "lr":
            a[s + "abd"] += 0.4 * np.sin(np.pi * p)
    else:  # two-person classes: b stands facing a
        return [a, _second_person(base, rng, n, p, t, a)]
    return [a]


def _second_person(base: int, rng: np.random.Generator, n: int, p: np.ndarray, t: np.ndarray, a: dict) -> dict:
    """Script of person b in the two-person classes (10, 12, 13); also moves person a where they interact."""
    b = _rest(rng, n)
    if base == 10:  # approach each other: both walk until close
        d0, d1 = rng.uniform(2.6, 3.4), rng.uniform(0.8, 1.1)
        share = rng.uniform(0.35, 0.65)
        _gait(rng, p, a, (d0 - d1) * share, 0.0, (0.0, 0.0))
        _gait(rng, p, b, (d0 - d1) * (1 - share), np.pi, (0.0, d0))
    elif base == 12:  # push: a extends both arms into b, who staggers back
        d = rng.uniform(0.75, 0.95)
        k = [0, 0.25, 0.45, 0.7, 1.0]
        for s in "lr":
            a[s + "flex"] += np.interp(p, k, [0.3, 0.5, 1.4, 0.6, 0.2])
            a[s + "elbow"] += np.interp(p, k, [0.4, 1.5, 0.1, 0.8, 0.2])
            b[s + "abd"] += np.interp(p, k, [0, 0, 0.2, 0.6, 0.2])
        a["pitch"] += np.interp(p, k, [0, 0.05, 0.25, 0.1, 0])
        b["pitch"] += np.interp(p, k, [0, 0, -0.1, -0.3, 0])
        back = rng.uniform(0.3, 0.6) * np.interp(p, k, [0, 0, 0.2, 0.9, 1.0])
        a["root"] = np.stack([np.zeros(n), 0.15 * np.interp(p, k, [0, 0, 1, 1, 1])], 1)
        b["root"] = np.stack([np.zeros(n), d + back], 1)
        b["yaw"] += np.pi
    else:  # handshake: right hands meet between the two and pump up and down
        d = rng.uniform(0.75, 0.9)
        w = _window(p, 0.25, 0.75)
        f = rng.uniform(1.5, 2.5) / FPS
        pump = 0.12 * np.sin(2 * np.pi * f * t) * _window(p, 0.35, 0.65)
        for q in (a, b):
            q["rflex"] += rng.uniform(0.7, 0.9) * w + pump
            q["relbow"] += rng.uniform(0.5, 0.8) * w
            q["rhoriz"] += rng.uniform(0.25, 0.4) * w
        b["root"] = np.tile([0.0, d], (n, 1))
        b["yaw"] += np.pi
    return b


# ----------------------------------------------------------------------------------------------
# Camera, noise and output formats.
# ----------------------------------------------------------------------------------------------
def _camera_params(rng, cam: int) -> dict:
    """Random Kinect-like placement: cameras 1/2/3 look from the front / 45° right / 45° left."""
    view = {1: 0.0, 2: np.pi / 4, 3: -np.pi / 4}[cam] + rng.uniform(-0.35, 0.35)
    return dict(
        view=view,
        height=rng.uniform(0.7, 1.3),
        tilt=rng.uniform(-0.15, 0.15),
        lateral=rng.uniform(-0.5, 0.5),
        depth=rng.uniform(1.8, 3.0),
        focal=rng.uniform(0.9, 1.1) * 1050.0,
    )


def _to_camera(x: np.ndarray, c: dict) -> np.ndarray:
    """Scene points (..., 3) → camera frame; the scene origin faces the camera when view = 0."""
    # Scene +z (the first person's facing direction) points towards the camera (camera −z).
    r = _rot(0, np.array(c["tilt"])) @ _rot(1, np.array(np.pi + c["view"]))
    y = x @ r.T
    y[..., 1] -= c["height"]
    return y


def _place(xs: np.ndarray, c: dict) -> np.ndarray:
    """Rotate into the camera frame, centre laterally, and move so the nearest joint is c['depth'] away."""
    y = _to_camera(xs, c)
    y[..., 0] += c["lateral"] - y[..., 0].mean()
    y[..., 2] += c["depth"] - y[..., 2].min()
    return y


def _posture_variant(people: list[dict], variant: int) -> None:
    """Posture variant ``variant`` of a script (classes 14 v .. 14 v + 13): every person stands wider by
    ``v % 3`` steps and leans forward by ``v // 3`` steps; variant 0 is the script unchanged."""
    if variant == 0:
        return
    wide, lean = variant % 3, variant // 3
    for q in people:
        q["pitch"] = q["pitch"] + 0.25 * lean
        for k in "lr":
            q[k + "hip_abd"] = q[k + "hip_abd"] + 0.12 * wide


def _ids(idx: int) -> tuple[int, int, int, int]:
    """(setup, camera, subject, replication) of sample ``idx`` of a class: (subject, camera) runs through all
    120 pairs before the replication/setup numbers advance."""
    subject, cam = idx % NUM_SUBJECTS + 1, idx % 3 + 1
    r = idx // (3 * NUM_SUBJECTS)
    return r // 2 + 1, cam, subject, r % 2 + 1


def sample_name(label: int, idx: int) -> str:
    """NTU-style name (frame_dir) of sample ``idx`` of class ``label``; its action number is label + 1."""
    setup, cam, subject, rep = _ids(idx)
    return f"S{setup:03d}C{cam:03d}P{subject:03d}R{rep:03d}A{label + 1:03d}"


def _sample(seed: int, label: int, idx: int, frames: tuple[int, int] = DEFAULT_FRAMES) -> dict:
    """Clean camera-frame motion of one sample plus its metadata; independent of every other sample.

    ``frames`` = (fewest, most) frames, both included. Class ``label`` runs the script of ``label % 14`` in
    posture variant ``label // 14``.
    """
    rng = np.random.default_rng([seed, label, idx])
    _, cam, subject, _ = _ids(idx)
    script, variant = label % len(SYNTHETIC_CLASSES), label // len(SYNTHETIC_CLASSES)
    n = int(rng.integers(frames[0], frames[1] + 1))
    people = _script(script, rng, n)
    _posture_variant(people, variant)
    dims = [_subject_dims(np.random.default_rng([seed, 10_000 + subject]))]
    if len(people) == 2:  # the partner is one of the other subjects
        other = (subject + int(rng.integers(1, NUM_SUBJECTS))) % NUM_SUBJECTS + 1
        dims.append(_subject_dims(np.random.default_rng([seed, 10_000 + other])))
    joints, face = zip(*[_fk(q, d) for q, d in zip(people, dims)])
    joints, face = np.stack(joints), np.stack(face)  # (M, T, 25, 3), (M, T, 5, 3)
    if script in REVERSED_OF:
        joints, face = joints[:, ::-1], face[:, ::-1]
    c = _camera_params(rng, cam)
    if len(people) == 2:  # as in NTU, the two face each other across the image (side-on to camera 1)
        c["view"] += rng.choice([-0.5, 0.5]) * np.pi
    both = _place(np.concatenate([joints, face], 2), c)
    joints, face = both[:, :, :25], both[:, :, 25:]
    if len(people) == 2:  # like ntu_preproc: the person who moves more comes first
        motion = joints.reshape(2, -1, 3).var(1).sum(1)
        order = np.argsort(-motion, kind="stable")
        joints, face = joints[order], face[order]
    drop = np.zeros(n, bool)
    if rng.random() < 0.3:
        drop[rng.choice(n, int(rng.integers(1, max(2, n // 15) + 1)), replace=False)] = True
    name = sample_name(label, idx)
    return dict(
        name=name, label=label, joints=joints, face=face, camera=c, drop=drop, rng=rng, subject=subject, cam=cam
    )


def _anno_3d(s: dict) -> dict:
    """PYSKL 3D annotation: float16 (M, T, 25, 3) camera-space metres, dropped frames all zero."""
    rng = s["rng"]
    kp = s["joints"] + rng.normal(0, rng.uniform(0.003, 0.012), s["joints"].shape)
    kp[:, s["drop"]] = 0
    return dict(
        frame_dir=s["name"], label=int(s["label"]), keypoint=kp.astype(np.float16), total_frames=int(kp.shape[1])
    )


def _anno_2d(s: dict) -> dict:
    """HRNet-style 2D annotation: COCO-17 pixels float32 (M, T, 17, 2) + scores (M, T, 17)."""
    rng = s["rng"]
    m, n = s["joints"].shape[:2]
    pts = np.concatenate([s["face"], s["joints"][:, :, list(NTU_FOR_COCO.values())]], 2)
    c = s["camera"]
    h, w = IMG_SHAPE
    z = np.maximum(pts[..., 2], 0.1)
    # Right-handed camera with x to the sensor's left: image u grows towards −x.
    uv = np.stack([w / 2 - c["focal"] * pts[..., 0] / z, h / 2 - c["focal"] * pts[..., 1] / z], -1)
    uv += rng.normal(0, rng.uniform(0.5, 3.0), uv.shape)
    score = np.clip(rng.uniform(0.75, 0.97, (m, 1, 17)) + rng.normal(0, 0.03, (m, n, 17)), 0.05, 1.0)
    score[:, :, :5] *= 0.95
    for _ in range(int(rng.integers(0, 3))):  # occlusions: a joint is lost for a stretch of frames
        j, p0 = int(rng.integers(17)), int(rng.integers(n))
        seg = slice(p0, p0 + int(rng.integers(3, 20)))
        score[:, seg, j] = rng.uniform(0.0, 0.3, score[:, seg, j].shape)
        uv[:, seg, j] += rng.normal(0, 25.0, uv[:, seg, j].shape)
    outside = (uv[..., 0] < 0) | (uv[..., 0] > w - 1) | (uv[..., 1] < 0) | (uv[..., 1] > h - 1)
    score[outside] *= 0.1
    uv[..., 0] = np.clip(uv[..., 0], 0, w - 1)
    uv[..., 1] = np.clip(uv[..., 1], 0, h - 1)
    uv[:, s["drop"]] = 0
    score[:, s["drop"]] = 0
    return dict(
        frame_dir=s["name"],
        label=int(s["label"]),
        img_shape=IMG_SHAPE,
        original_shape=IMG_SHAPE,
        total_frames=int(n),
        keypoint=uv.astype(np.float32),
        keypoint_score=score.astype(np.float32),
    )


def synthetic_class_names(num_classes: int = len(SYNTHETIC_CLASSES)) -> tuple[str, ...]:
    """Names of a ``num_classes``-class set: the 14 scripts' names, then '<script> (posture v)' for variant v."""
    _check_num_classes(num_classes)
    nc = len(SYNTHETIC_CLASSES)
    return tuple(SYNTHETIC_CLASSES[k % nc] + (f" (posture {k // nc})" if k >= nc else "") for k in range(num_classes))


def _check_num_classes(num_classes: int) -> None:
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be in [1, {MAX_CLASSES}], got {num_classes}")


def _check_frames(frames) -> tuple[int, int]:
    lo, hi = (int(f) for f in frames)
    if not 2 <= lo <= hi:
        raise ValueError(f"frames must be (fewest, most) with 2 <= fewest <= most, got {tuple(frames)}")
    return lo, hi


def synthetic_annotation(
    seed: int,
    label: int,
    idx: int,
    kind: str = "3d",
    *,
    num_classes: int = len(SYNTHETIC_CLASSES),
    frames: tuple[int, int] = DEFAULT_FRAMES,
) -> dict:
    """One annotation dict (sample ``idx`` of class ``label``); the 2D variant projects the same motion.

    A sample does not depend on ``num_classes`` (only the range of valid labels does): the 14-class set is the first
    14 classes of any larger set with the same ``frames`` = (fewest, most) frames per sample.
    """
    if kind not in ("3d", "2d"):
        raise ValueError(f"kind must be '3d' or '2d', got {kind!r}")
    _check_num_classes(num_classes)
    if not 0 <= label < num_classes:
        raise ValueError(f"label must be in [0, {num_classes}), got {label}")
    s = _sample(seed, label, idx, _check_frames(frames))
    return _anno_3d(s) if kind == "3d" else _anno_2d(s)


SPLITS = ("xsub_train", "xsub_val", "xview_train", "xview_val", "train", "val")


def in_split(name: str, split: str) -> bool:
    """Whether the sample called ``name`` is in ``split`` (one of SPLITS), from its name alone: ``xsub_val`` holds
    out subjects P001, P006, ..., P036; ``xview_val`` holds out camera 1; ``train``/``val`` are the xsub split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    held_out = name[4:8] == "C001" if split.startswith("xview") else int(name[9:12]) % 5 == 1
    return held_out == split.endswith("val")


def iter_synthetic(
    num_per_class: int,
    seed: int = 0,
    kind: str = "3d",
    *,
    num_classes: int = len(SYNTHETIC_CLASSES),
    frames: tuple[int, int] = DEFAULT_FRAMES,
    split: str | None = None,
) -> Iterator[dict]:
    """The annotations of :func:`generate_synthetic` one at a time, in its annotation-list order; only those of
    ``split`` when given, and only those are generated (membership comes from the name), so nothing accumulates."""
    _check_num_classes(num_classes)
    frames = _check_frames(frames)
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    for i in range(num_per_class):
        for lab in range(num_classes):
            if split is None or in_split(sample_name(lab, i), split):
                yield synthetic_annotation(seed, lab, i, kind, num_classes=num_classes, frames=frames)


def generate_synthetic(
    num_per_class: int,
    seed: int = 0,
    kind: str = "3d",
    *,
    num_classes: int = len(SYNTHETIC_CLASSES),
    frames: tuple[int, int] = DEFAULT_FRAMES,
) -> dict:
    """A PYSKL-style annotation file dict with ``num_per_class`` samples of each of ``num_classes`` classes.

    Splits (see :func:`in_split`): ``xsub_*`` holds out subjects P001, P006, ..., P036 (20% of a class once
    num_per_class is a multiple of 5); ``xview_*`` holds out camera 1 (a third); ``train``/``val`` are the xsub split.
    Everything is held in memory; :func:`iter_synthetic` streams a large set.
    """
    if num_per_class < 2:
        raise ValueError(f"num_per_class must be >= 2 (so that both splits are non-empty), got {num_per_class}")
    annos = list(iter_synthetic(num_per_class, seed, kind, num_classes=num_classes, frames=frames))
    names = [a["frame_dir"] for a in annos]
    split = {s: [x for x in names if in_split(x, s)] for s in SPLITS}
    return {"split": split, "annotations": annos}
