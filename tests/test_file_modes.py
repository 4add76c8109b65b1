"""Files and folders skeljax writes atomically get the permissions a plain open()/mkdir would give them."""

import os

import numpy as np

from skeljax.data.annotations import save_annotations
from skeljax.io import file_modes
from skeljax.io import pth as pth_io
from skeljax.models import model_dir
from skeljax.models.stgcn import Recognizer, stgcnpp_spec
from tests.helpers import mode


def test_default_mode_follows_umask(umask_027):
    assert file_modes.default_mode() == 0o640
    assert file_modes.default_mode(directory=True) == 0o750


def test_written_files_and_folders_are_not_private(tmp_path, umask_027):
    save_annotations(
        tmp_path / "a.pkl",
        [{"frame_dir": "x", "label": 0, "total_frames": 1, "keypoint": np.zeros((1, 1, 25, 3), np.float32)}],
    )
    assert mode(tmp_path / "a.pkl") == 0o640  # mkstemp alone gives 0o600
    pth_io.save_pth(tmp_path / "m.pth", {"w": np.ones(3, np.float32)})
    assert mode(tmp_path / "m.pth") == 0o640
    model = Recognizer(stgcnpp_spec(5, base_channels=8))
    model_dir.save_model(str(tmp_path / "ckpt"), model)
    assert mode(tmp_path / "ckpt") == 0o750  # mkdtemp alone gives 0o700
    # an existing file keeps its mode when it is replaced
    os.chmod(tmp_path / "m.pth", 0o604)
    pth_io.save_pth(tmp_path / "m.pth", {"w": np.zeros(3, np.float32)})
    assert mode(tmp_path / "m.pth") == 0o604
