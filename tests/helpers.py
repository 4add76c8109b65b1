"""Helpers that several test modules share (the fixtures they share live in conftest.py): NTU-named synthetic
motion and raw `.skeleton` files, tiny models and configs, config files loaded by path, and the trainer and other
commands run as subprocesses. Test modules import from here, never from one another."""

import importlib.util
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
from flax import nnx

from skeljax.config import schema
from skeljax.data import ntu_meta
from skeljax.data.synthetic import TWO_PERSON, synthetic_annotation
from skeljax.models.stgcn import Recognizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_ntu_keypoints(name: str, kind: str, seed: int = 0) -> dict:
    """Synthetic motion for an NTU name: two people for mutual actions (A050-A060, A106-A120)."""
    action = ntu_meta.parse_ntu_name(name)["action"]
    two = 50 <= action <= 60 or action >= 106
    label = 10 + action % 4 if two else action % 10
    assert (label in TWO_PERSON) == two
    return synthetic_annotation(seed, label, action, kind)


def write_ntu_skeleton(path, people, drop):
    """NTU `.skeleton` text for people (M, T, 25, 3); dropped frames have no body."""
    m, t = people.shape[:2]
    lines = [str(t)]
    for f in range(t):
        if drop[f]:
            lines.append("0")
            continue
        lines.append(str(m))
        for b in range(m):
            lines.append(f"{72057594037931101 + b} 0 1 1 1 1 0 0.02764709 0.05745083 2")
            lines.append("25")
            for x, y, z in people[b, f]:
                lines.append(
                    f"{x:.7f} {y:.7f} {z:.7f} 277.419 191.8218 1036.233 519.1677 "
                    "-0.2059419 0.05349901 0.9692109 -0.1239193 2"
                )
    path.write_text("\r\n".join(lines) + "\r\n")  # the released files use Windows line ends


def run_trainer(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m skeljax.main ARGS` on the CPU from the repository root, output captured."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
    cmd = [sys.executable, "-m", "skeljax.main", *args]
    return subprocess.run(cmd, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def mode(path) -> int:
    """The permission bits of `path` (as `chmod` takes them)."""
    return stat.S_IMODE(os.stat(path).st_mode)


def load_config(ref: str):
    """`path[:arg]` relative to the repository -> that config file's get_config(arg), loaded by path."""
    path, _, arg = ref.partition(":")
    spec = importlib.util.spec_from_file_location("cfg_" + os.path.basename(path)[:-3], os.path.join(REPO, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.get_config(arg or None)


# ------------------------------------------------------------------------------------------------------------
# NTU names and raw `.skeleton` files built frame by frame (as read by PYSKL's tools/data/ntu_preproc.py)

# NTU-60 sample names over the three cameras, mutual actions (A050, A055, A060) among them.
NAMES60 = [
    "S001C001P001R001A001",
    "S001C002P003R001A002",
    "S002C003P002R002A050",
    "S003C001P007R001A060",
    "S001C002P008R002A010",
    "S017C003P040R001A023",
    "S005C001P004R002A055",
    "S010C003P010R001A031",
]

SKELETON_RNG = np.random.default_rng(1234)  # one stream for every body() of a test session, as before the move
SKELETON_NAME = "S001C002P003R002A013"


def skeleton_lines(frames):
    """frames: list of frames, each a list of (bodyID, (25, 3) xyz) -> the file's lines."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for bid, xyz in bodies:
            lines.append(f"{bid} 0 0 1 0 1 0 0.0123 -0.2345 2")
            lines.append("25")
            for x, y, z in xyz:
                lines.append(f"{x:.7f} {y:.7f} {z:.7f} 261.2 203.4 961.9 511.1 0.2 0.0 0.9 0.1 2")
    return lines


def write_skeleton(tmp_path, frames, name=SKELETON_NAME, crlf=False):
    """`name`.skeleton in tmp_path holding `frames` (see skeleton_lines); returns its path."""
    path = tmp_path / f"{name}.skeleton"
    eol = "\r\n" if crlf else "\n"
    path.write_bytes((eol.join(skeleton_lines(frames)) + eol).encode("ascii"))
    return path


def body(n_frames, scale=1.0, lying=False, offset=(0.0, 0.0, 3.0), noise=0.005):
    """(T, 25, 3) joints: an upright (tall, narrow) or lying (wide) figure; variance grows with scale."""
    xs = np.linspace(-0.2, 0.2, 25)[SKELETON_RNG.permutation(25)]
    ys = np.linspace(-0.8, 0.8, 25)[SKELETON_RNG.permutation(25)]
    zs = SKELETON_RNG.uniform(-0.1, 0.1, 25)
    shape = np.stack([ys, xs, zs] if lying else [xs, ys, zs], 1) * scale + np.asarray(offset)
    return np.round(shape[None] + SKELETON_RNG.normal(0, noise, (n_frames, 25, 3)), 7)  # exactly what the file holds


def frames_from(*tracks, length=None):
    """tracks: (bodyID, first file frame, (T, 25, 3)) -> per-frame body lists in track order."""
    length = length or max(s + k.shape[0] for _, s, k in tracks)
    frames = [[] for _ in range(length)]
    for bid, start, kpt in tracks:
        for t in range(kpt.shape[0]):
            frames[start + t].append((bid, kpt[t]))
    return frames


# ------------------------------------------------------------------------------------------------------------
# Small models and a tiny in-process training config

SMALL = {"base_channels": 8, "num_stages": 4, "inflate_stages": (3,), "down_stages": (3,)}


def small_model(spec, seed: int) -> Recognizer:
    """A tiny model with a sharpened head, so that class probabilities are far from uniform."""
    m = Recognizer(spec, rngs=nnx.Rngs(seed))
    m.head.fc.weight[...] = m.head.fc.weight[...] * 200.0
    m.eval()
    return m


# The original ST-GCN's class count per layout (Kinetics-skeleton on OpenPose, NTU-60 on NTU RGB+D).
ORIGINAL_NUM_CLASSES = {"openpose": 400, "ntu-rgb+d": 60}


def random_original(layout, seed):
    """The original ST-GCN as a PyTorch reference network, every parameter and BN buffer seeded random."""
    from torch import nn  # the PyTorch references need the test extra; the modules without them import this file

    from skeljax.testing import torch_reference as ref
    from skeljax.testing import torch_reference_original as orig

    class Holder(nn.Module):
        """Holds the network under `net.` so that ref.randomize_ recognises `edge_importance.i` as edge importance."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def example_input(self, t=24, seed=0):
            return self.net.example_input(t=t, seed=seed)

        def forward(self, x):
            return self.net(x)

    net = orig.OriginalSTGCN(layout, ORIGINAL_NUM_CLASSES[layout])
    ref.randomize_(Holder(net), seed=seed)
    return net.eval()


TINY_NUM_PER_CLASS = 3  # samples per class of the synthetic set behind tiny_config


def tiny_config(data_dir, **over):
    """The base config shrunk to two ST-GCN++ blocks of 8 channels on the synthetic 3D set in `data_dir`;
    `over` sets dotted keys ("data.feat": "b")."""
    c = schema.base_config()
    c.model.family, c.model.layout, c.model.num_classes = "stgcnpp", "nturgb+d", 14
    c.model.base_channels, c.model.num_stages = 8, 2  # two real ST-GCN++ blocks (one strided): fast to compile
    c.model.inflate_stages, c.model.down_stages = (2,), (2,)
    c.model.bn_group = 4
    c.model.tcn_dropout = 0.2  # exercises the per-step dropout keys on resume
    c.data.dataset, c.data.data_dir = "skeljax_synthetic/3d", data_dir
    c.data.builder_kwargs.num_per_class = TINY_NUM_PER_CLASS
    c.data.clip_len, c.data.test_num_clips, c.data.repeat_times = 8, 2, 1
    c.batch_size, c.eval_batch_size, c.test_batch_size = 8, 8, 4  # neither divides the val split
    c.num_epochs, c.log_every_steps = 2, 2
    c.optimizer.lr = 0.05
    c.checkpoint.keep = 1
    c.data.num_workers = 0  # worker start-up (~2 s per pass) would dominate these runs; test_train runs 2 once
    for k, v in over.items():
        node = c
        *path, leaf = k.split(".")
        for p in path:
            node = node[p]
        node[leaf] = v
    return c


# ------------------------------------------------------------------------------------------------------------
# The user-facing commands as subprocesses, on a shrunk copy of configs/demo.py

DEMO = os.path.join(REPO, "configs", "demo.py")

TINY_CONFIG = textwrap.dedent('''
    """configs/demo.py shrunk for tests: two ST-GCN++ blocks of 8 channels, 16-frame clips, tiny data."""
    import importlib.util

    import ml_collections

    _spec = importlib.util.spec_from_file_location("skeljax_demo_config", {demo!r})
    _demo = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_demo)


    def get_config(arg=None):
        c = _demo.get_config()
        c.model.base_channels, c.model.num_stages = 8, 2
        c.model.inflate_stages, c.model.down_stages = (2,), (2,)
        c.model.bn_group = 4
        c.model.tcn_dropout = 0.2          # a resumed run must reproduce the dropout masks
        c.data.data_dir = {data_dir!r}
        c.data.builder_kwargs.num_per_class = {num_per_class}
        c.data.clip_len, c.data.test_num_clips = 16, 1
        c.batch_size, c.eval_batch_size, c.test_batch_size = 8, 8, 8
        c.num_epochs, c.log_every_steps = 3, 1
        c.optimizer.lr = 0.05
        c.checkpoint.keep, c.checkpoint.every_steps = 2, 2
        c.data.num_workers = 0             # worker start-up (~2 s per pass) would dominate; test_resume uses them
        if arg == "ntu":                   # NTU-60 xsub 3D from a manual_dir pickle or .skeleton folder
            c.data.dataset, c.model.num_classes = "ntu60/xsub_3d", 60
            c.data.builder_kwargs = ml_collections.ConfigDict()
        return c
''')


def write_tiny_config(directory, data_dir, num_per_class=3) -> str:
    """TINY_CONFIG as `directory`/tiny_demo.py, its data in data_dir; returns the file's path."""
    path = os.path.join(directory, "tiny_demo.py")
    with open(path, "w") as f:
        f.write(TINY_CONFIG.format(demo=DEMO, data_dir=str(data_dir), num_per_class=num_per_class))
    return path


# Subprocesses share a persistent XLA cache: building a model eagerly is ~100 small compilations (~15 s on
# this CPU) that the cache turns into ~1 s. Set per session by the `xla_cache` fixture (conftest.py).
CLI_XLA_CACHE: list[str] = []


def cli_env(**extra) -> dict:
    """The environment of a CLI subprocess: CPU, this checkout importable, the session's XLA cache, then `extra`."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
    env.pop("XLA_FLAGS", None)
    if CLI_XLA_CACHE:
        env.update(
            JAX_COMPILATION_CACHE_DIR=CLI_XLA_CACHE[0],
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
            JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        )
    env.update(extra)
    return env


def run_cli(*args, timeout=600, env=None):
    """`python ARGS...` from the repository root; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=REPO,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def main_cmd(config, workdir, *overrides, mode="train"):
    """The arguments of `python -m skeljax.main` for one run (for run_cli or a Popen)."""
    return ["-m", "skeljax.main", "--config", config, "--workdir", workdir, "--mode", mode, *overrides]
