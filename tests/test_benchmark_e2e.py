"""scripts/benchmark_e2e.py: its measuring and reporting helpers, and the --quick run CI makes, which must write
every documented key from a real run of the trainer and of the PyTorch loop."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from skeljax.train import compile_step

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "benchmark_e2e.py")


def _load():
    spec = importlib.util.spec_from_file_location("benchmark_e2e", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tree_memory_counts_the_children_of_the_process():
    e2e = _load()
    # A parent holding ~50 MB starts a child that touches ~300 MB of its own, then both sleep a moment.
    child = "import time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(2.5)"
    parent = (
        "import subprocess, sys, time; a = bytearray(50 * 2**20); a[::4096] = b'y' * len(a[::4096]); "
        f"subprocess.run([sys.executable, '-c', {child!r}])"
    )
    code, wall, peak = e2e.run_side([sys.executable, "-c", parent], dict(os.environ), os.devnull, timeout=60)
    assert code == 0 and wall > 2
    assert 330 < peak < 600, peak  # both processes' private pages, plus two interpreters


def test_summary_projects_the_recipe_and_the_ratio():
    e2e = _load()
    res = {"skeljax": {"samples_per_s": 400.0}, "torch": {"samples_per_s": 160.0}}
    e2e.summarise(res)
    assert e2e.RECIPE_SAMPLES == 3_207_280
    assert res["ratio"] == pytest.approx(2.5)
    assert res["projected_recipe_minutes"] == pytest.approx(3_207_280 / 400 / 60)
    assert res["torch"]["projected_recipe_minutes"] == pytest.approx(3_207_280 / 160 / 60)
    table = e2e.table(res)
    assert "| samples/s (steady state) | 400.0 | 160.0 |" in table and "| 2.50x |" in table
    alone = {"skeljax": {"samples_per_s": 50.0}}
    e2e.summarise(alone)
    assert alone["ratio"] is None and "| input wait, share of step time | - | - |" in e2e.table(alone)


def test_command_in_the_docs_leaves_out_where_the_page_went():
    e2e = _load()
    argv = ["--batch", "128", "--update-docs", "--docs", "/tmp/x.md", "--steps", "50", "--docs=/tmp/y.md"]
    assert e2e._without_docs_flags(argv) == ["--batch", "128", "--steps", "50"]


def test_run_past_the_first_epoch_is_refused(tmp_path, capsys):
    e2e = _load()
    with pytest.raises(SystemExit):
        e2e.main(["--quick", "--steps", "1000", "--no-torch", "--data-dir", str(tmp_path)])
    assert "pass the first epoch" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_writes_every_key(tmp_path):
    out = tmp_path / "e2e.json"
    cmd = [sys.executable, SCRIPT, "--quick", "--data-dir", str(tmp_path / "data"), "--json", str(out)]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=REPO, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data = json.loads(out.read_text())
    s, t = data["skeljax"], data["torch"]
    assert data["settings"]["batch"] == 16 and data["settings"]["clip_len"] == 100
    for side in (s, t):
        assert side["samples_per_s"] > 0 and 0 <= side["input_wait_fraction"] < 1
        assert side["peak_host_mb"] > 200 and side["peak_device_mb"] > 0
    assert s["steps"] == t["steps"] == 8
    assert s["compile_s"] > 0 and s["xla_memory_mb"]["temp"] > 0
    assert s["peak_device_source"] == "XLA memory analysis"  # on CPU
    # config.remat='auto' on a CPU host: the plain step plans ~4 GB at batch 16, within 80% of the free memory here.
    assert s["remat"] == float(4000 > 0.8 * compile_step.available_host_memory_mb())
    assert data["ratio"] == pytest.approx(s["samples_per_s"] / t["samples_per_s"])
    assert math.isclose(data["projected_recipe_minutes"], 3_207_280 / s["samples_per_s"] / 60)
    assert "samples/s (steady state)" in res.stdout


def test_repeats_alternate_the_sides_and_report_each_sides_median(tmp_path, monkeypatch):
    e2e = _load()
    assert e2e.side_order(3, True) == ["skeljax", "torch", "torch", "skeljax", "skeljax", "torch"]
    assert e2e.side_order(2, False) == ["skeljax", "skeljax"]
    rates = {"skeljax": iter([3.0, 3.6, 3.3]), "torch": iter([3.4, 3.1, 3.2])}
    calls = []

    def fake(side):
        def run(args, folder, env):
            calls.append((side, os.path.basename(folder)))
            assert os.path.isdir(folder)
            rate = next(rates[side])
            return {"samples_per_s": rate, "compile_s": rate * 10, "log": os.path.join(folder, "x.log")}

        return run

    monkeypatch.setattr(e2e, "SIDES", {side: ("steps", fake(side)) for side in ("skeljax", "torch")})
    args = e2e.parse(["--quick", "--repeats", "3"])[1]
    res = e2e.run_alternating(args, str(tmp_path), {})
    assert [c[0] for c in calls] == e2e.side_order(3, True)
    assert len({c[1] for c in calls}) == 6  # a fresh folder per run
    s, t = res["skeljax"], res["torch"]
    assert s["samples_per_s"] == 3.3 and s["samples_per_s_runs"] == [3.0, 3.6, 3.3] and s["compile_s"] == 33.0
    assert t["samples_per_s"] == 3.2 and t["compile_s"] == 32.0 and "log" not in s
    e2e.summarise(res)
    assert res["ratio"] == pytest.approx(3.3 / 3.2)
    table = e2e.table(res)
    assert "| samples/s of each run, in order | 3.00, 3.60, 3.30 | 3.40, 3.10, 3.20 |" in table
    # an even count: the median of the rates; the other figures from the lower middle run
    even = e2e.median_run([{"samples_per_s": 2.0, "compile_s": 1.0}, {"samples_per_s": 4.0, "compile_s": 2.0}])
    assert even["samples_per_s"] == 3.0 and even["compile_s"] == 1.0


def test_repeats_below_one_are_refused(capsys):
    e2e = _load()
    with pytest.raises(SystemExit):
        e2e.parse(["--repeats", "0"])
    assert "--repeats must be at least 1" in capsys.readouterr().err
