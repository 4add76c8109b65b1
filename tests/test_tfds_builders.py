"""TFDS builders built from small files in the released formats, read back through array_record sources."""

import os
import pickle

import numpy as np
import pytest

from skeljax.data import ntu_meta
from skeljax.data.ntu_raw import read_ntu_skeleton
from skeljax.data.synthetic import TWO_PERSON, generate_synthetic, in_split, sample_name
from skeljax.data.tfds_builders import load_source, make_builder
from tests.helpers import NAMES60, synthetic_ntu_keypoints, write_ntu_skeleton

# Cross-subject training subjects of NTU-60 (as in MMAction2 0.x's tools/data/skeleton/gen_ntu_rgbd_raw.py), written
# out here as an independent reference.
XSUB60_TRAIN = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}
NAMES120 = NAMES60[:4] + [
    "S018C001P041R001A061",
    "S019C002P045R002A106",
    "S024C003P100R001A120",
    "S032C001P103R002A099",
]


def _released_pickle(path, annos, split):
    """Write like mmcv.dump under NumPy 1.x: pickle protocol 2, arrays under numpy.core.multiarray."""
    data = pickle.dumps({"split": split, "annotations": annos}, protocol=2)
    data = data.replace(b"cnumpy._core.", b"cnumpy.core.")
    assert b"numpy._core" not in data
    path.write_bytes(data)


def _ntu_annos(names, kind):
    annos = []
    for n in names:
        s = synthetic_ntu_keypoints(n, kind)
        a = {
            "frame_dir": n,
            "label": ntu_meta.ntu_label(n),
            "keypoint": s["keypoint"],
            "total_frames": s["total_frames"],
        }
        if kind == "2d":
            a = {
                "frame_dir": n,
                "label": a["label"],
                "img_shape": (1080, 1920),
                "original_shape": (1080, 1920),
                "total_frames": s["total_frames"],
                "keypoint": s["keypoint"],
                "keypoint_score": s["keypoint_score"],
            }
        annos.append(a)
    return annos


def _split(names, benchmark):
    """Splits by the NTU benchmarks' rules, listed in reverse order (the builder must keep annotation order)."""

    def sub(n):
        p = ntu_meta.parse_ntu_name(n)["performer"]
        return p in XSUB60_TRAIN if benchmark == "ntu60" else p in ntu_meta.XSUB_TRAIN_SUBJECTS

    other = {"ntu60": ("xview", lambda n: n[4:8] != "C001"), "ntu120": ("xset", lambda n: int(n[1:4]) % 2 == 0)}
    key, rule = other[benchmark]
    rev = names[::-1]
    return {
        "xsub_train": [n for n in rev if sub(n)],
        "xsub_val": [n for n in rev if not sub(n)],
        f"{key}_train": [n for n in rev if rule(n)],
        f"{key}_val": [n for n in rev if not rule(n)],
    }


@pytest.fixture(scope="module")
def manual(tmp_path_factory):
    d = tmp_path_factory.mktemp("manual")
    files = {}
    for bench, names in (("ntu60", NAMES60), ("ntu120", NAMES120)):
        for kind, suffix in (("3d", "3danno"), ("2d", "hrnet")):
            annos = _ntu_annos(names, kind)
            _released_pickle(d / f"{bench}_{suffix}.pkl", annos, _split(names, bench))
            files[bench, kind] = annos
    return d, files


def _read_all(src):
    return [src[i] for i in range(len(src))]


@pytest.mark.parametrize(
    "bench,config",
    [("ntu60", "xsub_3d"), ("ntu60", "xview_3d"), ("ntu60", "xview_2d"), ("ntu120", "xset_3d"), ("ntu120", "xsub_2d")],
)
def test_pickle_builds_read_back_exactly(manual, tmp_path, bench, config):
    mdir, files = manual
    kind = config[-2:]
    annos = files[bench, kind]
    split = _split([a["frame_dir"] for a in annos], bench)
    for ours in ("train", "val"):
        src = load_source(f"{bench}/{config}", ours, tmp_path, manual_dir=mdir)
        got = _read_all(src)
        wanted = set(split[f"{config[:-3]}_{ours}"])
        expected = [a for a in annos if a["frame_dir"] in wanted]  # annotation-list order, not split order
        assert [g["frame_dir"] for g in got] == [a["frame_dir"] for a in expected]
        for g, a in zip(got, expected):
            assert set(g) == set(a)
            assert type(g["label"]) is int and g["label"] == a["label"] and g["total_frames"] == a["total_frames"]
            assert g["keypoint"].dtype == (np.float16 if kind == "3d" else np.float32)
            assert np.array_equal(g["keypoint"], a["keypoint"])
            if kind == "2d":
                assert g["keypoint_score"].dtype == np.float32
                assert np.array_equal(g["keypoint_score"], a["keypoint_score"])
                assert g["img_shape"] == (1080, 1920) and g["original_shape"] == (1080, 1920)
    names = ntu_meta.NTU60_CLASSES if bench == "ntu60" else ntu_meta.NTU120_CLASSES
    assert src.class_names == tuple(names)


def test_builds_once_then_reuses(manual, tmp_path, capsys):
    mdir, _ = manual
    load_source("ntu60/xsub_3d", "val", tmp_path, manual_dir=mdir)
    assert "Building ntu60/xsub_3d" in capsys.readouterr().err
    os.rename(mdir / "ntu60_3danno.pkl", mdir / "moved.pkl")  # a rebuild would now fail
    try:
        src = load_source("ntu60/xsub_3d", "val", tmp_path, manual_dir=mdir)
    finally:
        os.rename(mdir / "moved.pkl", mdir / "ntu60_3danno.pkl")
    assert "Building" not in capsys.readouterr().err
    assert len(src) == sum(ntu_meta.parse_ntu_name(n)["performer"] not in XSUB60_TRAIN for n in NAMES60)


def test_invalid_sample_names_file_and_sample(tmp_path):
    annos = _ntu_annos(NAMES60[:3], "3d")
    annos[1] = dict(annos[1], keypoint=annos[1]["keypoint"][:, :, :24])
    _released_pickle(tmp_path / "ntu60_3danno.pkl", annos, _split(NAMES60[:3], "ntu60"))
    with pytest.raises(ValueError, match=r"ntu60_3danno\.pkl.*S001C002P003R001A002"):
        load_source("ntu60/xsub_3d", "train", tmp_path / "data", manual_dir=tmp_path)


def test_label_out_of_range_is_refused(tmp_path):
    annos = _ntu_annos(NAMES120[4:6], "3d")
    _released_pickle(tmp_path / "ntu60_3danno.pkl", annos, _split(NAMES120[4:6], "ntu60"))
    with pytest.raises(ValueError, match=r"ntu60_3danno\.pkl.*S018C001P041R001A061.*label 60"):
        load_source("ntu60/xsub_3d", "train", tmp_path / "data", manual_dir=tmp_path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unsafe_pickle_is_refused(tmp_path):
    (tmp_path / "ntu60_hrnet.pkl").write_bytes(pickle.dumps({"split": {}, "annotations": [_Evil()]}, protocol=2))
    with pytest.raises(ValueError, match=r"ntu60_hrnet\.pkl.*refusing"):
        load_source("ntu60/xsub_2d", "train", tmp_path / "data", manual_dir=tmp_path)


def test_missing_files_explain_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("SKELJAX_NO_DOWNLOAD", "1")  # downloading is tests/test_ntu_download.py's, offline
    with pytest.raises(FileNotFoundError, match=r"(?s)ntu120_hrnet\.pkl.*download\.openmmlab\.com.*ntu120_hrnet"):
        load_source("ntu120/xset_2d", "train", tmp_path / "data", manual_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown config"):
        make_builder("ntu60/xset_3d", tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Raw .skeleton files
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("rawmanual")
    folder = root / "nturgb+d_skeletons"
    folder.mkdir()
    written = {}
    names = NAMES60[:6] + ["S018C001P041R001A061"]  # the last is NTU-120 only
    for n in names:
        s = synthetic_ntu_keypoints(n, "3d", seed=5)
        kp = s["keypoint"].astype(np.float64)
        drop = np.all(kp == 0, axis=(0, 2, 3))
        write_ntu_skeleton(folder / f"{n}.skeleton", kp, drop)
        written[n] = kp[:, ~drop]
    # a sample on the official missing list: an empty recording that must be skipped, not read
    missing = min(ntu_meta.ntu60_missing())
    (folder / f"{missing}.skeleton").write_text("0\r\n")
    return root, written


def test_raw_skeletons_build(raw_folder, tmp_path):
    root, written = raw_folder
    seen = []
    for ours, camera_rule in (("train", lambda c: c != 1), ("val", lambda c: c == 1)):
        got = _read_all(load_source("ntu60/xview_3d", ours, tmp_path, manual_dir=root))
        for g in got:
            name = g["frame_dir"]
            assert camera_rule(ntu_meta.parse_ntu_name(name)["camera"])
            assert g["label"] == ntu_meta.ntu_label(name) and g["keypoint"].dtype == np.float16
            ref = read_ntu_skeleton(root / "nturgb+d_skeletons" / f"{name}.skeleton")
            assert np.array_equal(g["keypoint"], ref["keypoint"])
            # independent check: the people written are read back (in some order), to float16 precision
            w = written[name]
            assert g["keypoint"].shape == w.shape
            got_people = sorted(g["keypoint"].astype(np.float64), key=lambda p: p[0, 0, 0])
            for p, q in zip(got_people, sorted(w, key=lambda p: p[0, 0, 0])):
                np.testing.assert_allclose(p, q, atol=4e-3)
            seen.append(name)
    assert sorted(seen) == sorted(NAMES60[:6])  # no NTU-120 sample, no missing sample


def test_raw_folder_xsub_ntu120(raw_folder, tmp_path):
    root, written = raw_folder
    train = [g["frame_dir"] for g in _read_all(load_source("ntu120/xsub_3d", "train", tmp_path, manual_dir=root))]
    val = [g["frame_dir"] for g in _read_all(load_source("ntu120/xsub_3d", "val", tmp_path, manual_dir=root))]
    assert sorted(train + val) == sorted(written)
    assert all(ntu_meta.parse_ntu_name(n)["performer"] in ntu_meta.XSUB_TRAIN_SUBJECTS for n in train)
    assert "S018C001P041R001A061" in val and "S001C001P001R001A001" in train


def test_broken_raw_file_names_the_file(tmp_path):
    folder = tmp_path / "nturgb+d_skeletons"
    folder.mkdir()
    (folder / "S001C001P001R001A001.skeleton").write_text("3\n1\nnot numbers\n")
    with pytest.raises(ValueError, match=r"nturgb\+d_skeletons.*no ntu60 sample of split xview_train"):
        load_source("ntu60/xview_3d", "val", tmp_path / "data", manual_dir=tmp_path)
    s = synthetic_ntu_keypoints("S001C002P001R001A001", "3d")["keypoint"].astype(float)
    write_ntu_skeleton(folder / "S001C002P001R001A001.skeleton", s, np.zeros(s.shape[1], bool))
    with pytest.raises(ValueError, match="S001C001P001R001A001.skeleton"):
        load_source("ntu60/xview_3d", "val", tmp_path / "data", manual_dir=tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Synthetic
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["3d", "2d"])
def test_synthetic_builder(tmp_path, kind):
    ref = generate_synthetic(3, seed=0, kind=kind)
    by_name = {a["frame_dir"]: a for a in ref["annotations"]}
    for split in ("train", "val"):
        got = _read_all(load_source(f"skeljax_synthetic/{kind}", split, tmp_path, num_per_class=3))
        assert [g["frame_dir"] for g in got] == ref["split"][split]
        for g in got:
            a = by_name[g["frame_dir"]]
            assert set(g) == set(a) and g["label"] == a["label"]
            assert g["keypoint"].dtype == a["keypoint"].dtype and np.array_equal(g["keypoint"], a["keypoint"])
    assert make_builder("skeljax_synthetic/3d", tmp_path).builder_config.num_per_class == 200


def test_synthetic_ntu60_config(tmp_path):
    """The NTU-60-shaped throughput set, small: 60 classes, 100-300 frames, 1 or 2 people, xsub split."""
    ref = generate_synthetic(3, seed=0, num_classes=60, frames=(100, 300))
    by_name = {a["frame_dir"]: a for a in ref["annotations"]}
    got = {}
    for split in ("train", "val"):
        src = load_source("skeljax_synthetic/ntu60", split, tmp_path, num_per_class=3)
        assert len(src.class_names) == 60 and src.class_names[0] == "raise left hand"
        got[split] = _read_all(src)
        assert [g["frame_dir"] for g in got[split]] == ref["split"][split]
        performers = {ntu_meta.parse_ntu_name(g["frame_dir"])["performer"] for g in got[split]}
        assert {p % 5 == 1 for p in performers} == {split == "val"}
        for g in got[split]:
            kp, a = g["keypoint"], by_name[g["frame_dir"]]
            assert kp.dtype == np.float16 and np.array_equal(kp, a["keypoint"]) and g["label"] == a["label"]
            assert 100 <= g["total_frames"] <= 300 and kp.shape == (kp.shape[0], g["total_frames"], 25, 3)
            assert kp.shape[0] == (2 if g["label"] % 14 in TWO_PERSON else 1)
    assert len(got["train"]) == 120 and len(got["val"]) == 60
    assert {g["label"] for g in got["train"]} == {g["label"] for g in got["val"]} == set(range(60))
    assert {g["keypoint"].shape[0] for g in got["train"]} == {1, 2}
    cfg = make_builder("skeljax_synthetic/ntu60", tmp_path).builder_config
    assert (cfg.kind, cfg.num_classes, cfg.min_frames, cfg.max_frames) == ("3d", 60, 100, 300)
    # the default size is NTU-60's: about 20,000 cross-subject training samples
    names = [sample_name(lab, i) for i in range(cfg.num_per_class) for lab in range(60)]
    assert sum(in_split(n, "train") for n in names) == 20_040 and sum(in_split(n, "val") for n in names) == 5_040


def test_synthetic_ntu60_from_a_training_config(tmp_path):
    """config.data.dataset / builder_kwargs reach the builder the way a training run reads its data."""
    from skeljax.config import run_config, schema
    from skeljax.data import sources

    c = schema.base_config()
    c.model.num_classes = 60
    c.data.dataset, c.data.data_dir = "skeljax_synthetic/ntu60", str(tmp_path)
    c.data.builder_kwargs.num_per_class = 2
    src = sources.load_split(run_config.resolve(c), "val")
    assert len(src) == 60 and len(src.class_names) == 60
    assert os.path.isdir(tmp_path / "skeljax_synthetic" / "ntu60_num_per_class2")
