"""MMAction2 0.x's own NTU 3D data: its dataset configs ('..._3d_mmaction0x'), float32 records, list-form pickles
read by the builder and the 'pickle' dataset, written by skeljax-prepare-ntu --format mmaction0x, and a run of
configs/stgcn_ntu60.py:mmaction0x_3d from a raw folder."""

import json
import os
import pickle
import textwrap

import numpy as np
import pytest

from skeljax.data import ntu_meta, pickle_source, prepare_ntu
from skeljax.data.annotations import AnnotationError, load_annotations
from skeljax.data.ntu_raw import read_ntu_skeleton_mmaction0x
from skeljax.data.tfds_builders import load_source, make_builder
from tests.helpers import NAMES60, REPO, run_trainer, synthetic_ntu_keypoints, write_ntu_skeleton


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
        kp = synthetic_ntu_keypoints(n, "3d", seed=2)["keypoint"].astype(np.float64)
        drop = np.all(kp == 0, axis=(0, 2, 3))
        write_ntu_skeleton(folder / f"{n}.skeleton", kp, drop)
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


def _raw_folder(folder, names, seed=2):
    """Hand-made `.skeleton` files of synthetic motion (two people for mutual actions, some frames without bodies)."""
    folder.mkdir(parents=True)
    for n in names:
        kp = synthetic_ntu_keypoints(n, "3d", seed=seed)["keypoint"].astype(np.float64)
        write_ntu_skeleton(folder / f"{n}.skeleton", kp, np.all(kp == 0, axis=(0, 2, 3)))
    return folder


# ------------------------------------------------------------------------------------------------------------
# The 'pickle' dataset: a {split} placeholder in ann_file names one list-form file per split.


def test_pickle_dataset_reads_list_files_by_split_placeholder(tmp_path):
    train = [_sample(n, k) for k, n in enumerate(NAMES60[3:0:-1])]
    val = [_sample(NAMES60[0], 5)]
    for part, annos in (("train", train), ("val", val)):
        (tmp_path / f"ntu60_xsub_{part}.pkl").write_bytes(pickle.dumps(annos, protocol=2))
    pattern = str(tmp_path / "ntu60_xsub_{split}.pkl")
    for part, annos in (("train", train), ("val", val)):
        src = pickle_source.load_split(pattern, part, "nturgb+d", 60)
        got = _read_all(src)
        assert [g["frame_dir"] for g in got] == [a["frame_dir"] for a in annos]  # the whole file, in its order
        for g, a in zip(got, annos):
            assert g["keypoint"].dtype == np.float32 and g["label"] == a["label"]
            np.testing.assert_array_equal(g["keypoint"], a["keypoint"])
        assert src.class_names == tuple(f"class_{i}" for i in range(60))
    with pytest.raises(AnnotationError, match=r"ntu60_xsub_test\.pkl: cannot read"):
        pickle_source.load_split(pattern, "test", "nturgb+d", 60)
    with pytest.raises(AnnotationError, match=r"ntu60_xsub_train\.pkl: sample .*label"):
        pickle_source.load_split(pattern, "train", "nturgb+d", 3)  # validated like a PYSKL file


def test_pickle_dataset_refuses_mixed_forms(tmp_path):
    listed = tmp_path / "ntu60_xsub_train.pkl"
    listed.write_bytes(pickle.dumps([_sample(NAMES60[1], 0)]))
    with pytest.raises(AnnotationError, match=r"ntu60_xsub_train\.pkl: a list of sample dicts .*\{split\}"):
        pickle_source.load_split(str(listed), "train", "nturgb+d", 60)
    whole = tmp_path / "all_val.pkl"
    whole.write_bytes(pickle.dumps({"split": {"val": [NAMES60[1]]}, "annotations": [_sample(NAMES60[1], 0)]}))
    with pytest.raises(AnnotationError, match=r"all_val\.pkl: split 'val': .*PYSKL's"):
        pickle_source.load_split(str(tmp_path / "all_{split}.pkl"), "val", "nturgb+d", 60)
    (tmp_path / "empty_train.pkl").write_bytes(pickle.dumps([]))
    with pytest.raises(AnnotationError, match=r"empty_train\.pkl: split 'train': the file has no samples"):
        pickle_source.load_split(str(tmp_path / "empty_{split}.pkl"), "train", "nturgb+d", 60)
    (tmp_path / "nosplit.pkl").write_bytes(pickle.dumps({"annotations": [_sample(NAMES60[1], 0)]}))
    with pytest.raises(AnnotationError, match=r"nosplit\.pkl: expected a PYSKL .* or MMAction2 0\.x's list .*'split'"):
        pickle_source.load_split(str(tmp_path / "nosplit.pkl"), "train", "nturgb+d", 60)


# ------------------------------------------------------------------------------------------------------------
# skeljax-prepare-ntu --format mmaction0x writes the lists the builder reads.


def test_prepare_ntu_writes_the_lists_the_builder_reads(tmp_path, capsys):
    names = NAMES60[:6]
    raw = _raw_folder(tmp_path / "raw", names + ["S018C001P041R001A061"])  # NTU-120 only: left out
    manual = tmp_path / "manual"
    assert prepare_ntu.main([str(raw), str(manual), "--format", "mmaction0x", "--quiet"]) == 0
    assert "6 samples converted" in capsys.readouterr().out
    files = {p.name for p in manual.iterdir()}
    assert files == {f"ntu60_{b}_{p}.pkl" for b in ("xsub", "xview") for p in ("train", "val")}
    want = {n: read_ntu_skeleton_mmaction0x(raw / f"{n}.skeleton") for n in names}
    rules = {"xsub": ntu_meta.is_xsub_train, "xview": ntu_meta.is_xview_train}
    for bench, is_train in rules.items():
        for part in ("train", "val"):
            annos = load_annotations(manual / f"ntu60_{bench}_{part}.pkl")
            assert isinstance(annos, list)  # MMAction2 0.x's form: the list of sample dicts
            assert [a["frame_dir"] for a in annos] == [n for n in sorted(names) if is_train(n) == (part == "train")]
            for a in annos:
                assert a["keypoint"].dtype == np.float32 and a["label"] == ntu_meta.ntu_label(a["frame_dir"])
                np.testing.assert_array_equal(a["keypoint"], want[a["frame_dir"]]["keypoint"])
    raw_gone = tmp_path / "elsewhere"
    raw.rename(raw_gone)  # the builder reads the lists, not a raw folder
    for bench in rules:
        for part in ("train", "val"):
            got = _read_all(load_source(f"ntu60/{bench}_3d_mmaction0x", part, tmp_path / "data", manual_dir=manual))
            annos = load_annotations(manual / f"ntu60_{bench}_{part}.pkl")
            assert [g["frame_dir"] for g in got] == [a["frame_dir"] for a in annos]
            for g, a in zip(got, annos):
                assert g["keypoint"].dtype == np.float32
                np.testing.assert_array_equal(g["keypoint"], a["keypoint"])


def test_prepare_ntu_mmaction0x_wants_a_folder(tmp_path, capsys):
    raw = _raw_folder(tmp_path / "raw", NAMES60[:1])
    assert prepare_ntu.main([str(raw), str(tmp_path / "ntu60_3danno.pkl"), "--format", "mmaction0x"]) == 1
    assert "ntu60_3danno.pkl: with --format mmaction0x, OUT is a folder" in capsys.readouterr().err
    assert not (tmp_path / "ntu60_3danno.pkl").exists()


# ------------------------------------------------------------------------------------------------------------
# End to end: configs/stgcn_ntu60.py:mmaction0x_3d trains and tests from a raw folder in the manual dir.

SMALL_0X = """
import importlib.util

_spec = importlib.util.spec_from_file_location("stgcn_ntu60", {path!r})
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


def get_config(arg=None):
    c = _module.get_config("mmaction0x_3d")
    with c.unlocked():
        c.model.base_channels = 8  # a CPU-sized width; everything else is the 0.x recipe
    return c
"""


@pytest.mark.slow
def test_mmaction0x_3d_config_trains_and_tests_from_a_raw_folder(tmp_path):
    data_dir, workdir = tmp_path / "tfds", tmp_path / "run"
    manual = data_dir / "downloads" / "manual"
    names = NAMES60[:4]  # xsub: P001, P002 train; P003, P007 val
    raw = _raw_folder(manual / "nturgb+d_skeletons", names)
    (manual / "ntu60_3danno.pkl").write_bytes(b"broken: the 0.x config must never read PYSKL's pickle")
    cfg = tmp_path / "small_0x.py"
    cfg.write_text(textwrap.dedent(SMALL_0X.format(path=os.path.join(REPO, "configs", "stgcn_ntu60.py"))))
    flags = [
        f"--config.data.data_dir={data_dir}",
        "--config.batch_size=2",
        "--config.model.bn_group=2",
        "--config.eval_batch_size=2",
        "--config.test_batch_size=2",
        "--config.num_epochs=2",
        "--config.eval_every_epochs=1",
        "--config.checkpoint.every_epochs=1",
        "--config.log_every_steps=1",
        "--config.compilation_cache_dir=",
    ]
    proc = run_trainer("--config", str(cfg), "--workdir", str(workdir), *flags)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(workdir / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f if line.strip()]
    assert any("train/loss" in r and np.isfinite(r["train/loss"]) for r in records)
    assert any("val/top1" in r for r in records)
    assert (workdir / "final").is_dir()
    proc = run_trainer("--config", str(cfg), "--workdir", str(workdir), "--mode", "test", *flags)
    assert proc.returncode == 0, proc.stderr[-4000:]

    # The dataset built is 0.x's: its own folder, float32 records converted the 0.x way; PYSKL's was never made.
    assert [d for d in os.listdir(data_dir / "ntu60") if not d.startswith(".")] == ["xsub_3d_mmaction0x"]
    for part, want in (("train", names[0::2]), ("val", names[1::2])):
        got = _read_all(load_source("ntu60/xsub_3d_mmaction0x", part, data_dir, manual_dir=manual))
        assert [g["frame_dir"] for g in got] == want
        for g in got:
            ref = read_ntu_skeleton_mmaction0x(raw / f"{g['frame_dir']}.skeleton")["keypoint"]
            assert g["keypoint"].dtype == np.float32
            np.testing.assert_array_equal(g["keypoint"], ref)
