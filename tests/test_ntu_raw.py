"""Raw NTU .skeleton parsing, PYSKL denoising/merging and MMAction2 0.x conversion on synthetic files."""

import math

import numpy as np
import pytest

from skeljax.data.ntu_raw import (
    EmptySkeletonError,
    SkeletonFormatError,
    parse_skeleton_file,
    read_ntu_skeleton,
    read_ntu_skeleton_mmaction0x,
)
from tests.helpers import SKELETON_NAME, body, frames_from, skeleton_lines, write_skeleton


def f16(a):
    return np.asarray(a, np.float32).astype(np.float16)


# ---------------------------------------------------------------------------------------------
# Independent reference of PYSKL's tools/data/ntu_preproc.py denoising (float64 statistics, explicit spans)


def reference_pyskl(path):
    with open(path, newline=None) as f:
        text = f.read().split("\n")
    pos = 0

    def nxt():
        nonlocal pos
        pos += 1
        return text[pos - 1]

    tracks = {}
    fidx = 0
    for _ in range(int(nxt())):
        nb = int(nxt())
        for _ in range(nb):
            bid = int(nxt().split()[0])
            assert int(nxt()) == 25
            xyz = np.array([[float(v) for v in nxt().split()[:3]] for _ in range(25)]).astype(np.float32)
            tracks.setdefault(bid, {"start": fidx, "kpt": []})["kpt"].append(xyz)
        if nb:
            fidx += 1
    bodies = []
    for tr in tracks.values():
        k = np.array(tr["kpt"])
        bodies.append({"start": tr["start"], "kpt": k, "motion": k.astype(np.float64).reshape(-1, 3).var(0).sum()})
    by_motion = lambda bs: [bs[i] for i in np.argsort([-b["motion"] for b in bs], kind="stable")]
    bodies = by_motion(bodies)
    if len(bodies) == 1:
        return bodies[0]["kpt"][None]
    bodies = [b for b in bodies if len(b["kpt"]) > 11]
    if len(bodies) == 1:
        return bodies[0]["kpt"][None]
    kept = []
    for b in bodies:
        k = b["kpt"].astype(np.float64)
        ok = np.ptp(k[..., 0], axis=1) <= 0.8 * np.ptp(k[..., 1], axis=1)
        if ok.all():
            kept.append(b)
        elif 1 - ok.mean() < 0.69754:
            b["motion"] = min(b["motion"], k[ok].reshape(-1, 3).var(0).sum())
            kept.append(b)
    bodies = by_motion(kept)
    if len(bodies) == 1:
        return bodies[0]["kpt"][None]
    T = max(b["start"] + len(b["kpt"]) for b in bodies)
    out = np.zeros((2, T, 25, 3), np.float32)
    lo, hi = [bodies[0]["start"], 0], [bodies[0]["start"] + len(bodies[0]["kpt"]), 0]
    out[0, lo[0] : hi[0]] = bodies[0]["kpt"]
    for b in bodies[1:]:
        s, e = b["start"], b["start"] + len(b["kpt"])
        for slot in (0, 1):
            if s >= hi[slot] or e <= lo[slot]:
                out[slot, s:e] = b["kpt"]
                lo[slot], hi[slot] = min(s, lo[slot]), max(e, hi[slot])
                break
    alive = np.abs(out).sum(axis=(0, 2, 3)) >= 1e-3
    first, last = np.argmax(alive), len(alive) - np.argmax(alive[::-1])
    out = out[:, first:last]
    if np.abs(out[0, 0, 1]).sum() < 1e-3 and np.abs(out[1, 0, 1]).sum() > 1e-3:
        out = out[::-1]
    return out


def check(tmp_path, frames, crlf=False):
    path = write_skeleton(tmp_path, frames, crlf=crlf)
    anno = read_ntu_skeleton(path)
    ref = reference_pyskl(path)
    assert anno["frame_dir"] == SKELETON_NAME and anno["label"] == 12
    assert anno["keypoint"].dtype == np.float16
    assert anno["total_frames"] == anno["keypoint"].shape[1]
    np.testing.assert_array_equal(anno["keypoint"], ref.astype(np.float16))
    return anno["keypoint"]


# ---------------------------------------------------------------------------------------------
# PYSKL conversion


def test_one_body(tmp_path):
    a = body(30)
    kp = check(tmp_path, frames_from((5, 0, a)))
    assert kp.shape == (1, 30, 25, 3)
    np.testing.assert_array_equal(kp[0], f16(a))


def test_two_bodies_sorted_by_motion(tmp_path):
    a, b = body(40, scale=1.0), body(40, scale=1.5)  # b moves/spreads more -> slot 0
    kp = check(tmp_path, frames_from((72057594037931101, 0, a), (72057594037931102, 0, b)))
    assert kp.shape == (2, 40, 25, 3)
    np.testing.assert_array_equal(kp[0], f16(b))
    np.testing.assert_array_equal(kp[1], f16(a))


def test_crlf_gives_the_same_result(tmp_path):
    a, b = body(20), body(20, scale=0.7)
    frames = frames_from((1, 0, a), (2, 0, b))
    lf = read_ntu_skeleton(write_skeleton(tmp_path, frames))["keypoint"]
    crlf_path = write_skeleton(tmp_path, frames, name="S001C001P001R001A001", crlf=True)
    assert b"\r\n" in crlf_path.read_bytes()
    crlf = read_ntu_skeleton(crlf_path)["keypoint"]
    np.testing.assert_array_equal(lf, crlf)
    np.testing.assert_array_equal(check(tmp_path, frames, crlf=True), lf)


def test_empty_frame_does_not_advance_frame_counter(tmp_path):
    a = body(30, scale=1.2)
    b = body(15, scale=0.8)
    frames = [[(1, a[t])] for t in range(15)] + [[]] + [[(1, a[15 + t]), (2, b[t])] for t in range(15)]
    kp = check(tmp_path, frames)
    assert kp.shape == (2, 30, 25, 3)  # 31 file frames, the empty one skipped
    np.testing.assert_array_equal(kp[0], f16(a))
    assert not kp[1, :15].any()  # b starts at non-empty frame 15, not file frame 16
    np.testing.assert_array_equal(kp[1, 15:], f16(b))


def test_swap_rule(tmp_path):
    # b has more motion -> slot 0 over non-empty frames [15, 30); a overlaps -> slot 1 over [0, 30).
    # Slot 0 is empty at frame 0 while slot 1 is not, so the slots are swapped.
    a = body(30, scale=0.8)
    b = body(15, scale=1.5)
    frames = [[(1, a[t])] for t in range(15)] + [[]] + [[(1, a[15 + t]), (2, b[t])] for t in range(15)]
    kp = check(tmp_path, frames)
    assert kp.shape == (2, 30, 25, 3)
    np.testing.assert_array_equal(kp[0], f16(a))
    np.testing.assert_array_equal(kp[1, 15:], f16(b))
    assert not kp[1, :15].any()


@pytest.mark.parametrize("short_len, expect_m", [(11, 1), (12, 2)])
def test_short_noisy_body_dropped(tmp_path, short_len, expect_m):
    a = body(30)
    noisy = body(short_len, scale=3.0, noise=0.3)  # far more motion, but only short_len frames
    kp = check(tmp_path, frames_from((1, 0, a), (2, 5, noisy)))
    assert kp.shape[0] == expect_m
    if expect_m == 1:
        np.testing.assert_array_equal(kp[0], f16(a))
    else:  # kept: the noisy body wins slot 0 (frames 5..), a goes to slot 1 and is swapped back to 0
        np.testing.assert_array_equal(kp[0], f16(a))
        np.testing.assert_array_equal(kp[1, 5 : 5 + short_len], f16(noisy))


def test_leading_frames_of_dropped_body_are_trimmed(tmp_path):
    noise = body(5, scale=2.0)  # first 5 non-empty frames, then dropped (<= 11 frames)
    a, b = body(30, scale=1.3), body(30)
    kp = check(tmp_path, frames_from((9, 0, noise), (1, 5, a), (2, 5, b)))
    assert kp.shape == (2, 30, 25, 3)
    np.testing.assert_array_equal(kp[0], f16(a))
    np.testing.assert_array_equal(kp[1], f16(b))


@pytest.mark.parametrize("n_lying, expect_m", [(28, 1), (27, 2)])  # 28/40 = 0.7 >= 0.69754 drops; 27/40 keeps
def test_spread_denoising_threshold(tmp_path, n_lying, expect_m):
    a = body(40)
    wide = np.concatenate([body(n_lying, scale=2.0, lying=True), body(40 - n_lying, scale=2.0)])
    kp = check(tmp_path, frames_from((1, 0, a), (2, 0, wide)))
    assert kp.shape[0] == expect_m
    if expect_m == 1:
        np.testing.assert_array_equal(kp[0], f16(a))
    else:  # kept; its valid-frame motion (scale 2) still beats a's
        np.testing.assert_array_equal(kp[0], f16(wide))


def test_spread_denoising_lowers_motion(tmp_path):
    # b's motion over all frames beats a's, but over its valid (upright) frames it is smaller.
    a = body(40)
    b = np.concatenate([body(20, scale=3.0, lying=True), body(20, scale=0.5)])
    kp = check(tmp_path, frames_from((1, 0, a), (2, 0, b)))
    assert kp.shape == (2, 40, 25, 3)
    np.testing.assert_array_equal(kp[0], f16(a))
    np.testing.assert_array_equal(kp[1], f16(b))


def test_three_bodies_slot_assignment(tmp_path):
    a = body(20, scale=1.5)  # most motion: slot 0 over [0, 20)
    b = body(40, scale=1.2)  # overlaps a -> slot 1
    c = body(20, scale=1.0)  # [20, 40) does not overlap a -> also slot 0
    d = body(40, scale=0.8)  # overlaps both -> dropped
    kp = check(tmp_path, frames_from((1, 0, a), (2, 0, b), (3, 20, c), (4, 0, d)))
    assert kp.shape == (2, 40, 25, 3)
    np.testing.assert_array_equal(kp[0, :20], f16(a))
    np.testing.assert_array_equal(kp[0, 20:], f16(c))
    np.testing.assert_array_equal(kp[1], f16(b))


def test_slot1_span_starts_at_zero(tmp_path):
    # After b enters slot 1 at [20, 40) its span is [0, 40) (initial span (0, 0)), so c at [0, 15) is dropped.
    a = body(40, scale=1.5)
    b = body(20, scale=1.2)
    c = body(15, scale=1.0)
    kp = check(tmp_path, frames_from((1, 0, a), (2, 20, b), (3, 0, c)))
    assert kp.shape == (2, 40, 25, 3)
    np.testing.assert_array_equal(kp[0], f16(a))
    assert not kp[1, :20].any()
    np.testing.assert_array_equal(kp[1, 20:], f16(b))


def test_no_usable_body(tmp_path):
    with pytest.raises(EmptySkeletonError, match=SKELETON_NAME):
        read_ntu_skeleton(write_skeleton(tmp_path, [[], [], []]))
    with pytest.raises(EmptySkeletonError, match="at most 11 frames"):
        read_ntu_skeleton(write_skeleton(tmp_path, frames_from((1, 0, body(5)), (2, 0, body(8)))))


def test_non_ntu_name_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="not an NTU"):
        read_ntu_skeleton(write_skeleton(tmp_path, frames_from((1, 0, body(3))), name="clip_0001"))


# ---------------------------------------------------------------------------------------------
# Malformed files: error names the file and the 1-based line


def _write_lines(tmp_path, lines, name=SKELETON_NAME):
    path = tmp_path / f"{name}.skeleton"
    path.write_text("\n".join(lines) + "\n")
    return path


def _expect_error(path, line, *words):
    with pytest.raises(SkeletonFormatError) as err:
        parse_skeleton_file(path)
    msg = str(err.value)
    assert f"{path.name}:{line}:" in msg and err.value.line == line, msg
    for w in words:
        assert w in msg, msg


def test_truncated_file(tmp_path):
    lines = skeleton_lines(frames_from((1, 0, body(3))))
    path = _write_lines(tmp_path, lines[:-10])  # cut inside the last joint block
    _expect_error(path, len(lines) - 9, "end of file", "joint 16 of 25")


def test_truncated_before_frame(tmp_path):
    lines = skeleton_lines(frames_from((1, 0, body(3))))
    lines[0] = "4"
    _expect_error(_write_lines(tmp_path, lines), len(lines) + 1, "number of bodies of frame 4")


def test_wrong_joint_count(tmp_path):
    lines = skeleton_lines(frames_from((1, 0, body(3))))
    # line 1 frames; frame 1 = lines 2-29 (count, body, joints count, 25 joints); frame 2 joint count = line 32
    lines[31] = "24"
    _expect_error(_write_lines(tmp_path, lines), 32, "expected 25 joints for body 1 of frame 2", "got 24")


def test_non_number_in_joint_line(tmp_path):
    lines = skeleton_lines(frames_from((1, 0, body(3))))
    fields = lines[10].split()
    fields[1] = "0.12abc"
    lines[10] = " ".join(fields)
    _expect_error(_write_lines(tmp_path, lines), 11, "'0.12abc'", "joint 7 of body 1 of frame 1")


def test_short_joint_line(tmp_path):
    lines = skeleton_lines(frames_from((1, 0, body(2))))
    lines[5] = " ".join(lines[5].split()[:3])
    _expect_error(_write_lines(tmp_path, lines), 6, "expected 12 numbers", "got 3")


@pytest.mark.parametrize("value, words", [("-1", ("non-negative", "-1")), ("two", ("non-negative", "'two'"))])
def test_bad_body_count(tmp_path, value, words):
    lines = skeleton_lines(frames_from((1, 0, body(2))))
    lines[1 + 28] = value  # body count of frame 2
    _expect_error(_write_lines(tmp_path, lines), 30, "number of bodies of frame 2", *words)


def test_bad_body_line_and_trailing_garbage(tmp_path):
    lines = skeleton_lines(frames_from((1, 0, body(2))))
    bad = list(lines)
    bad[2] = "x 0 0 1 0 1 0 0.1 0.2 2"
    _expect_error(_write_lines(tmp_path, bad), 3, "body line of body 1 of frame 1")
    _expect_error(_write_lines(tmp_path, lines + ["1"]), len(lines) + 1, "expected end of file after 2 frames")
    (tmp_path / "x.skeleton").write_text("\n".join(lines + ["", "  ", ""]))  # trailing blank lines are fine
    assert len(parse_skeleton_file(tmp_path / "x.skeleton")) == 2


def test_non_finite_coordinate(tmp_path):
    lines = skeleton_lines(frames_from((1, 0, body(2))))
    lines[8] = "nan " + " ".join(lines[8].split()[1:])
    _expect_error(_write_lines(tmp_path, lines), 9, "non-finite")


# ---------------------------------------------------------------------------------------------
# MMAction2 0.x conversion (tools/data/skeleton/gen_ntu_rgbd_raw.py): a reference with a 300-frame buffer and
# per-joint loops


def _ref_rot(v, target):
    v = np.asarray(v, np.float64)
    t = np.asarray(target, np.float64)
    if np.abs(v).sum() < 1e-6:
        return np.eye(3)
    theta = math.acos(np.clip(v @ t / np.linalg.norm(v), -1, 1))
    axis = np.cross(v, t)
    if np.abs(axis).sum() < 1e-6 or abs(theta) < 1e-6:
        return np.eye(3)
    a = math.cos(theta / 2)
    b, c, d = -axis / np.linalg.norm(axis) * math.sin(theta / 2)
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c + a * d), 2 * (b * d - a * c)],
            [2 * (b * c - a * d), a * a + c * c - b * b - d * d, 2 * (c * d + a * b)],
            [2 * (b * d + a * c), 2 * (c * d - a * b), a * a + d * d - b * b - c * c],
        ]
    )


def reference_mmaction0x(frames):
    T = len(frames)
    data = np.zeros((4, T, 25, 3))
    for t, bodies in enumerate(frames):
        for m, (_, xyz) in enumerate(bodies[:4]):
            data[m, t] = np.array([float(f"{v:.7f}") for v in xyz.ravel()]).reshape(25, 3)
    energy = []
    for m in range(4):
        nz = data[m][np.abs(data[m]).sum(axis=(1, 2)) > 0]
        energy.append(sum(nz[..., c].std() for c in range(3)) if len(nz) else 0.0)
    order = sorted(range(4), key=lambda m: (energy[m], m), reverse=True)[:2]
    s = np.zeros((2, 300, 25, 3), np.float32)
    s[:, :T] = data[order]
    for p in range(2):
        if not s[p].any():
            continue
        valid = [t for t in range(300) if s[p, t].any()]
        if not s[p, 0].any():  # first frame empty: move the non-empty frames to the front
            seq = s[p, valid].copy()
            s[p] = 0
            s[p, : len(seq)] = seq
            valid = list(range(len(seq)))
        n = valid[-1] + 1  # loop frames [0, n) over the empty tail
        for t in range(n, 300):
            s[p, t] = s[p, t - n * (t // n)]
    center = s[0, :, 1].copy()
    for p in range(2):
        if s[p].any():
            for t in range(300):
                for v in range(25):
                    if s[p, t, v].any():
                        s[p, t, v] = s[p, t, v] - center[t]
    for j0, j1, target in ((0, 1, (0, 0, 1)), (4, 8, (1, 0, 0))):
        R = _ref_rot(s[0, 0, j1] - s[0, 0, j0], target)
        for p in range(2):
            for t in range(300):
                if s[p, t].any():
                    for v in range(25):
                        s[p, t, v] = R @ s[p, t, v].astype(np.float64)
    return s[:, :T]


def test_mmaction0x_matches_reference(tmp_path):
    # Three bodies by position, the third with least energy (dropped); b and c leave after 20 frames;
    # an empty frame at file frame 10.
    a, b, c = body(30, scale=1.2, noise=0.02), body(20, scale=1.0, noise=0.02), body(20, scale=0.3)
    frames = [[(1, a[t]), (2, b[t]), (3, c[t])] if t < 20 else [(1, a[t])] for t in range(30)]
    frames.insert(10, [])
    path = write_skeleton(tmp_path, frames)
    anno = read_ntu_skeleton_mmaction0x(path)
    assert anno["frame_dir"] == SKELETON_NAME and anno["label"] == 12
    assert anno["total_frames"] == 31 and anno["img_shape"] == (1080, 1920) == anno["original_shape"]
    kp = anno["keypoint"]
    assert kp.shape == (2, 31, 25, 3) and kp.dtype == np.float32
    np.testing.assert_allclose(kp, reference_mmaction0x(frames), rtol=1e-5, atol=1e-6)
    # Hand-checked: per-frame centring on person 0's joint 1; shoulders of frame 0 along +x; the gap at
    # frame 10 stays empty (the first frame is not empty, so nothing is shifted); person 1 (b) has left at
    # frame 21 and its tail is filled by looping its frames 0..20.
    np.testing.assert_allclose(kp[0, :, 1], 0, atol=1e-6)
    shoulder = kp[0, 0, 8] - kp[0, 0, 4]
    assert shoulder[0] > 0
    np.testing.assert_allclose(shoulder[1:], 0, atol=1e-6)
    assert not kp[:, 10].any()
    assert np.abs(kp[1, 21:]).sum(axis=(1, 2)).min() > 0
    # c (energy ~0.3 of b's) is not there: person 1 at frame 0 is b, moved like person 0.
    d_b = np.linalg.norm(kp[1, 0] - kp[1, 0].mean(0), axis=1).mean()
    assert d_b > 0.2


def test_mmaction0x_single_body_gets_zero_second_person(tmp_path):
    a = body(12)
    frames = frames_from((1, 0, a))
    kp = read_ntu_skeleton_mmaction0x(write_skeleton(tmp_path, frames))["keypoint"]
    assert kp.shape == (2, 12, 25, 3)
    assert not kp[1].any()
    np.testing.assert_allclose(kp, reference_mmaction0x(frames), rtol=1e-5, atol=1e-6)
