"""Annotation pickles (restricted loading, validation, atomic saving), NTU metadata and scripts/prepare_ntu.py."""

import copy
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skeljax.data import ntu_meta
from skeljax.data.annotations import AnnotationError, load_annotations, save_annotations, validate_annotations
from skeljax.io.unpickle import UnsafePickleError

REPO = Path(__file__).resolve().parents[1]
BAD = "S001C001P001R001A005"


def sample(name, label, m=2, t=7, v=25, c=3, dtype=np.float16):
    kp = np.random.default_rng(len(name) + label).normal(size=(m, t, v, c)).astype(dtype)
    return {"frame_dir": name, "label": label, "total_frames": t, "keypoint": kp}


def pyskl_data():
    annos = [sample("S001C002P001R001A001", 0, m=1), sample(BAD, 4), sample("S001C001P003R001A060", np.int64(59))]
    split = {"xsub_train": ["S001C002P001R001A001", BAD], "xsub_val": ["S001C001P003R001A060"]}
    return {"split": split, "annotations": annos}


def assert_same(a, b):
    assert a["split"] == b["split"]
    for x, y in zip(a["annotations"], b["annotations"], strict=True):
        assert x.keys() == y.keys()
        np.testing.assert_array_equal(x["keypoint"], y["keypoint"])
        assert x["keypoint"].dtype == y["keypoint"].dtype
        assert (x["frame_dir"], x["label"], x["total_frames"]) == (y["frame_dir"], y["label"], y["total_frames"])


# ---------------------------------------------------------------------------------------------
# Loading


def test_roundtrip_and_validate(tmp_path):
    data = pyskl_data()
    save_annotations(tmp_path / "a.pkl", data)
    assert [p.name for p in tmp_path.iterdir()] == ["a.pkl"]  # no temp file left behind
    loaded = load_annotations(tmp_path / "a.pkl")
    assert_same(loaded, data)
    validate_annotations(loaded, tmp_path / "a.pkl", layout="nturgb+d", num_classes=60)


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_numpy1_style_pickle(tmp_path, protocol):
    # NumPy 1.x (the released 2022 files, mmcv protocol 2) names its globals numpy.core.multiarray.*.
    raw = pickle.dumps(pyskl_data(), protocol=protocol)
    old = raw.replace(b"numpy._core.", b"numpy.core.") if protocol <= 2 else raw
    if protocol <= 2:
        assert b"numpy.core.multiarray\n_reconstruct" in old and b"numpy._core" not in old
    (tmp_path / "old.pkl").write_bytes(old)
    assert_same(load_annotations(tmp_path / "old.pkl"), pyskl_data())


def test_mmaction0x_list_form(tmp_path):
    annos = [dict(sample("S001C002P001R001A001", 0, m=2), img_shape=(1080, 1920), original_shape=(1080, 1920))]
    annos[0]["keypoint"] = annos[0]["keypoint"].astype(np.float32)
    (tmp_path / "train.pkl").write_bytes(pickle.dumps(annos, protocol=2))
    loaded = load_annotations(tmp_path / "train.pkl")
    assert isinstance(loaded, list) and loaded[0]["img_shape"] == (1080, 1920)
    validate_annotations(loaded, tmp_path / "train.pkl", layout=(25, 3), num_classes=60)


class _CreatesFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_pickle_is_refused_and_creates_nothing(tmp_path):
    target = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"split": {}, "annotations": [_CreatesFile(str(target))]}, protocol=2))
    with pytest.raises(AnnotationError) as err:
        load_annotations(evil)
    assert str(evil) in str(err.value) and "io.open" in str(err.value) and "trusted=True" in str(err.value)
    assert not target.exists()
    # The same file with the documented opt-in really runs code: the refusal above is what protects.
    load_annotations(evil, trusted=True)
    assert target.exists()


def test_refusal_is_also_the_shared_unsafe_pickle_error(tmp_path):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R.")
    with pytest.raises(UnsafePickleError) as err:
        load_annotations(evil)
    assert isinstance(err.value, AnnotationError)
    assert (err.value.path, err.value.name) == (str(evil), "os.system")


def test_pickle_cannot_change_numpy_builtin_dtypes(tmp_path):
    # dtype('f8', align=False, copy=False) asks for numpy's shared float64 before BUILD sets its state. The loader
    # always builds a copy: the pickled state (big-endian) applies to that copy, float64 itself stays untouched.
    path = tmp_path / "tamper.pkl"
    state = b"(K\x03X\x01\x00\x00\x00>NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"  # big-endian
    path.write_bytes(b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x89\x87R" + state + b"b.")
    got = load_annotations_raw(path)
    assert got == np.dtype(">f8") and np.dtype("f8").byteorder in "=<"


def load_annotations_raw(path):
    """The restricted unpickler's result before load_annotations' shape checks."""
    from skeljax.data.annotations import _RestrictedUnpickler

    with open(path, "rb") as f:
        return _RestrictedUnpickler(f, str(path)).load()


def test_unreadable_files(tmp_path):
    (tmp_path / "junk.pkl").write_bytes(b"this is not a pickle")
    with pytest.raises(AnnotationError, match="junk.pkl"):
        load_annotations(tmp_path / "junk.pkl")
    with pytest.raises(AnnotationError, match="nope.pkl"):
        load_annotations(tmp_path / "nope.pkl")
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"split": {}}))
    with pytest.raises(AnnotationError, match="'annotations' list"):
        load_annotations(tmp_path / "dict.pkl")


def test_save_is_atomic_on_failure(tmp_path):
    path = tmp_path / "a.pkl"
    save_annotations(path, pyskl_data())
    before = path.read_bytes()
    with pytest.raises((pickle.PicklingError, AttributeError)):
        save_annotations(path, {"split": {}, "annotations": [lambda: 0]})  # unpicklable
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.pkl"]


# ---------------------------------------------------------------------------------------------
# Validation: each broken sample is named in the error


def _break(fn):
    data = copy.deepcopy(pyskl_data())
    fn(next(a for a in data["annotations"] if a["frame_dir"] == BAD), data)
    return data


CASES = {
    "missing label": (lambda a, d: a.pop("label"), "missing field 'label'"),
    "rank 3": (lambda a, d: a.update(keypoint=a["keypoint"][0]), "rank 4"),
    "score shape": (lambda a, d: a.update(keypoint_score=np.ones((2, 6, 25))), "keypoint_score shape"),
    "nan": (lambda a, d: a["keypoint"].__setitem__((0, 3, 4, 1), np.nan), "NaN or inf"),
    "inf": (lambda a, d: a["keypoint"].__setitem__((1, 0, 0, 0), np.inf), "NaN or inf"),
    "zero length": (lambda a, d: a.update(keypoint=np.zeros((2, 0, 25, 3), np.float16), total_frames=0), "zero-length"),
    "total_frames": (lambda a, d: a.update(total_frames=8), "total_frames 8 does not match"),
    "three persons": (lambda a, d: a.update(keypoint=np.zeros((3, 7, 25, 3), np.float16)), "3 persons"),
    "label range": (lambda a, d: a.update(label=60), "label 60 out of range [0, 60)"),
    "negative label": (lambda a, d: a.update(label=-1), "label -1 out of range"),
    "float label": (lambda a, d: a.update(label=4.0), "label must be an integer"),
    "int keypoint": (lambda a, d: a.update(keypoint=np.zeros((2, 7, 25, 3), np.int32)), "floating-point"),
    "duplicate": (lambda a, d: d["annotations"].append(copy.deepcopy(a)), "duplicate frame_dir"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_sample_is_named(tmp_path, case):
    fn, words = CASES[case]
    path = tmp_path / "bad.pkl"
    save_annotations(path, _break(fn))
    with pytest.raises(AnnotationError) as err:
        validate_annotations(load_annotations(path), path, layout="nturgb+d", num_classes=60)
    msg = str(err.value)
    assert str(path) in msg and BAD in msg and words in msg, msg


def test_split_with_unknown_sample(tmp_path):
    data = pyskl_data()
    data["split"]["xsub_val"].append("S009C001P009R001A009")
    with pytest.raises(AnnotationError, match=r"split 'xsub_val' names 1 unknown sample\(s\): S009C001P009R001A009"):
        validate_annotations(data, "x.pkl")


def test_wrong_layout_for_config():
    data = pyskl_data()
    validate_annotations(data, "ntu.pkl", layout=(25, 3))
    with pytest.raises(AnnotationError, match="expected 17 joints x 2 channels, got 25 x 3"):
        validate_annotations(data, "ntu.pkl", layout="coco")
    hrnet = [dict(sample(BAD, 4, v=17, c=2, dtype=np.float32), keypoint_score=np.ones((2, 7, 17), np.float32))]
    validate_annotations(hrnet, "hrnet.pkl", layout="coco", num_classes=60)
    with pytest.raises(AnnotationError, match=f"hrnet.pkl: sample {BAD}: expected 25 joints x 3 channels, got 17 x 2"):
        validate_annotations(hrnet, "hrnet.pkl", layout="nturgb+d")


# ---------------------------------------------------------------------------------------------
# NTU metadata


def test_parse_name():
    parsed = ntu_meta.parse_ntu_name("S001C002P003R002A013")
    assert parsed == {"setup": 1, "camera": 2, "performer": 3, "replication": 2, "action": 13}
    assert ntu_meta.parse_ntu_name("/x/S018C003P106R001A120.skeleton")["action"] == 120
    with pytest.raises(ValueError, match="S01C002"):
        ntu_meta.parse_ntu_name("S01C002P003R002A013")


def test_split_rules_hand_checked():
    names = [
        "S001C001P001R001A001",  # P1 train subject, camera 1 -> xview val, setup 1 odd -> xset val
        "S001C002P003R002A013",  # P3 not a training subject, camera 2 -> xview train
        "S002C003P040R001A060",  # P40 not in the list (38 and 45 are)
        "S017C003P038R002A059",  # P38 train, setup 17 still NTU-60
        "S018C001P045R001A001",  # setup 18: NTU-120 only, even -> xset train, P45 train
        "S032C002P106R002A120",  # even setup, P106 val
        "S001C002P005R002A008",
    ]  # in the missing lists
    s60 = ntu_meta.make_split(names, "ntu60")
    assert s60 == {
        "xsub_train": ["S001C001P001R001A001", "S017C003P038R002A059"],
        "xsub_val": ["S001C002P003R002A013", "S002C003P040R001A060"],
        "xview_train": ["S001C002P003R002A013", "S002C003P040R001A060", "S017C003P038R002A059"],
        "xview_val": ["S001C001P001R001A001"],
    }
    s120 = ntu_meta.make_split(names, "ntu120")
    assert s120 == {
        "xsub_train": ["S001C001P001R001A001", "S017C003P038R002A059", "S018C001P045R001A001"],
        "xsub_val": ["S001C002P003R002A013", "S002C003P040R001A060", "S032C002P106R002A120"],
        "xset_train": ["S002C003P040R001A060", "S018C001P045R001A001", "S032C002P106R002A120"],
        "xset_val": ["S001C001P001R001A001", "S001C002P003R002A013", "S017C003P038R002A059"],
    }
    with pytest.raises(ValueError, match="ntu90"):
        ntu_meta.make_split(names, "ntu90")


def test_missing_lists():
    m60, m120 = ntu_meta.ntu60_missing(), ntu_meta.ntu120_missing()
    assert len(m60) == 302 and len(m120) == 535 and m60 < m120
    # first/last entries of NTU_RGBD_samples_with_missing_skeletons.txt and ntu120_missing.txt
    assert {"S001C002P005R002A008", "S017C003P020R001A059"} <= m60
    assert {"S019C001P046R001A075", "S032C003P067R002A077"} <= m120  # first NTU-120-only and last entries
    assert "S032C003P067R002A077" not in m60
    assert "S001C001P001R001A001" not in m120


def test_class_names():
    c = ntu_meta.NTU120_CLASSES
    assert len(c) == 120 and len(ntu_meta.NTU60_CLASSES) == 60 and ntu_meta.NTU60_CLASSES == c[:60]
    assert c[0] == "drink water" and c[59] == "walking apart from each other"
    assert c[119] == "finger-guessing game (playing rock-paper-scissors)"
    assert c[49] == "punching/slapping other person" and c[60] == "put on headphone"


# ---------------------------------------------------------------------------------------------
# scripts/prepare_ntu.py end to end


def _write(folder, name, lines):
    (folder / f"{name}.skeleton").write_text("\n".join(lines) + "\n")


def _one_body_lines(n_frames, seed):
    rng = np.random.default_rng(seed)
    shape = np.stack([rng.uniform(-0.2, 0.2, 25), rng.uniform(-0.8, 0.8, 25), rng.uniform(2.8, 3.2, 25)], 1)
    lines = [str(n_frames)]
    for _ in range(n_frames):
        lines += ["1", "72057594037931101 0 0 1 0 1 0 0.01 -0.2 2", "25"]
        for x, y, z in shape + rng.normal(0, 0.01, (25, 3)):
            lines.append(f"{x:.7f} {y:.7f} {z:.7f} 261.2 203.4 961.9 511.1 0.2 0.0 0.9 0.1 2")
    return lines


@pytest.mark.parametrize("fmt, workers", [("pyskl", 2), ("mmaction0x", 1)])
def test_prepare_ntu_end_to_end(tmp_path, fmt, workers):
    raw = tmp_path / "raw"
    raw.mkdir()
    good = ["S001C001P001R001A001", "S001C002P003R002A013", "S002C002P004R001A060"]
    for i, name in enumerate(good):
        _write(raw, name, _one_body_lines(5 + i, i))
    _write(raw, "S001C003P002R001A055", _one_body_lines(4, 9))  # on the missing list: skipped
    bad = _one_body_lines(3, 7)
    _write(raw, "S001C001P005R001A010", bad[:-5])  # truncated
    _write(raw, "S018C001P001R001A001", _one_body_lines(3, 8))  # NTU-120 only: outside ntu60
    out = tmp_path / "out" / "ntu60_3danno.pkl" if fmt == "pyskl" else tmp_path / "out"  # 0.x: a folder of lists
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "prepare_ntu.py"),
            str(raw),
            str(out),
            "--benchmark",
            "ntu60",
            "--format",
            fmt,
            "--workers",
            str(workers),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    assert f"S001C001P005R001A010.skeleton:{len(bad) - 4}: unexpected end of file" in text, text
    assert "3 samples converted, 1 failed, 1 skipped as missing-skeleton" in text, text
    assert "file/s" in text or "it/s" in text or "s/file" in text, text  # tqdm counter with rate

    if fmt == "pyskl":
        data = load_annotations(out)
    else:  # MMAction2 0.x's lists, one per split, named as the '..._3d_mmaction0x' datasets look for them
        keys = ("xsub_train", "xsub_val", "xview_train", "xview_val")
        assert sorted(p.name for p in out.iterdir()) == sorted(f"ntu60_{k}.pkl" for k in keys)
        lists = {k: load_annotations(out / f"ntu60_{k}.pkl") for k in keys}
        by_name = {a["frame_dir"]: a for v in lists.values() for a in v}
        data = {"split": {k: [a["frame_dir"] for a in v] for k, v in lists.items()}, "annotations": []}
        data["annotations"] = [by_name[n] for n in sorted(by_name)]
    assert data["split"] == {
        "xsub_train": ["S001C001P001R001A001", "S002C002P004R001A060"],
        "xsub_val": ["S001C002P003R002A013"],
        "xview_train": ["S001C002P003R002A013", "S002C002P004R001A060"],
        "xview_val": ["S001C001P001R001A001"],
    }
    assert [a["frame_dir"] for a in data["annotations"]] == good
    assert [a["label"] for a in data["annotations"]] == [0, 12, 59]
    validate_annotations(data, out, layout="nturgb+d", num_classes=60)
    kp = data["annotations"][2]["keypoint"]
    assert kp.shape == ((1, 7, 25, 3) if fmt == "pyskl" else (2, 7, 25, 3))
    assert kp.dtype == (np.float16 if fmt == "pyskl" else np.float32)
