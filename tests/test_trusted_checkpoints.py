"""The documented opt-in for `.pth` files that hold more than tensors (docs/converting_checkpoints.md, "Safety"):
`skeljax-predict --trusted` and `--config.init_from.trusted=True`. Without it such a file is refused with one
`error:` line naming the file and the global; with it the same file loads through torch.load and gives exactly the
predictions of the same weights saved without the extra object. (`skeljax-convert --trusted` and
`load_pytorch_checkpoint(trusted=True)`: tests/test_reliability.py, tests/test_pth_io.py.)"""

import argparse
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from skeljax import predict as P
from skeljax.data import generate_synthetic
from skeljax.testing import torch_reference as tr

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = {"base_channels": 8, "num_stages": 4, "inflate_stages": [3], "down_stages": [3]}
REFUSED = "refusing to unpickle 'argparse.Namespace'"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small PYSKL ST-GCN++ saved twice: as released (tensors only) and with an argparse.Namespace in its meta,
    which the allow-list does not admit; and a short synthetic clip."""
    d = tmp_path_factory.mktemp("trusted")
    backbone = tr.mmaction_stgcn_class()(**tr.pyskl_backbone_kwargs("stgcnpp", "nturgb+d"), **SMALL)
    model = tr.randomize_(tr.PysklRecognizer(backbone, tr.GCNHeadRef(14, 16), "nturgb+d"), seed=2).eval()
    clean = tr.save_released_checkpoint(model, d / "clean.pth", style="pyskl")
    extra = d / "with_namespace.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"args": argparse.Namespace(lr=0.1)}}, extra)
    anno = generate_synthetic(2, seed=4)["annotations"][3]
    np.save(d / "clip.npy", anno["keypoint"][:, :40].astype(np.float32))
    return {"dir": d, "clean": str(clean), "extra": str(extra), "npy": str(d / "clip.npy")}


def test_predict_refuses_the_file_unless_trusted(files, capsys):
    args = ["--checkpoint", files["extra"], "--input", files["npy"], "--json", "--labels", "synthetic"]
    assert P.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and files["extra"] in err[0] and REFUSED in err[0], err

    assert P.main(args + ["--trusted"]) == 0
    trusted = capsys.readouterr().out
    assert P.main(["--checkpoint", files["clean"], *args[2:]]) == 0
    clean = capsys.readouterr().out
    assert json.loads(trusted) == json.loads(clean) and len(json.loads(clean)["top5"]) == 5


CONFIG = textwrap.dedent(f"""
    from skeljax.config import schema

    def get_config(arg=None):
        c = schema.base_config()
        c.model.num_classes = 14
        c.model.base_channels, c.model.num_stages = {SMALL["base_channels"]}, {SMALL["num_stages"]}
        c.model.inflate_stages, c.model.down_stages = (3,), (3,)
        c.data.dataset = "skeljax_synthetic/3d"
        c.data.builder_kwargs.num_per_class = 2
        c.data.clip_len, c.data.test_num_clips = 12, 2
        c.data.num_workers = 0
        c.test_batch_size = 8
        return c
""")


def run_test_mode(tmp_path, name, path, *extra):
    cfg = tmp_path / "cfg.py"
    cfg.write_text(CONFIG)
    cmd = [sys.executable, "-m", "skeljax.main", "--config", str(cfg), "--workdir", str(tmp_path / name)]
    cmd += ["--mode", "test", f"--config.data.data_dir={tmp_path / 'tfds'}", f"--config.init_from.path={path}", *extra]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=900, check=False)


@pytest.mark.slow  # three runs of the trainer's test mode (~2.5 min on 2 cores)
def test_init_from_refuses_the_file_unless_trusted(files, tmp_path):
    proc = run_test_mode(tmp_path, "refused", files["extra"])
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and files["extra"] in last and REFUSED in last, last
    assert not (tmp_path / "refused" / "test_scores_init.npz").exists()

    trusted = run_test_mode(tmp_path, "trusted", files["extra"], "--config.init_from.trusted=True")
    assert trusted.returncode == 0, trusted.stderr[-3000:]
    clean = run_test_mode(tmp_path, "clean", files["clean"])
    assert clean.returncode == 0, clean.stderr[-3000:]
    with (
        np.load(tmp_path / "trusted" / "test_scores_init.npz") as a,
        np.load(tmp_path / "clean" / "test_scores_init.npz") as b,
    ):
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
