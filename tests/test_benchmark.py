"""scripts/benchmark.py: its reporting helpers, and a tiny end-to-end run that must write the documented keys."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "benchmark.py")


def _load():
    spec = importlib.util.spec_from_file_location("benchmark_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_alternate_calls_in_turn_and_takes_medians():
    bench = _load()
    calls = []
    med = bench.alternate({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=1, repeats=3)
    assert calls == ["a", "b"] * 4
    assert set(med) == {"a", "b"} and all(v >= 0 for v in med.values())


def _float32_result() -> dict:
    """A benchmark result as main() collects it before add_rates (float32 rows only)."""
    return {
        "matmul_gflops": 200.0,
        "matmul_n": 2048,
        "gflop_per_sample": 5.85,
        "inference_batches": [
            {
                "batch": 16,
                "skeljax_samples_per_s": 20.0,
                "torch_samples_per_s": 10.0,
                "ratio": 2.0,
                "skeljax_compile_s": 3.0,
            }
        ],
        "train_step": {
            "batch": 16,
            "skeljax_samples_per_s": 5.0,
            "torch_samples_per_s": 4.0,
            "ratio": 1.25,
            "skeljax_compile_s": 20.0,
        },
    }


def test_rates_and_table():
    bench = _load()
    res = _float32_result()
    bench.add_rates(res, 5.85)
    assert res["inference"]["skeljax_gflops"] == pytest.approx(117.0)
    assert res["inference"]["fraction_of_matmul"] == pytest.approx(117.0 / 200.0)
    assert res["train_step"]["skeljax_gflops"] == pytest.approx(5.0 * 3 * 5.85)
    text = bench.table(res)
    assert "| inference, batch 16 | 20.0 | 10.0 | 2.00x | 117 | 58% | 3.0 |" in text
    assert "| train step, batch 16 | 5.0 | 4.0 | 1.25x |" in text
    assert "Matmul floor" not in text  # no floor measured (non-CPU backend): no column values, no note
    assert text.splitlines()[2].endswith("| 3.0 | - |")


def test_matmul_floor_cell():
    bench = _load()
    res = _float32_result()
    res["train_step"].update(matmul_floor_samples_per_s=7.0, matmul_floor_ratio=1.75, matmul_floor={"seconds": 2.3})
    bench.add_rates(res, 5.85)
    text = bench.table(res)
    assert "| train step, batch 16 | 5.0 | 4.0 | 1.25x | 88 | 44% | 20.0 | 7.0, 1.75x |" in text
    assert "Matmul floor: the samples/s skeljax would reach" in text
    assert "Where a floor reads below its measurement" not in text
    assert bench._floor_note(res) == ""  # no inference floor: nothing to say about the targets
    res["train_step"]["matmul_floor_samples_per_s"] = 4.5  # below the measured 5.0: it bounds nothing
    assert "Where a floor reads below its measurement (train step, batch 16)," in bench.table(res)
    res["train_step"]["matmul_floor_samples_per_s"] = 7.0
    res["inference_batches"][0].update(matmul_floor_samples_per_s=25.0, matmul_floor_ratio=2.5)
    note = bench._floor_note(res)
    # 25 samples/s x 5.85 GFLOP / 200 GFLOP/s = 73%; inference 20 vs 10 samples/s meets 2x; the train step's
    # 5.0 vs 4.0 samples/s meets 1.2x
    assert "allow 2.50x PyTorch at batch 16 (73% of the large-matmul rate); 2x is met." in note
    assert "the training step the products allow 1.75x; 1.2x is met." in note
    # inference at 16: rest 1/16 - 1/25 s, budget 1/(2 x 10) - 1/25 s -> 44%; train at 4.0: rest 1/4 - 1/7 s,
    # budget 1/(1.2 x 4) - 1/7 s -> 61%
    res["inference_batches"][0]["skeljax_samples_per_s"] = 16.0
    res["train_step"]["skeljax_samples_per_s"] = 4.0
    note = bench._floor_note(res)
    assert "2x would need the rest cut to 44% of its present time" in note
    assert "1.2x would need the rest cut to 61% of its present time" in note
    res["train_step"].update(skeljax_samples_per_s=3.0, matmul_floor_samples_per_s=4.5, matmul_floor_ratio=1.125)
    assert "1.2x is out of reach even if nothing else cost any time" in bench._floor_note(res)


def test_mixed_precision_rates_and_rows():
    bench = _load()
    res = _float32_result()
    res["mixed_precision"] = {
        "compute_dtype": "bfloat16",
        "matmul_gflops": 400.0,
        "inference": {
            "batch": 16,
            "skeljax_samples_per_s": 30.0,
            "torch_samples_per_s": 12.0,
            "ratio": 2.5,
            "skeljax_compile_s": 4.0,
        },
        "train_step": {
            "batch": 16,
            "skeljax_samples_per_s": 6.0,
            "torch_samples_per_s": 5.0,
            "ratio": 1.2,
            "skeljax_compile_s": 25.0,
        },
    }
    bench.add_rates(res, 5.85)
    mp = res["mixed_precision"]
    # fractions are of the bf16 matmul rate, speed-ups against the float32 rows of the same run
    assert mp["inference"]["fraction_of_matmul"] == pytest.approx(30.0 * 5.85 / 400.0)
    assert mp["train_step"]["skeljax_gflops"] == pytest.approx(6.0 * 3 * 5.85)
    assert mp["inference"]["skeljax_speedup_over_float32"] == pytest.approx(1.5)
    assert mp["train_step"]["torch_speedup_over_float32"] == pytest.approx(1.25)
    text = bench.table(res)
    assert "| bfloat16 inference, batch 16 | 30.0 | 12.0 | 2.50x | 176 | 44% | 4.0 |" in text
    assert "skeljax 1.50x inference, 1.20x train step; PyTorch 1.20x inference, 1.25x train step" in text


@pytest.mark.slow
def test_quick_run_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, SCRIPT, "--quick", "--frames", "8", "--no-pipeline", "--json", str(out)]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=REPO, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.read_text())
    for section in ("inference", "train_step"):
        for key in ("skeljax_samples_per_s", "torch_samples_per_s", "ratio"):
            assert data[section][key] > 0, (section, key)
    assert data["matmul_gflops"] > 0 and data["inference"]["fraction_of_matmul"] > 0
    for section in ("inference", "train_step"):  # CPU: the products of the compiled programs, timed alone
        assert data[section]["matmul_floor_samples_per_s"] > 0 and data[section]["matmul_floor"]["dots"] > 0
    mp = data["mixed_precision"]
    assert mp["compute_dtype"] == "bfloat16" and mp["matmul_gflops"] > 0
    for section in ("inference", "train_step"):
        for key in ("skeljax_samples_per_s", "torch_samples_per_s", "ratio", "skeljax_speedup_over_float32"):
            assert mp[section][key] > 0, ("mixed_precision", section, key)
    # the script re-executed itself with the malloc settings
    assert data["machine"]["malloc_env"]["MALLOC_ARENA_MAX"] == "1"


def _load_probe():
    spec = importlib.util.spec_from_file_location("compile_probe", os.path.join(REPO, "scripts", "compile_probe.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_compile_probe_writes_one_line_per_program(tmp_path, capsys):
    probe = _load_probe()
    out = tmp_path / "probe.jsonl"
    assert probe.main(["--label", "t", "--parts", "infer", "--batch", "1", "--repeats", "1", "--out", str(out)]) == 0
    (line,) = out.read_text().splitlines()
    rec = json.loads(line)
    assert rec["label"] == "t" and rec["part"] == "infer" and rec["cache"] is False
    assert rec["compile_s"] > 0 and rec["samples_per_s"] > 0 and rec["xla_memory"]["temp_mb"] > 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == rec
    with pytest.raises(SystemExit, match="unknown program 'bogus'"):
        probe.main(["--label", "t", "--parts", "bogus"])


def test_remat_rows_and_gpu_device_memory():
    bench = _load()
    res = _float32_result()
    res["train_step"].update(remat=True, skeljax_xla_memory={"temp_mb": 900.0, "total_mb": 950.0})
    res["train_step_without_remat"] = {
        **res["train_step"],
        "remat": False,
        "skeljax_samples_per_s": 4.0,
        "ratio": 1.0,
        "skeljax_xla_memory": {"temp_mb": 3900.0, "total_mb": 3950.0},
    }
    bench.add_rates(res, 5.85)
    assert res["train_step_without_remat"]["skeljax_gflops"] == pytest.approx(4.0 * 3 * 5.85)
    text = bench.table(res)
    assert "| train step, batch 16, remat | 5.0 | 4.0 | 1.25x |" in text
    assert "| train step, batch 16, no remat | 4.0 | 4.0 | 1.00x |" in text
    assert "train step batch 16 900 MB, train step batch 16 without remat 3900 MB." in text
    assert "Device memory of the training step" not in text  # PyTorch's was not measured (CPU)
    res["train_step"]["torch_peak_device_mb"] = 2000.0
    res["train_step_without_remat"]["torch_peak_device_mb"] = 2000.0
    text = bench.table(res)
    assert "batch 16 with remat: skeljax 950 MB, PyTorch 2000 MB, batch 16: skeljax 3950 MB, PyTorch 2000 MB." in text
