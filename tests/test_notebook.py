"""notebooks/quickstart.ipynb runs end to end (quick mode, CPU) and produces what it promises: a trained run
directory, a top-5 that equals the trainer's own test scores for the same sample, a zoo checkpoint downloaded,
converted and used, and a GIF. Offline: the zoo's files come from a file:// mirror holding a stand-in in the released
format, and the install cell (SKELJAX_NOTEBOOK_OFFLINE=1) prints its pip command instead of running it; the install
cell's choices (source, wheel, accelerator) are checked on their own by running the cell without site-packages."""

import ast
import json
import os
import re
import subprocess
import sys
import time

import ipykernel  # noqa: F401  (test dependencies, setup.cfg [test]: the kernel must exist to run the notebook)
import nbclient
import nbformat
import numpy as np
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from PIL import Image

from skeljax.cpu_malloc import MALLOC_ENV
from skeljax.data.ntu_standin import write_ntu60_standin
from skeljax.data.synthetic import SYNTHETIC_CLASSES
from skeljax.io.pth import save_pth
from skeljax.models.state_dict import model_state_dict
from skeljax.models.stgcn import Recognizer, stgcnpp_spec
from skeljax.predict import LABEL_SETS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "quickstart.ipynb")
ZOO_NAME = "stgcnpp_ntu60_xsub_3d_j"
ZOO_PATH = "mmaction/pyskl/ckpt/stgcnpp/stgcnpp_ntu60_xsub_3dkp/j.pth"  # the released file's path on its host
NTU_PATH = "mmaction/pyskl/data/nturgbd/ntu60_3danno.pkl"  # PYSKL's published annotation pickle, same host
TOP_LINE = re.compile(r"^\s+([1-5])\. (.+?)\s+([0-9]\.[0-9]{4})$")


def _kernel_manager(tmp_path) -> KernelManager:
    """A 'python3' kernel running this interpreter (the venv's), whatever `python` is on PATH."""
    spec_dir = tmp_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (test)",
                "language": "python",
            }
        )
    )
    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name="python3", kernel_spec_manager=ksm)


def _cell(start: str) -> str:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code" and start in c.source)


def _mirror(tmp) -> str:
    """A file:// mirror of download.openmmlab.com holding a random ST-GCN++ NTU-60 (16 base channels) in PYSKL's .pth
    format and a 40-sample PYSKL-format stand-in of ntu60_3danno.pkl."""
    from flax import nnx

    model = Recognizer(stgcnpp_spec(60, base_channels=16), rngs=nnx.Rngs(0))
    path = tmp / "mirror" / ZOO_PATH
    path.parent.mkdir(parents=True)
    save_pth(str(path), {"state_dict": model_state_dict(model, "pyskl"), "meta": {"note": "random weights"}})
    (tmp / "mirror" / NTU_PATH).parent.mkdir(parents=True)
    write_ntu60_standin(tmp / "mirror" / NTU_PATH, 40, seed=2)
    return (tmp / "mirror").as_uri()


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("notebook")
    work = tmp / "work"
    env = {
        "SKELJAX_QUICK": "1",
        "SKELJAX_WORKDIR": str(work),
        "JAX_PLATFORMS": "cpu",
        "SKELJAX_NOTEBOOK_OFFLINE": "1",
        "SKELJAX_ZOO_MIRROR": _mirror(tmp),
        "SKELJAX_CACHE": str(tmp / "cache"),
        **MALLOC_ENV,
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        client = nbclient.NotebookClient(
            nb,
            timeout=900,
            kernel_name="python3",
            km=_kernel_manager(tmp),
            resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}},
        )
        t0 = time.perf_counter()
        client.execute()  # raises CellExecutionError (with the traceback) if any cell fails
        seconds = time.perf_counter() - t0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    print(f"notebook executed in {seconds:.0f} s")
    return nb, str(work), str(tmp / "cache"), env["SKELJAX_ZOO_MIRROR"]


@pytest.mark.slow
def test_every_cell_ran_without_error(executed):
    nb, _, _, _ = executed
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert "QUICK = True" in _text(code[0])
    assert "runtime: cpu\nskeljax already installed: nothing to install\nskeljax " in _text(code[1])


@pytest.mark.slow
def test_training_run_directory(executed):
    _, work, _, _ = executed
    run = os.path.join(work, "demo_run")
    for name in (
        "config.json",
        "metrics.jsonl",
        "best/model_spec.json",
        "final/model_spec.json",
        "test_scores_best.npz",
        "training_curves.png",
    ):
        assert os.path.exists(os.path.join(run, name)), name
    with open(os.path.join(run, "metrics.jsonl")) as f:
        lines = [json.loads(line) for line in f]
    # 112 train samples / batch 16 = 7 steps per epoch, 8 epochs, validated after each.
    assert [m["step"] for m in lines if "val/top1" in m] == list(range(7, 57, 7))
    assert any("test/top1" in m for m in lines)
    best = max(m["val/top1"] for m in lines if "val/top1" in m)
    assert best >= 0.25, best  # it learns: chance is 1/14 (measured 0.57 on this CPU)


@pytest.mark.slow
def test_top5_equals_the_trainers_test_scores(executed):
    """predict() on the run's best model and the trainer's 10-clip test path give the same probabilities."""
    nb, work, _, _ = executed
    out = next(_text(c) for c in nb.cells if c.cell_type == "code" and _text(c).startswith("top-5"))
    lines = out.splitlines()
    assert lines[1].startswith("S001C001P001R001A001")
    rows = [TOP_LINE.match(line) for line in lines[2:7]]
    assert all(rows), lines
    assert [int(r.group(1)) for r in rows] == [1, 2, 3, 4, 5]
    labels, probs = [r.group(2) for r in rows], np.array([float(r.group(3)) for r in rows])
    assert all(name in SYNTHETIC_CLASSES for name in labels) and len(set(labels)) == 5
    assert np.all(np.diff(probs) <= 0) and probs.sum() <= 1.0 + 1e-3
    scores = np.load(os.path.join(work, "demo_run", "test_scores_best.npz"))
    row = scores["scores"][list(scores["names"]).index("S001C001P001R001A001")]
    row = row / row.sum()
    np.testing.assert_allclose(np.sort(row)[::-1][:5], probs, atol=1e-4)  # the five largest (ties in any order)
    np.testing.assert_allclose(row[[SYNTHETIC_CLASSES.index(n) for n in labels]], probs, atol=1e-4)


@pytest.mark.slow
def test_zoo_checkpoint_converted_and_gif(executed):
    nb, work, cache, _ = executed
    text = "".join(_text(c) for c in nb.cells if c.cell_type == "code")
    model_dir = os.path.join(cache, ZOO_NAME, "model")
    assert f"model directory: {model_dir}\n" in text
    assert f"released file: {os.path.join(cache, ZOO_NAME, 'j.pth')}\n" in text
    assert os.path.isfile(os.path.join(model_dir, "model_spec.json"))
    tail = text.split("by the zoo model", 1)[1].splitlines()
    rows = [TOP_LINE.match(line) for line in tail[2:7]]
    assert all(rows), tail
    assert all(r.group(2) in LABEL_SETS["ntu60"] for r in rows)
    assert "family stgcnpp, layout nturgb+d, 60 classes" in text
    assert "input (1, 2, 100, 25, 3) -> logits (1, 60)" in text
    assert "unchanged" in text
    assert os.path.isfile(os.path.join(work, "converted_model", "model_spec.json"))
    gif = os.path.join(work, "sample.gif")
    m = re.search(r"sample\.gif: (\d+) frames", text)
    assert m
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == int(m.group(1)) > 1
    displayed = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "display_data" and "image/gif" in o.get("data", {})
    ]
    assert displayed


@pytest.mark.slow
def test_ntu_recipe_by_the_main_command_with_data_fetched_by_name(executed):
    """Section 7 ran `python -m skeljax.main` on configs/stgcnpp_ntu60.py:xsub_3d_j, stopped after NTU_EPOCHS = 1
    epoch, with ntu60_3danno.pkl downloaded from the mirror into the data folder and prepared there."""
    nb, work, _, mirror = executed
    out = next(_text(c) for c in nb.cells if c.cell_type == "code" and "NTU_EPOCHS = " in c.source)
    command = out.splitlines()[0]
    assert command.startswith("$ ") and " -m skeljax.main --config " in command
    assert f"{os.path.join(ROOT, 'configs', 'stgcnpp_ntu60.py')}:xsub_3d_j" in command
    assert "--config.num_epochs=1" in command
    data_dir = os.path.join(work, "tensorflow_datasets")
    cached = os.path.join(data_dir, "downloads", "ntu60_3danno.pkl")
    assert f"downloading {mirror}/{NTU_PATH} to {cached} (once)" in out
    with open(cached, "rb") as f, open(os.path.join(mirror.removeprefix("file://"), NTU_PATH), "rb") as g:
        assert f.read() == g.read()
    assert re.search(r"ntu60/xsub_3d train: 2\d/2\d samples \(100%\)", out), out
    run = os.path.join(work, "stgcnpp_ntu60_xsub_3d_j")
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    assert config["num_epochs"] == 1 and config["data"]["dataset"] == "ntu60/xsub_3d"
    assert config["model"]["family"] == "stgcnpp" and config["model"]["num_classes"] == 60
    with open(os.path.join(run, "metrics.jsonl")) as f:
        val = [json.loads(line) for line in f if "val/top1" in line]
    assert len(val) == 1  # one epoch, then it stopped
    assert "validation top-1 per epoch: [" in out and os.path.isfile(os.path.join(run, "best", "model_spec.json"))


def test_notebooks_ntu_config_equals_configs_stgcnpp_ntu60(tmp_path):
    """The recipe the NTU cell writes where configs/ is absent (a wheel install) is configs/stgcnpp_ntu60.py's."""
    import importlib.util

    source = _cell("NTU_EPOCHS = ")
    write = next(
        n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "write"
    )
    (tmp_path / "written.py").write_text(ast.literal_eval(write.args[0]))
    configs = {}
    for name, path in (
        ("written", tmp_path / "written.py"),
        ("repo", os.path.join(ROOT, "configs", "stgcnpp_ntu60.py")),
    ):
        spec = importlib.util.spec_from_file_location(f"ntu_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        configs[name] = module.get_config("xsub_3d_j").to_dict()
    assert configs["written"] == configs["repo"]


def _install_cell(cwd, env_extra, path_dirs=()) -> str:
    """The notebook's install cell run by `python -S` (no site-packages, so skeljax is not importable) in `cwd`."""
    code = "import os\n" + _cell("SKELJAX_SOURCE = ")
    env = {k: v for k, v in os.environ.items() if k not in ("SKELJAX_SOURCE", "COLAB_TPU_ADDR", "TPU_NAME")}
    env.update(SKELJAX_NOTEBOOK_OFFLINE="1", PATH=os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"]))
    env.update(env_extra)
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(bool(__import__("glob").glob("/dev/accel*")), reason="a TPU host: every runtime reads as TPU")
def test_install_cell_picks_the_source_and_the_jax_wheels(tmp_path):
    if any(os.access(os.path.join(d, "nvidia-smi"), os.X_OK) for d in ("/usr/bin", "/bin")):
        pytest.skip("nvidia-smi is installed in /usr/bin here: the CPU case cannot be made")
    # A git source on a TPU runtime.
    out = _install_cell(tmp_path, {"SKELJAX_SOURCE": "git+https://example.org/skeljax", "COLAB_TPU_ADDR": "10.0.0.2"})
    assert out == "runtime: tpu\ninstall: pip install 'skeljax[tpu] @ git+https://example.org/skeljax'\n"
    # No source and no wheel on a CPU runtime: one sentence, no error, nothing installed.
    out = _install_cell(tmp_path, {})
    assert out.startswith("runtime: cpu\nskeljax is not installed: set SKELJAX_SOURCE")
    assert len(out.splitlines()) == 2 and "install: " not in out
    # An uploaded wheel in the current folder on a GPU runtime (nvidia-smi lists one GPU).
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA T4 (UUID: GPU-0)'\n")
    (fake / "nvidia-smi").chmod(0o755)
    (tmp_path / "skeljax-0.1.0-py3-none-any.whl").write_bytes(b"")
    out = _install_cell(tmp_path, {}, [fake])
    assert out == "runtime: cuda12\ninstall: pip install 'skeljax-0.1.0-py3-none-any.whl[cuda12]'\n"
    # Inside a checkout: the checkout, editable.
    out = _install_cell(os.path.join(ROOT, "notebooks"), {})
    assert out.startswith(f"runtime: cpu\ninstall: pip install -e {ROOT}\nskeljax ")  # then imported from ROOT


def test_notebooks_demo_config_equals_configs_demo(tmp_path):
    """The config the notebook builds where the repository's configs/ is absent (a wheel install) is configs/demo.py's."""
    import importlib.util

    tree = ast.parse(_cell("def demo_config"))
    scope = {}
    exec(
        compile(
            ast.Module([n for n in tree.body if isinstance(n, ast.ImportFrom | ast.FunctionDef)], []), "nb", "exec"
        ),
        scope,
    )
    spec = importlib.util.spec_from_file_location("demo_config", os.path.join(ROOT, "configs", "demo.py"))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert scope["demo_config"]().to_dict() == demo.get_config().to_dict()
