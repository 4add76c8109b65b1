"""Bad input, end to end through the user-facing commands: each case exits non-zero with a message naming the
file or field and the problem, and leaves existing checkpoints and datasets byte-for-byte unchanged (hashed
before and after). Unit tests of the same checks live beside their modules (table in docs/reliability.md).

The end-to-end helpers (a shrunk copy of configs/demo.py, `run_cli`) are in tests/helpers.py.
"""

import hashlib
import os
import pickle

import numpy as np
import pytest

from tests.helpers import cli_env, main_cmd, run_cli, write_tiny_config


def digest(path) -> dict[str, str]:
    """{relative path: sha256} of every file under `path` (or of the file itself)."""
    path = str(path)
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return {"": hashlib.sha256(f.read()).hexdigest()}
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, path)] = hashlib.sha256(f.read()).hexdigest()
    return out


def last_error(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert lines, proc.stderr[-3000:]
    return lines[-1]


# ------------------------------------------------------------------------------------------------------------
# Fixtures: a built synthetic dataset and an existing run directory, both hashed by the tests.
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory, xla_cache):
    from skeljax.data.tfds_builders import load_source

    root = tmp_path_factory.mktemp("reliability")
    data_dir = root / "tfds"
    load_source("skeljax_synthetic/3d", "train", str(data_dir), num_per_class=3)
    config = write_tiny_config(str(root), data_dir)
    return {"root": root, "data_dir": data_dir, "config": config}


def _existing_run(env, name, *, base_channels=16, with_signature=True):
    """A run directory holding a checkpoint of the tiny model with `base_channels` (written in a subprocess that
    shares the CLI's XLA cache)."""
    workdir = env["root"] / name
    proc = run_cli(
        "-c",
        "import sys; from tests.test_reliability import make_run; make_run(*sys.argv[1:])",
        env["config"],
        workdir,
        base_channels,
        int(with_signature),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def make_run(config_path, workdir, base_channels, with_signature):
    """Save a step-4 checkpoint as the trainer does (state, data, meta with the run signature) and config.json."""
    from skeljax import train
    from skeljax.train.checkpoints import RunCheckpoints, run_signature

    config = _load_config(config_path)
    config.model.base_channels = int(base_channels)
    parts = train.TrainParts(train.create_model(config), train.make_tx(config, 30, 10)[0])
    ckpts = RunCheckpoints(os.path.join(workdir, "checkpoints"), keep=2)
    meta = {"step": 4, "epoch": 0, "best": {"val/top1": -1.0, "step": -1}, "val": {}}
    if int(with_signature):
        meta["run"] = run_signature(config)
    ckpts.save(4, parts.state, {"note": "data iterator state is not reached: the run is refused first"}, meta)
    ckpts.close()
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json_best_effort())


def _load_config(path, arg=None):
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_cfg", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.get_config(arg)


# ------------------------------------------------------------------------------------------------------------
# Workdir: checkpoint of another model, unwritable.
# ------------------------------------------------------------------------------------------------------------


def test_workdir_with_a_checkpoint_of_another_model_is_refused_untouched(env):
    workdir = _existing_run(env, "other_model")
    before = digest(workdir)
    proc = run_cli(*main_cmd(env["config"], workdir))
    assert proc.returncode == 1
    msg = last_error(proc)
    assert f"{workdir}/checkpoints/4" in msg and "another model" in msg, msg
    assert "model.base_channels: checkpoint 16, config 8" in msg, msg
    assert digest(workdir) == before  # config.json, checkpoint files: all unchanged


def test_checkpoint_without_signature_is_refused_by_shape(env):
    """Checkpoints of older versions carry no run signature: array shapes are still compared before restoring."""
    workdir = _existing_run(env, "old_other_model", with_signature=False)
    before = digest(workdir)
    proc = run_cli(*main_cmd(env["config"], workdir))
    assert proc.returncode == 1
    msg = last_error(proc)
    assert f"{workdir}/checkpoints/4" in msg and "another shape" in msg and "saved (16,), run (8,)" in msg, msg
    assert digest(workdir) == before


def test_unwritable_workdir_fails_before_any_work(env):
    blocker = env["root"] / "a_file"
    blocker.write_text("not a directory")
    data_before = digest(env["data_dir"])
    proc = run_cli(*main_cmd(env["config"], blocker / "run"))
    assert proc.returncode == 1
    msg = last_error(proc)
    assert f"{blocker}/run" in msg and "cannot be created or written" in msg, msg
    assert "Building" not in proc.stderr and digest(env["data_dir"]) == data_before
    assert blocker.read_text() == "not a directory"


# ------------------------------------------------------------------------------------------------------------
# Config: typos in overrides, missing config file, data of another layout.
# ------------------------------------------------------------------------------------------------------------


def test_typo_in_a_config_override_names_the_flag_and_suggests(env, tmp_path):
    proc = run_cli(*main_cmd(env["config"], tmp_path / "w", "--config.model.base_chanels=4"))
    assert proc.returncode == 2
    msg = last_error(proc)
    assert "--config.model.base_chanels" in msg and 'Did you mean "base_channels"' in msg, msg
    assert not (tmp_path / "w").exists()


def test_missing_config_file(tmp_path):
    proc = run_cli(*main_cmd(tmp_path / "nope.py", tmp_path / "w"))
    assert proc.returncode == 1 and "error: --config" in proc.stderr and "nope.py" in proc.stderr, proc.stderr
    assert not (tmp_path / "w").exists()


def test_2d_data_with_a_3d_config(env, tmp_path):
    proc = run_cli(*main_cmd(env["config"], tmp_path / "w", "--config.data.dataset=skeljax_synthetic/2d"))
    assert proc.returncode == 1
    msg = last_error(proc)
    assert "skeljax_synthetic/2d:train" in msg and "expects 25 joints x 3 channels, got 17 x 2" in msg, msg
    assert not (tmp_path / "w" / "config.json").exists()


# ------------------------------------------------------------------------------------------------------------
# Annotation pickles through the TFDS build of `python -m skeljax.main` (NTU-60 from manual_dir).
# ------------------------------------------------------------------------------------------------------------


def _ntu_annotations():
    """A valid PYSKL-style NTU-60 xsub file: two training subjects (P001, P002) and one val subject (P003)."""
    rng = np.random.default_rng(0)
    annos, split = [], {"xsub_train": [], "xsub_val": []}
    for p, a in [(1, 1), (2, 2), (1, 3), (3, 1), (3, 2)]:
        name = f"S001C001P{p:03d}R001A{a:03d}"
        annos.append(
            {
                "frame_dir": name,
                "label": a - 1,
                "total_frames": 20,
                "keypoint": rng.normal(size=(1, 20, 25, 3)).astype(np.float16),
            }
        )
        split["xsub_val" if p == 3 else "xsub_train"].append(name)
    return {"split": split, "annotations": annos}


def _corrupt(kind):
    data = _ntu_annotations()
    a = data["annotations"][1]  # S001C001P002R001A002
    if kind == "missing_field":
        del a["keypoint"]
    elif kind == "wrong_shape":
        a["keypoint"] = a["keypoint"][0]
    elif kind == "nan":
        a["keypoint"][0, 3, 4, 1] = np.nan
    elif kind == "inf":
        a["keypoint"][0, 3, 4, 1] = np.inf
    elif kind == "zero_length":
        a["keypoint"], a["total_frames"] = a["keypoint"][:, :0], 0
    elif kind == "three_persons":
        a["keypoint"] = np.concatenate([a["keypoint"]] * 3)
    elif kind == "label_out_of_range":
        a["label"] = 60
    elif kind == "duplicate_name":
        a["frame_dir"] = data["annotations"][0]["frame_dir"]
    return data


ANNOTATION_CASES = {
    "missing_field": "sample S001C001P002R001A002: missing field 'keypoint'",
    "wrong_shape": "sample S001C001P002R001A002: keypoint must have rank 4",
    "nan": "sample S001C001P002R001A002: keypoint contains NaN or inf (1 values)",
    "inf": "sample S001C001P002R001A002: keypoint contains NaN or inf (1 values)",
    "zero_length": "sample S001C001P002R001A002: zero-length sequence",
    "three_persons": "sample S001C001P002R001A002: keypoint has 3 persons, at most 2",
    "label_out_of_range": "sample S001C001P002R001A002: label 60 out of range [0, 60)",
    "duplicate_name": "sample S001C001P001R001A001: duplicate frame_dir",
}


@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=pytest.mark.slow) if k == "inf" else k for k in sorted(ANNOTATION_CASES)]
)  # inf: the NaN check's other half
def test_bad_annotation_pickle(env, tmp_path, kind):
    manual = tmp_path / "manual"
    manual.mkdir()
    pkl = manual / "ntu60_3danno.pkl"
    with open(pkl, "wb") as f:
        pickle.dump(_corrupt(kind), f, protocol=4)
    pkl_before, data_before = digest(pkl), digest(env["data_dir"])
    proc = run_cli(*main_cmd(env["config"] + ":ntu", tmp_path / "w", f"--config.data.manual_dir={manual}"))
    assert proc.returncode == 1
    msg = last_error(proc)
    assert f"error: {pkl}: {ANNOTATION_CASES[kind]}" in msg, msg
    _assert_nothing_built(env, data_before)
    assert digest(pkl) == pkl_before
    assert not (tmp_path / "w" / "config.json").exists()


def _assert_nothing_built(env, data_before):
    after = digest(env["data_dir"])
    assert {k: v for k, v in after.items() if k in data_before} == data_before  # the synthetic set untouched
    assert not [k for k in after if k.startswith("ntu60") and k.endswith("dataset_info.json")], after.keys()


def test_crafted_annotation_pickle_runs_no_code(env, tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    marker = tmp_path / "pwned"
    data = _ntu_annotations()
    data["annotations"][0]["label"] = _Payload(str(marker))
    pkl = manual / "ntu60_3danno.pkl"
    with open(pkl, "wb") as f:
        pickle.dump(data, f, protocol=4)
    data_before = digest(env["data_dir"])
    proc = run_cli(*main_cmd(env["config"] + ":ntu", tmp_path / "w", f"--config.data.manual_dir={manual}"))
    assert proc.returncode == 1
    msg = last_error(proc)
    assert f"{pkl}: refusing to unpickle global io.open" in msg, msg
    assert not marker.exists()
    _assert_nothing_built(env, data_before)
    with open(pkl, "rb") as f:  # the payload is real: plain pickle would have created the file
        pickle.load(f)
    assert marker.exists()


class _Payload:
    """Unpickles as open(path, 'w'): creates a file, the visible stand-in for arbitrary code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_missing_dataset_files_explain_where_to_put_them(env, tmp_path):
    """Downloads off (they are tests/test_ntu_download.py's): one line naming the file and where it goes."""
    cmd = main_cmd(env["config"] + ":ntu", tmp_path / "w", f"--config.data.manual_dir={tmp_path}/none")
    proc = run_cli(*cmd, env=cli_env(SKELJAX_NO_DOWNLOAD="1"))
    assert proc.returncode == 1
    msg = last_error(proc)
    assert f"ntu60/xsub_3d: no {tmp_path}/none/ntu60_3danno.pkl and downloads are off" in msg, msg
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------------------------
# Raw .skeleton files: through the TFDS raw-folder build and scripts/prepare_ntu.py.
# ------------------------------------------------------------------------------------------------------------


def _skeleton_lines(n_frames=3, seed=0):
    """The NTU `.skeleton` text format of one body moving over `n_frames` frames."""
    rng = np.random.default_rng(seed)
    lines = [str(n_frames)]
    for _ in range(n_frames):
        lines += ["1", "72057594037931101 0 1 1 1 1 0 0.0215 0.1829 2", "25"]
        xyz = rng.normal(0, 0.3, (25, 3)) + [0, 0, 3]
        lines += [f"{x:.7f} {y:.7f} {z:.7f} 261.2 203.4 961.9 511.1 0.2 0.0 0.9 0.1 2" for x, y, z in xyz]
    return lines


SKELETON_CASES = {  # damage to S001C001P003R001A001 (a val sample), what the error must say
    "truncated": (lambda ls: ls[:-10], ":76: unexpected end of file (truncated?), expected joint 16 of 25"),
    "wrong_joint_count": (lambda ls: ls[:31] + ["24"] + ls[32:], ":32: expected 25 joints for body 1 of frame 2"),
    "non_number": (lambda ls: ls[:10] + [ls[10].replace(" ", " 0.12abc ", 1)] + ls[11:], ":11:"),
}


def _raw_folder(root, kind):
    raw = root / "manual" / "nturgb+d_skeletons"
    raw.mkdir(parents=True)
    for name, seed in [("S001C001P001R001A001", 1), ("S001C001P002R001A002", 2)]:
        (raw / f"{name}.skeleton").write_text("\n".join(_skeleton_lines(30, seed)) + "\n")
    damage, _ = SKELETON_CASES[kind]
    bad = raw / "S001C001P003R001A001.skeleton"
    bad.write_text("\n".join(damage(_skeleton_lines(3))) + "\n")
    return raw, bad


@pytest.mark.parametrize(
    "kind", [k if k == "truncated" else pytest.param(k, marks=pytest.mark.slow) for k in sorted(SKELETON_CASES)]
)  # prepare_ntu below covers all three fast
def test_bad_skeleton_file_in_a_raw_folder_build(env, tmp_path, kind):
    raw, bad = _raw_folder(tmp_path, kind)
    data_before = digest(env["data_dir"])
    proc = run_cli(*main_cmd(env["config"] + ":ntu", tmp_path / "w", f"--config.data.manual_dir={raw.parent}"))
    assert proc.returncode == 1
    msg = last_error(proc)
    assert f"error: {bad}" in msg and SKELETON_CASES[kind][1] in msg, msg
    _assert_nothing_built(env, data_before)


@pytest.mark.parametrize("kind", sorted(SKELETON_CASES))
def test_bad_skeleton_file_in_prepare_ntu(tmp_path, kind):
    raw, bad = _raw_folder(tmp_path, kind)
    for p in raw.glob("*.skeleton"):
        if p != bad:
            p.unlink()
    out = tmp_path / "ntu60_3danno.pkl"
    proc = run_cli("scripts/prepare_ntu.py", raw, out, "--quiet")
    assert proc.returncode == 1
    assert f"{bad}{SKELETON_CASES[kind][1]}" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_prepare_ntu_keeps_an_existing_output_when_everything_fails(tmp_path):
    raw, bad = _raw_folder(tmp_path, "truncated")
    for p in raw.glob("*.skeleton"):
        if p != bad:
            p.unlink()
    out = tmp_path / "ntu60_3danno.pkl"
    out.write_bytes(b"an existing annotation file")
    proc = run_cli("scripts/prepare_ntu.py", raw, out, "--quiet")
    assert proc.returncode == 1
    assert out.read_bytes() == b"an existing annotation file"


# ------------------------------------------------------------------------------------------------------------
# .pth files: another architecture, truncated, crafted (scripts/convert_checkpoint.py and init_from).
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pth_files(tmp_path_factory):
    import torch

    from skeljax.testing import torch_reference as ref

    root = tmp_path_factory.mktemp("pth")
    torch.manual_seed(0)
    stgcn = ref.build_pyskl_recognizer("stgcn", "nturgb+d", num_classes=14, seed=3)
    other = ref.save_released_checkpoint(stgcn, root / "stgcn_ntu.pth", style="pyskl")
    with open(other, "rb") as f:
        data = f.read()
    truncated = root / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    return {"other": other, "truncated": truncated}


def test_pth_of_another_architecture_as_init_from(env, pth_files, tmp_path):
    workdir = tmp_path / "w"
    proc = run_cli(*main_cmd(env["config"], workdir, f"--config.init_from.path={pth_files['other']}"))
    assert proc.returncode == 1
    msg = last_error(proc)
    assert f"{pth_files['other']}: checkpoint does not fit the configured model" in msg, msg
    assert "backbone.gcn.0.gcn.bn.bias: checkpoint (64,), model (8,)" in msg, msg  # ST-GCN 64 ch vs ours
    assert not (workdir / "config.json").exists() and not os.listdir(workdir / "checkpoints")


def test_truncated_pth_in_convert_checkpoint_and_init_from(env, pth_files, tmp_path):
    dst = tmp_path / "converted"
    proc = run_cli("scripts/convert_checkpoint.py", pth_files["truncated"], dst)
    assert proc.returncode == 1
    msg = last_error(proc)
    assert str(pth_files["truncated"]) in msg, msg
    assert not dst.exists() and not list(tmp_path.glob("converted*"))  # no half-written model directory
    proc = run_cli(*main_cmd(env["config"], tmp_path / "w", f"--config.init_from.path={pth_files['truncated']}"))
    assert proc.returncode == 1 and str(pth_files["truncated"]) in last_error(proc)
    assert not (tmp_path / "w" / "config.json").exists()


def test_crafted_pth_runs_no_code_unless_trusted(tmp_path):
    import torch

    marker = tmp_path / "pwned"
    pth = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "meta": _Payload(str(marker))}, pth)
    proc = run_cli("scripts/convert_checkpoint.py", pth, tmp_path / "out")
    assert proc.returncode == 1
    msg = last_error(proc)
    assert str(pth) in msg and "refusing to unpickle 'io.open'" in msg, msg
    assert not marker.exists() and not (tmp_path / "out").exists()
    # The documented opt-in really unpickles everything (and then fails: the file holds no model).
    proc = run_cli("scripts/convert_checkpoint.py", "--trusted", pth, tmp_path / "out")
    assert marker.exists() and proc.returncode == 1


def test_missing_checkpoint_path_in_convert_checkpoint(tmp_path):
    proc = run_cli("scripts/convert_checkpoint.py", tmp_path / "nope.pth", tmp_path / "out")
    assert proc.returncode == 1 and f"{tmp_path}/nope.pth" in last_error(proc)
