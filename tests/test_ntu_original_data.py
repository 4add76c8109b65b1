"""The original ST-GCN's NTU input (st-gcn tools/ntu_gendata.py, tools/utils/ntu_read_skeleton.py, feeder/feeder.py):
raw Kinect x, y, z of the first two bodies each frame lists, zero-padded to 300 frames and 2 people, checked against a
line-by-line reimplementation of that conversion on hand-written `.skeleton` files; the '_3d_original' datasets,
skeljax-prepare-ntu --format original, the original configs and prediction with an original NTU checkpoint."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from skeljax.data import ntu_meta, prepare_ntu
from skeljax.data.ntu_raw import (
    EmptySkeletonError,
    SkeletonFormatError,
    original_keypoints,
    parse_skeleton_file,
    read_ntu_skeleton_original,
)
from skeljax.data.pipelines import make_pipeline
from skeljax.data.tfds_builders import load_source, make_builder
from tests.helpers import body, frames_from, load_config, random_original, write_skeleton

NAMES = [  # xsub: P001/P002 train, P003 val; xview: cameras 2 and 3 train, camera 1 val
    "S001C001P001R001A001",
    "S001C002P002R001A050",  # a mutual action: two people
    "S001C003P003R002A007",
    "S002C001P003R001A012",
]


def reference_buffer(path, max_frame=300, max_body=2):
    """The original's sample: the text read line by line into a float32 (3, 300, 25, 2) buffer, every body past
    the second dropped, frames past the file's end zero (what ntu_gendata.py's fp[i, :, :T] = read_xyz(...) holds)."""
    with open(path) as f:
        lines = iter(f.read().split("\n"))
    data = np.zeros((3, max_frame, 25, max_body), np.float32)
    for t in range(int(next(lines))):
        for m in range(int(next(lines))):
            next(lines)  # the body's info line
            for j in range(int(next(lines))):
                x, y, z = (float(v) for v in next(lines).split()[:3])
                if m < max_body:
                    data[:, t, j, m] = [x, y, z]
    return data


def as_model_input(buffer):
    """(C, T, V, M) -> the pipeline's (1, M, T, V, C)."""
    return buffer.transpose(3, 1, 2, 0)[None]


def _pipeline(mode="test"):
    return make_pipeline("nturgb+d", "j", mode=mode, recipe="stgcn_original")


# ------------------------------------------------------------------------------------------------------------
# The conversion and the recipe against the reimplementation


@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_one_body_is_the_raw_coordinates_zero_padded(tmp_path, mode):
    path = write_skeleton(tmp_path, frames_from((72057594037931101, 0, body(40))), name=NAMES[0])
    anno = read_ntu_skeleton_original(path)
    assert anno["keypoint"].shape == (1, 40, 25, 3) and anno["keypoint"].dtype == np.float32
    assert (anno["frame_dir"], anno["label"], anno["total_frames"]) == (NAMES[0], 0, 40)
    got = _pipeline(mode)(anno)  # the same input in every mode: the original trains NTU without crops or moves
    assert got.shape == (1, 2, 300, 25, 3)
    np.testing.assert_array_equal(got, as_model_input(reference_buffer(path)))
    assert np.all(got[0, 1] == 0) and np.all(got[0, 0, 40:] == 0) and np.abs(got[0, 0, :40]).min() > 0


def test_bodies_fill_slots_in_file_order_and_a_third_is_dropped(tmp_path):
    a, b, c = body(30, offset=(0, 0, 3)), body(30, offset=(1, 0, 3)), body(12, offset=(-1, 0, 4))
    frames = frames_from((7, 0, a), (8, 5, b), (9, 10, c))  # frames 10..21 list three bodies
    for t in range(20, 25):  # the second body is listed first here: it takes slot 0 (no bodyID tracking)
        frames[t] = frames[t][1:2] + frames[t][:1] + frames[t][2:]
    frames[28] = []  # a frame without a body stays zero
    path = write_skeleton(tmp_path, frames, name=NAMES[1])
    kp = read_ntu_skeleton_original(path)["keypoint"]
    assert kp.shape == (2, 35, 25, 3)
    np.testing.assert_array_equal(kp[0, 22], np.float32(b[17]))
    np.testing.assert_array_equal(kp[1, 22], np.float32(a[22]))
    np.testing.assert_array_equal(kp[1, :5], 0)  # body 8 starts at frame 5
    np.testing.assert_array_equal(kp[:, 28], 0)
    np.testing.assert_array_equal(_pipeline()(read_ntu_skeleton_original(path)), as_model_input(reference_buffer(path)))


def test_300_frames_fit_longer_files_and_empty_files_are_refused(tmp_path):
    path = write_skeleton(tmp_path, frames_from((1, 0, body(300))), name=NAMES[2])
    np.testing.assert_array_equal(_pipeline()(read_ntu_skeleton_original(path)), as_model_input(reference_buffer(path)))
    long = write_skeleton(tmp_path, frames_from((1, 0, body(301))), name=NAMES[3])
    with pytest.raises(SkeletonFormatError, match=rf"{NAMES[3]}\.skeleton.*at most 300 frames, the file has 301"):
        read_ntu_skeleton_original(long)
    assert original_keypoints(parse_skeleton_file(long), long, max_frames=None).shape == (1, 301, 25, 3)
    with pytest.raises(EmptySkeletonError, match="no skeleton"):
        read_ntu_skeleton_original(write_skeleton(tmp_path, [[], [], []], name=NAMES[0]))
    with pytest.raises(ValueError, match="fixed 300-frame NTU input"):
        make_pipeline("nturgb+d", "j", mode="test", recipe="stgcn_original", clip_len=100)


# ------------------------------------------------------------------------------------------------------------
# The '_3d_original' datasets and skeljax-prepare-ntu --format original


def _raw_folder(folder, names):
    folder.mkdir(parents=True)
    for k, n in enumerate(names):
        tracks = [(1, 0, body(20 + 3 * k))]
        if ntu_meta.ntu_label(n) >= 49:  # mutual actions: a second person
            tracks.append((2, 2, body(10, offset=(1, 0, 3))))
        write_skeleton(folder, frames_from(*tracks), name=n)
    return folder


def _read_all(src):
    return [src[i] for i in range(len(src))]


def test_raw_folder_builds_the_original_datasets(tmp_path):
    missing = sorted(ntu_meta.ntu60_missing())[0]  # in the benchmark's missing-skeleton list: ignored, as st-gcn does
    raw = _raw_folder(tmp_path / "nturgb+d_skeletons", NAMES + [missing])
    (tmp_path / "ntu60_3danno.pkl").write_bytes(b"not a pickle: PYSKL's data must not be read for the original")
    want = {
        "xsub": ({"train": NAMES[:2], "val": NAMES[2:]}),
        "xview": {"train": NAMES[1:3], "val": [NAMES[0], NAMES[3]]},
    }
    for bench, parts in want.items():
        for part, names in parts.items():
            got = _read_all(load_source(f"ntu60/{bench}_3d_original", part, tmp_path / "data", manual_dir=tmp_path))
            assert [g["frame_dir"] for g in got] == names
            for g in got:
                ref = reference_buffer(raw / f"{g['frame_dir']}.skeleton")
                assert g["keypoint"].dtype == np.float32 and g["label"] == ntu_meta.ntu_label(g["frame_dir"])
                np.testing.assert_array_equal(_pipeline()(g), as_model_input(ref))
    assert make_builder("ntu60/xsub_3d_original", tmp_path).info.features["keypoint"].np_dtype == np.float32
    with pytest.raises(ValueError, match="xset_3d_original"):
        make_builder("ntu120/xset_3d_original", tmp_path)


def test_prepare_ntu_writes_the_pickle_the_builder_reads(tmp_path, capsys):
    raw = _raw_folder(tmp_path / "raw", NAMES)
    write_skeleton(raw, frames_from((1, 0, body(320))), name="S001C001P001R001A003")  # too long for the original
    out = tmp_path / "manual" / "ntu60_3danno_original.pkl"
    assert prepare_ntu.main([str(raw), str(out), "--format", "original", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "4 samples converted, 1 failed" in text and "at most 300 frames, the file has 320" in text
    data = pickle.loads(out.read_bytes())
    assert data["split"]["xsub_train"] == NAMES[:2] and data["split"]["xview_val"] == [NAMES[0], NAMES[3]]
    for a in data["annotations"]:
        assert a["keypoint"].dtype == np.float32
        np.testing.assert_array_equal(
            a["keypoint"], read_ntu_skeleton_original(raw / f"{a['frame_dir']}.skeleton")["keypoint"]
        )
    raw.rename(tmp_path / "elsewhere")  # the builder reads the pickle
    got = _read_all(load_source("ntu60/xsub_3d_original", "val", tmp_path / "data", manual_dir=out.parent))
    assert [g["frame_dir"] for g in got] == NAMES[2:]
    for g, a in zip(got, data["annotations"][2:]):
        np.testing.assert_array_equal(g["keypoint"], a["keypoint"])
    assert (
        prepare_ntu.main([str(tmp_path / "elsewhere"), str(out), "--format", "original", "--benchmark", "ntu120"]) == 1
    )
    assert "NTU-60 only" in capsys.readouterr().err


def test_a_float16_pickle_under_the_original_name_is_refused(tmp_path):
    anno = {"frame_dir": NAMES[0], "label": 0, "total_frames": 5, "keypoint": np.zeros((1, 5, 25, 3), np.float16)}
    split = {k: [NAMES[0]] for k in ("xsub_train", "xsub_val", "xview_train", "xview_val")}
    (tmp_path / "ntu60_3danno_original.pkl").write_bytes(pickle.dumps({"split": split, "annotations": [anno]}))
    with pytest.raises(
        ValueError, match=r"ntu60_3danno_original\.pkl: sample S001C001P001R001A001: keypoint is float16"
    ):
        load_source("ntu60/xsub_3d_original", "train", tmp_path / "data", manual_dir=tmp_path)


# ------------------------------------------------------------------------------------------------------------
# Configs, zoo rows and prediction


def test_original_configs_and_zoo_rows_use_the_original_input():
    from skeljax.predict.settings import row_settings
    from skeljax.zoo import find_row

    for split in ("xsub", "xview"):
        c = load_config(f"configs/stgcn_ntu60.py:original_{split}")
        assert (c.data.dataset, c.data.recipe, c.data.clip_len) == (f"ntu60/{split}_3d_original", "stgcn_original", 300)
        settings = row_settings(find_row(f"stgcn_original_ntu60_{split}_3d_j"))
        assert settings["recipe"] == "stgcn_original" and settings["feat"] == "j"


def test_predict_a_skeleton_file_as_the_original_network_does(tmp_path):
    import torch

    from skeljax import predict

    net = random_original("ntu-rgb+d", seed=11)
    pt = tmp_path / "st_gcn.ntu-xsub.pt"
    torch.save(net.state_dict(), pt)
    path = write_skeleton(tmp_path, frames_from((1, 0, body(60)), (2, 4, body(50, offset=(1, 0, 3)))), name=NAMES[1])
    with torch.no_grad():
        logits = net(torch.from_numpy(reference_buffer(path)[None])).numpy()
    want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    pred = predict.predict(str(pt), str(path))  # no --recipe: the original family reads .skeleton the original way
    np.testing.assert_allclose(pred.probs, want, rtol=1e-4, atol=1e-7)
    assert pred.labels == [ntu_meta.ntu_label(NAMES[1])]

    long = write_skeleton(tmp_path, frames_from((1, 0, body(330))), name=NAMES[0])
    with pytest.raises(predict.PredictError, match=r"330 frames, more than the padded length 300"):
        predict.predict(str(pt), str(long))
    windows = predict.predict_windows(str(pt), str(long), window=300, stride=300)
    assert [(w.start, w.end) for w in windows] == [(0, 300), (30, 330)]


# ------------------------------------------------------------------------------------------------------------
# End to end: configs/stgcn_ntu60.py:original_xsub trains and tests from a raw folder in the manual dir.

SMALL_ORIGINAL = """
import importlib.util

_spec = importlib.util.spec_from_file_location("stgcn_ntu60", {path!r})
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


def get_config(arg=None):
    c = _module.get_config("original_xsub")
    with c.unlocked():
        c.model.base_channels = 8  # a CPU-sized width; everything else is the original recipe
    return c
"""


@pytest.mark.slow
def test_original_xsub_config_trains_and_tests_from_a_raw_folder(tmp_path):
    import json
    import textwrap

    from tests.helpers import REPO, run_trainer

    data_dir, workdir = tmp_path / "tfds", tmp_path / "run"
    manual = data_dir / "downloads" / "manual"
    raw = _raw_folder(manual / "nturgb+d_skeletons", NAMES)
    (manual / "ntu60_3danno.pkl").write_bytes(b"broken: the original config must never read PYSKL's pickle")
    cfg = tmp_path / "small_original.py"
    cfg.write_text(textwrap.dedent(SMALL_ORIGINAL.format(path=str(Path(REPO) / "configs" / "stgcn_ntu60.py"))))
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
    proc = run_trainer("--config", str(cfg), "--workdir", str(workdir), "--mode", "test", *flags)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert [d for d in os.listdir(data_dir / "ntu60") if not d.startswith(".")] == ["xsub_3d_original"]
    for g in _read_all(load_source("ntu60/xsub_3d_original", "val", data_dir, manual_dir=manual)):
        np.testing.assert_array_equal(
            _pipeline()(g), as_model_input(reference_buffer(raw / f"{g['frame_dir']}.skeleton"))
        )
