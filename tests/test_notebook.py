"""notebooks/quickstart.ipynb runs end to end (quick mode, CPU) and produces what it promises: a trained run
directory, a top-5 that equals the trainer's own test scores for the same sample, a converted checkpoint and a GIF."""

import json
import os
import re
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

from skeljax.data.synthetic import SYNTHETIC_CLASSES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "quickstart.ipynb")
# glibc allocator settings that make XLA on CPU much faster; they only act when set before the kernel starts.
MALLOC_ENV = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "8589934592",
    "MALLOC_TOP_PAD_": "536870912",
}
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


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("notebook")
    work = tmp / "work"
    env = {"SKELJAX_QUICK": "1", "SKELJAX_WORKDIR": str(work), "JAX_PLATFORMS": "cpu", **MALLOC_ENV}
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
    return nb, str(work)


@pytest.mark.slow
def test_every_cell_ran_without_error(executed):
    nb, _ = executed
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert "QUICK = True" in _text(code[0])


@pytest.mark.slow
def test_training_run_directory(executed):
    _, work = executed
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
    nb, work = executed
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
def test_converted_checkpoint_and_gif(executed):
    nb, work = executed
    text = "".join(_text(c) for c in nb.cells if c.cell_type == "code")
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
