"""Every config imports, validates, builds its model and pipeline; every zoo row maps to a config."""

import glob
import os

import numpy as np
import pytest
from flax import nnx

from skeljax import zoo
from skeljax.config import schema
from skeljax.config.run_config import learning_rate
from skeljax.data.pipelines import make_pipeline
from skeljax.data.synthetic import generate_synthetic
from skeljax.models.stgcn import Recognizer, count_params
from tests.helpers import REPO, load_config


@pytest.fixture(scope="module")
def samples():
    """One 3D (float16, PYSKL format) and one 2D (HRNet format) annotation."""
    s3 = generate_synthetic(2, seed=0, kind="3d")["annotations"][0]
    s2 = generate_synthetic(2, seed=0, kind="2d")["annotations"][0]
    # an OpenPose-18 sample in the Kinetics-skeleton reader's form: 2 people, image fractions, scores
    rng = np.random.default_rng(0)
    so = {
        "keypoint": rng.random((2, 40, 18, 2), np.float32),
        "keypoint_score": rng.random((2, 40, 18), np.float32),
        "total_frames": 40,
        "img_shape": (1, 1),
        "label": 0,
    }
    return {"nturgb+d": s3, "coco": s2, "openpose": so}


def _check(cfg, samples):
    schema.validate(cfg)
    spec = schema.model_spec(cfg)
    model = nnx.eval_shape(lambda: Recognizer(spec))
    assert model.spec.num_classes == cfg.model.num_classes
    layout = cfg.model.layout
    for mode, clips in (("train", 1), ("test", cfg.data.test_num_clips)):
        pipe = make_pipeline(layout, cfg.data.feat, cfg.data.clip_len, clips, mode, recipe=cfg.data.recipe)
        x = pipe(samples[layout], seed=0)
        frames = 300 if (cfg.data.recipe, mode) == ("stgcn_original", "test") else cfg.data.clip_len
        assert x.shape == (clips, 2, frames, {"nturgb+d": 25, "coco": 17, "openpose": 18}[layout], 3)
        assert x.dtype == np.float32 and np.isfinite(x).all()
    return model


ALL_ROWS = zoo.zoo_rows()


def test_zoo_is_complete():
    # PYSKL ST-GCN++: 8 benchmark/annotation rows x 4 streams; PYSKL ST-GCN 8 x 4; vanilla 4 x 4; MMAction2 0.x 2;
    # the original ST-GCN 3.
    assert len(ALL_ROWS) == 32 + 32 + 16 + 2 + 3
    assert len({r.config for r in ALL_ROWS}) == len(ALL_ROWS)
    assert len({r.url for r in ALL_ROWS}) == len(ALL_ROWS)


@pytest.mark.parametrize("row", ALL_ROWS, ids=lambda r: r.config.split("/")[-1])
def test_zoo_row_builds(row, samples):
    cfg = load_config(row.config)
    _check(cfg, samples)
    bench, _, split_kind = cfg.data.dataset.partition("/")
    if row.reference.startswith("config/st_gcn/"):  # the original's folders: kinetics-skeleton, ntu-xsub, ntu-xview
        bench = "kinetics-skeleton" if bench == "kinetics_skeleton" else "ntu-" + split_kind.split("_")[0]
    assert bench in row.reference.replace("configs/skeleton/stgcn/stgcn_80e_", "")
    feat = row.reference.rsplit("/", 1)[-1][:-3] if "pyskl" in row.url else "j"
    assert cfg.data.feat == feat
    assert (cfg.model.layout == "coco") == ("hrnet" in row.reference or row.config.endswith("mmaction0x_2d"))


def test_recipes_match_the_reference_configs():
    pp = load_config("configs/stgcnpp_ntu60.py:xsub_3d_j")
    assert (pp.batch_size, learning_rate(pp), pp.optimizer.nesterov, pp.optimizer.weight_decay) == (
        128,
        0.1,
        True,
        5e-4,
    )
    pp.batch_size = 32  # linear scaling rule follows the batch size given on the command line
    assert learning_rate(pp) == 0.025
    assert (pp.num_epochs, pp.data.repeat_times, pp.data.test_num_clips, pp.optimizer.schedule) == (16, 5, 10, "cosine")
    assert count_params(Recognizer(schema.model_spec(pp))) == 1_403_144
    van = load_config("configs/stgcn_ntu60.py:vanilla_xsub_2d_b")
    assert (van.model.tcn_dropout, van.data.recipe, van.data.clip_len) == (0.5, "vanilla", 300)
    assert (van.optimizer.nesterov, van.optimizer.weight_decay, tuple(van.optimizer.milestones_epochs)) == (
        False,
        1e-4,
        (2, 10),
    )
    mm3 = load_config("configs/stgcn_ntu60.py:mmaction0x_3d")
    assert mm3.data.dataset == "ntu60/xsub_3d_mmaction0x"  # 0.x's own 3D data, never PYSKL's
    mm = load_config("configs/stgcn_ntu60.py:mmaction0x_2d")
    assert (mm.batch_size, learning_rate(mm), mm.num_epochs, tuple(mm.optimizer.milestones_epochs)) == (
        32,
        0.1,
        80,
        (10, 50),
    )
    assert (mm.test_average, mm.data.test_num_clips, mm.data.recipe) == ("score", 1, "mmaction0x")
    spec = schema.model_spec(mm)
    assert spec.family == "mmaction0x" and spec.layout == "mmaction_coco"


def test_every_config_file_loads(samples):
    files = sorted(glob.glob(os.path.join(REPO, "configs", "*.py")))
    assert len(files) >= 4
    for f in files:
        cfg = load_config(os.path.relpath(f, REPO))
        schema.validate(cfg)


@pytest.mark.parametrize(
    "bad",
    [
        "configs/stgcnpp_ntu60.py:xset_3d_j",
        "configs/stgcnpp_ntu60.py:xsub_4d_j",
        "configs/stgcn_ntu120.py:vanilla_xsub_3d_j",
        "configs/stgcn_ntu60.py:foo",
    ],
)
def test_bad_variants(bad):
    with pytest.raises(ValueError):
        load_config(bad)
