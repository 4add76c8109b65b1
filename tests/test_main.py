"""The command line: `python -m skeljax.main --mode test` on a released-format PyTorch checkpoint gives PyTorch's
per-sample 10-clip probabilities; configs with `path.py:variant` and `--config.x=y` overrides; demo config."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from skeljax import ensemble
from skeljax.config import schema
from skeljax.data.pipelines import make_pipeline
from skeljax.data.tfds_builders import load_source
from skeljax.testing import torch_reference as ref

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIP_LEN, NUM_CLIPS, NUM_PER_CLASS = 12, 10, 3

CONFIG = textwrap.dedent(f"""
    from skeljax.config import schema

    def get_config(arg=None):
        c = schema.base_config()
        c.model.family, c.model.layout, c.model.num_classes = "stgcnpp", "nturgb+d", 14
        c.data.dataset = "skeljax_synthetic/3d"
        c.data.builder_kwargs.num_per_class = {NUM_PER_CLASS}
        c.data.clip_len, c.data.test_num_clips = {CLIP_LEN}, {NUM_CLIPS}
        c.test_batch_size = 4
        c.data.num_workers = 0  # worker start-up would dominate this tiny test
        c.test_average = arg or "prob"
        return c
""")


def run_main(tmp_path, *args):
    cfg = tmp_path / "cfg.py"
    cfg.write_text(CONFIG)
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
    cmd = [sys.executable, "-m", "skeljax.main", *[a.replace("CFG", str(cfg)) for a in args]]
    proc = subprocess.run(cmd, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    return proc


def test_test_mode_on_a_pytorch_checkpoint_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    tmodel = ref.build_pyskl_recognizer("stgcnpp", "nturgb+d", num_classes=14, seed=7)
    pth = ref.save_released_checkpoint(tmodel, tmp_path / "j.pth", style="pyskl", numpy1_style=True)
    data_dir, workdir = tmp_path / "tfds", tmp_path / "run"
    proc = run_main(
        tmp_path,
        "--config",
        "CFG:prob",
        "--workdir",
        str(workdir),
        "--mode",
        "test",
        f"--config.init_from.path={pth}",
        f"--config.data.data_dir={data_dir}",
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    scores = ensemble.read_scores(workdir / "test_scores_init.npz")

    # PyTorch on the same pipeline outputs: 10 test clips per video, mean of softmax probabilities.
    source = load_source("skeljax_synthetic/3d", "val", str(data_dir), num_per_class=NUM_PER_CLASS)
    assert len(source) % 4  # the last test batch is padded
    pipeline = make_pipeline("nturgb+d", "j", CLIP_LEN, NUM_CLIPS, "test")
    want, labels = {}, {}
    for i in range(len(source)):
        anno = source[i]
        x = torch.from_numpy(pipeline(anno)[None])
        want[anno["frame_dir"]] = tmodel.forward_test(x)[0].numpy()
        labels[anno["frame_dir"]] = anno["label"]
    assert sorted(scores.names.tolist()) == sorted(want)
    got = dict(zip(scores.names.tolist(), scores.scores))
    for name, probs in want.items():
        np.testing.assert_allclose(got[name], probs, rtol=1e-4, atol=2e-6, err_msg=name)
    assert [labels[n] for n in scores.names] == scores.labels.tolist()
    # The logged metrics are those of the written scores.
    with open(workdir / "metrics.jsonl") as f:
        rec = [json.loads(line) for line in f][-1]
    p = np.stack([want[n] for n in scores.names])
    assert rec["checkpoint"] == "init"
    assert rec["test/top1"] == pytest.approx(float(np.mean(p.argmax(1) == scores.labels)))
    assert (workdir / "confusion_matrix_init.png").is_file()
    # a test-only run records its configuration like a training run does
    with open(workdir / "config.json") as f:
        recorded = json.load(f)
    assert recorded["init_from"]["path"] == str(pth) and recorded["data"]["data_dir"] == str(data_dir)


def test_out_of_memory_hint_names_the_batch_and_the_fields():
    from skeljax import main as skeljax_main

    config = schema.base_config()
    msg = (
        "jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 34359738368 bytes.\n"
        "more text"
    )
    line = skeljax_main.out_of_memory_hint(config, msg)
    assert line.startswith(
        "out of memory: jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory "
        "allocating 34359738368 bytes."
    )
    assert "more text" not in line
    assert f"config.batch_size={config.batch_size} over" in line and "lower --config.batch_size" in line
    assert f"config.model.bn_group={config.model.bn_group}" in line


def test_cli_errors_name_the_problem(tmp_path):
    proc = run_main(
        tmp_path,
        "--config",
        "CFG",
        "--workdir",
        str(tmp_path / "w"),
        "--mode",
        "test",
        "--config.init_from.path=/nonexistent/x.pth",
        f"--config.data.data_dir={tmp_path / 'tfds'}",
    )
    assert proc.returncode != 0 and "/nonexistent/x.pth" in proc.stderr
    proc = run_main(tmp_path, "--config", "CFG", "--workdir", str(tmp_path / "w"), "--config.no_such_field=1")
    assert proc.returncode != 0 and "no_such_field" in proc.stderr


def _load_config(path, arg=None):
    spec = importlib.util.spec_from_file_location("cfg", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.get_config(arg)


def test_demo_config():
    c = _load_config(os.path.join(REPO, "configs", "demo.py"))
    schema.validate(c)
    assert c.data.dataset == "skeljax_synthetic/3d" and c.model.family == "stgcnpp"
    assert c.optimizer.lr == pytest.approx(c.optimizer.base_lr * c.batch_size / c.optimizer.reference_batch)
    with open(os.path.join(REPO, "configs", "demo.py")) as f:
        doc = f.read()
    assert "python -m skeljax.main --config configs/demo.py" in doc


def test_base_config_is_pyskl_recipe():
    c = schema.base_config()
    assert (c.optimizer.base_lr, c.optimizer.momentum, c.optimizer.nesterov, c.optimizer.weight_decay) == (
        0.1,
        0.9,
        True,
        5e-4,
    )
    assert (c.batch_size, c.num_epochs, c.data.repeat_times, c.data.clip_len, c.data.test_num_clips) == (
        128,
        16,
        5,
        100,
        10,
    )
    assert c.model.bn_group == 16 and c.test_average == "prob" and c.optimizer.schedule == "cosine"
    spec = schema.model_spec(c)
    assert (spec.tcn_type, spec.gcn_adaptive, spec.gcn_with_res, spec.num_classes) == ("mstcn", "init", True, 60)


# A config file that fails to load: one `error:` line naming the file and the line, no traceback.
BROKEN_CONFIGS = {
    "syntax": ("def get_config(arg=None):\n    x = (\n    return x\n", ":2: SyntaxError: "),
    "get_config": (
        "def get_config(arg=None):\n    fields = {}\n    return fields['foo']\n",
        ":3 in get_config: KeyError: 'foo'",
    ),
    "variant": (None, " in get_config: ValueError: config variant 'bogus' must look like SPLIT_KIND_FEAT"),
    "missing": (None, ": no such config file"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_CONFIGS))
def test_a_config_that_fails_to_load_ends_in_one_error_line(tmp_path, case):
    source, want = BROKEN_CONFIGS[case]
    path = str(tmp_path / "broken.py")
    if source is not None:
        with open(path, "w") as f:
            f.write(source)
    arg = {"variant": os.path.join("configs", "stgcnpp_ntu60.py") + ":bogus"}.get(case, path)
    proc = subprocess.run(
        [sys.executable, "-m", "skeljax.main", "--config", arg, "--workdir", str(tmp_path / "w")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {arg.split(':')[0] if case != 'missing' else '--config: ' + path}"), line
    assert want in line, line
    if (
        case == "variant"
    ):  # the line of configs/stgcnpp_ntu60.py that builds the variant (skeljax.config.recipes parses it)
        with open(os.path.join(REPO, "configs", "stgcnpp_ntu60.py")) as f:
            lineno = next(i for i, text in enumerate(f, 1) if "recipes.get_config(" in text)
        assert line.startswith(f"error: {arg.split(':')[0]}:{lineno} in get_config: "), line
    assert not (tmp_path / "w").exists()


def test_config_error_names_the_innermost_line_of_the_config_file(tmp_path):
    from skeljax import main as skeljax_main

    path = tmp_path / "cfg.py"
    path.write_text(
        "def helper():\n    raise RuntimeError('bad\\nvalue')\n\n\ndef get_config(arg=None):\n    return helper()\n"
    )
    spec = importlib.util.spec_from_file_location("cfg_broken", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        try:
            module.get_config()
        except RuntimeError as inner:
            raise ValueError("wrapped, as absl re-raises config_flags' errors") from inner
    except ValueError as e:
        assert skeljax_main.config_error(e, str(path)) == f"{path}:2 in helper: RuntimeError: bad value"
        assert skeljax_main.config_error(e, str(tmp_path / "other.py")) is None
