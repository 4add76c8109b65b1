"""MMAction2 0.x's own NTU 3D data: its dataset configs ('..._3d_mmaction0x'), float32 records, list-form pickles."""

import pickle

import numpy as np
import pytest

from skeljax.data import ntu_meta
from skeljax.data.ntu_raw import read_ntu_skeleton_mmaction0x
from skeljax.data.tfds_builders import load_source, make_builder
from tests.test_tfds_builders import NAMES60, _synthetic_keypoints, _write_skeleton


def _read_all(src):
    return [src[i] for i in range(len(src))]


def _sample(name, seed):
    """A 0.x-style sample: float32 (2, T, 25, 3) with values float16 cannot hold exactly."""
    kp = np.random.RandomState(seed).uniform(-1, 1, (2, 7 + seed, 25, 3)).astype(np.float32)
    return {
        "frame_dir": name,
        "label": ntu_meta.ntu_label(name),
        "keypoint": kp,
        "total_frames": kp.shape[1],
        "img_shape": (1080, 1920),
        "original_shape": (1080, 1920),
    }


def test_list_pickles_are_read_as_they_are(tmp_path):
    train = [_sample(n, k) for k, n in enumerate(NAMES60[3:0:-1])]  # any order: the list's order is kept
    val = [_sample(NAMES60[0], 5)]
    for part, annos in (("train", train), ("val", val)):
        (tmp_path / f"ntu60_xsub_{part}.pkl").write_bytes(pickle.dumps(annos, protocol=2))
    for part, annos in (("train", train), ("val", val)):
        got = _read_all(load_source("ntu60/xsub_3d_mmaction0x", part, tmp_path / "data", manual_dir=tmp_path))
        assert [g["frame_dir"] for g in got] == [a["frame_dir"] for a in annos]
        for g, a in zip(got, annos):
            assert g["keypoint"].dtype == np.float32 and g["label"] == a["label"]
            np.testing.assert_array_equal(g["keypoint"], a["keypoint"])  # no float16 rounding


def test_raw_folder_is_converted_the_0x_way_not_pyskls(tmp_path):
    folder = tmp_path / "nturgb+d_skeletons"
    folder.mkdir()
    for n in NAMES60[:4]:
        kp = _synthetic_keypoints(n, "3d", seed=2)["keypoint"].astype(np.float64)
        drop = np.all(kp == 0, axis=(0, 2, 3))
        _write_skeleton(folder / f"{n}.skeleton", kp, drop)
    (tmp_path / "ntu60_3danno.pkl").write_bytes(b"not a pickle: PYSKL data must not be read for 0.x configs")
    got = {}
    for part in ("train", "val"):
        for g in _read_all(load_source("ntu60/xview_3d_mmaction0x", part, tmp_path / "data", manual_dir=tmp_path)):
            got[g["frame_dir"]] = g
    assert sorted(got) == sorted(NAMES60[:4])
    for name, g in got.items():
        want = read_ntu_skeleton_mmaction0x(folder / f"{name}.skeleton")
        assert g["keypoint"].dtype == np.float32
        np.testing.assert_array_equal(g["keypoint"], want["keypoint"])
    with pytest.raises(ValueError, match="ntu60_3danno.pkl"):  # the PYSKL config does read that file
        load_source("ntu60/xview_3d", "val", tmp_path / "data2", manual_dir=tmp_path)


def test_missing_or_wrong_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ntu120_xset_train\.pkl .*MMAction2 0\.x annotation lists"):
        load_source("ntu120/xset_3d_mmaction0x", "train", tmp_path / "data", manual_dir=tmp_path)
    for part in ("train", "val"):
        (tmp_path / f"ntu60_xsub_{part}.pkl").write_bytes(pickle.dumps({"annotations": [_sample(NAMES60[0], 1)]}))
    with pytest.raises(ValueError, match=r"ntu60_xsub_train\.pkl: expected MMAction2 0\.x's list of sample dicts"):
        load_source("ntu60/xsub_3d_mmaction0x", "train", tmp_path / "data", manual_dir=tmp_path)
    assert make_builder("ntu60/xsub_3d_mmaction0x", tmp_path).info.features["keypoint"].np_dtype == np.float32
    assert make_builder("ntu60/xsub_3d", tmp_path).info.features["keypoint"].np_dtype == np.float16
