"""scripts/benchmark_predict.py: its inputs are what skeljax-predict reads, its answer check refuses disagreeing
top-5 classes, its page section replaces only itself; the slow test runs the script end to end."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from skeljax.data.ntu_raw import read_ntu_skeleton
from skeljax.testing.benchmarking import replace_section, section_of

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "benchmark_predict.py")


def _load():
    spec = importlib.util.spec_from_file_location("benchmark_predict", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_inputs_are_a_pyskl_checkpoint_and_a_two_person_skeleton_file(tmp_path):
    from skeljax.models.state_dict import load_pytorch_checkpoint

    pth, skeleton = _load().write_inputs(str(tmp_path))
    anno = read_ntu_skeleton(skeleton)
    assert anno["keypoint"].shape == (2, 140, 25, 3) and anno["label"] == 12  # A013, 0-based
    model = load_pytorch_checkpoint(pth)
    assert model.spec.family == "stgcnpp" and model.spec.num_classes == 60


def test_answers_must_agree_on_the_classes():
    bench = _load()
    a = json.dumps({"top5": [{"index": i, "prob": 0.2 - 0.01 * i} for i in range(5)]})
    b = json.dumps({"top5": [{"index": i, "prob": 0.2 - 0.01 * i + (3e-5 if i == 2 else 0)} for i in range(5)]})
    assert bench.same_answer(a, b) == pytest.approx(3e-5)
    swapped = json.dumps({"top5": [{"index": i, "prob": 0.2 - 0.01 * j} for j, i in enumerate([0, 2, 1, 3, 4])]})
    with pytest.raises(SystemExit, match="error: skeljax and PyTorch disagree on the top-5 classes"):
        bench.same_answer(a, swapped)
    swapped = json.dumps({"top5": [{"index": i, "prob": 0.1} for i in (1, 0, 2, 3, 4)]})
    with pytest.raises(SystemExit, match="disagree on the top-5 classes"):
        bench.same_answer(a, swapped)


def test_a_page_section_is_replaced_in_place_or_appended(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nintro\n\n## A\n\nold a\n\n### sub of A\n\nmore a\n\n## B\n\nb\n")
    assert section_of(str(page), "## A") == "## A\n\nold a\n\n### sub of A\n\nmore a"
    assert section_of(str(page), "## C") == "" and section_of(str(tmp_path / "none.md"), "## A") == ""
    replace_section(str(page), "## A", "## A\n\nnew a\n")
    assert page.read_text() == "# Title\n\nintro\n\n## A\n\nnew a\n\n## B\n\nb\n"
    replace_section(str(page), "## C", "## C\n\nc")
    assert page.read_text().endswith("## B\n\nb\n\n## C\n\nc\n")


def test_the_section_reports_both_ratios_and_the_phases():
    bench = _load()
    phases = {"imports": 2.0, "build_and_load": 0.5, "first_prediction": 3.0, "run_only": 0.4}
    phases.update(trace_and_lower=0.7, xla_compile=1.9)
    res = {
        "skeljax_cold_s": 7.5,
        "skeljax_warm_s": 4.5,
        "torch_s": 5.0,
        "cold_ratio": 1.5,
        "warm_ratio": 0.9,
        "max_prob_difference": 2e-6,
        "phases": {"cold": phases, "warm": {**phases, "first_prediction": 0.8}},
        "machine": {"cpu": "CPU", "threads": 2, "load_average_at_start": 0.5},
        "date": "2026-12-07",
        "repeats": 3,
    }
    text = bench.section(res, ["--repeats", "3"])
    assert text.startswith("## First prediction\n")
    assert "| skeljax-predict, cold (empty compilation cache) | 7.5 | 1.50x |" in text
    assert "| skeljax-predict, warm (cache filled) | 4.5 | 0.90x |" in text
    assert "| first prediction | 3.00 | 0.80 |" in text
    assert "| of the first prediction: xla compile | 1.90 | 1.90 |" in text
    assert "| of the first prediction: trace and lower | 0.70 | 0.70 |" in text
    assert "`python scripts/benchmark_predict.py --repeats 3`" in text


@pytest.mark.slow
def test_one_run_end_to_end(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, SCRIPT, "--repeats", "1", "--json", str(out)]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=REPO, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["skeljax_cold_s"] > 0 and data["skeljax_warm_s"] > 0 and data["torch_s"] > 0
    assert data["cold_ratio"] == pytest.approx(data["skeljax_cold_s"] / data["torch_s"])
    assert data["max_prob_difference"] < 1e-4
    for run in ("cold", "warm"):
        phases = data["phases"][run]
        assert set(phases) == {
            "imports",
            "build_and_load",
            "first_prediction",
            "run_only",
            "trace_and_lower",
            "xla_compile",
        }
        assert all(v > 0 for v in phases.values())
