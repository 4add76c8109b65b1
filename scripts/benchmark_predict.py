"""The first prediction: `skeljax-predict --checkpoint X.pth --input FILE.skeleton --json` against PyTorch.

Each measurement is a fresh process, timed from its start to its exit, as a user would see it:
  skeljax cold   skeljax-predict with an empty JAX compilation cache (a new $XDG_CACHE_HOME)
  skeljax warm   the same command again, the cache filled by the cold run
  PyTorch        MMAction2 1.2's STGCN (ST-GCN++ settings) with PYSKL's head: import torch and MMAction2, build the
                 model, load the .pth, read the .skeleton and make the 10 test clips of 100 frames (the same NumPy
                 pipeline skeljax uses), one forward pass under torch.inference_mode, top-5 as JSON
The runs alternate (cold, warm, PyTorch) --repeats times; the page reports medians. Both answers are compared
(top-5 classes equal, probabilities within 1e-4). Then one more cold and warm process each time their phases:
imports, building and loading the model, the first prediction (compiling or loading the forward from the cache,
reading and transforming the file, running; within it JAX's own tracing, lowering and XLA-compile events) and a
second prediction (running only).

The checkpoint is a PYSKL-format ST-GCN++ NTU-60 .pth with random weights (skeljax.testing.torch_reference, the
parity tests' writer); the input a raw NTU .skeleton file of two people over 140 frames.

  python scripts/benchmark_predict.py [--repeats 3] [--json PATH] [--update-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from skeljax.testing.benchmarking import machine_info, markdown_table, replace_section

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "benchmarks.md")
SECTION = "## First prediction"
FRAMES = 140

# The PyTorch side, run as `python -c TORCH_PREDICT PTH SKELETON`; it imports nothing of JAX.
TORCH_PREDICT = """
import json, sys
import numpy as np, torch
from skeljax.data.ntu_raw import read_ntu_skeleton
from skeljax.data.pipelines import make_pipeline
from skeljax.testing import torch_reference as tr
torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))
stgcn = tr.mmaction_stgcn_class()(**tr.pyskl_backbone_kwargs("stgcnpp", "nturgb+d"))
model = tr.PysklRecognizer(stgcn, tr.GCNHeadRef(60), "nturgb+d").eval()
model.load_state_dict(torch.load(sys.argv[1], map_location="cpu", weights_only=False)["state_dict"])
clips = make_pipeline("nturgb+d", "j", 100, 10, "test")(read_ntu_skeleton(sys.argv[2]))
with torch.inference_mode():
    probs = model.forward_test(torch.from_numpy(np.asarray(clips, np.float32))[None])[0].numpy()
top = np.argsort(-probs)[:5]
print(json.dumps({"top5": [{"index": int(i), "prob": float(probs[i])} for i in top]}))
"""

# In-process phases of skeljax-predict's work, run as `python -c SKELJAX_PHASES PTH SKELETON`.
SKELJAX_PHASES = """
import collections, json, sys, time
t0 = time.perf_counter()
import jax
from jax import monitoring
from skeljax import compilation_cache
spent = collections.Counter()  # JAX's own compile-phase events: tracing, lowering to MLIR, XLA compiling
monitoring.register_event_duration_secs_listener(lambda event, secs, **_: spent.update({event: secs}))
from skeljax.predict import load_predictor, predict
t1 = time.perf_counter()
compilation_cache.setup_for_command(no_cache=False)
predictor = load_predictor(sys.argv[1])
t2 = time.perf_counter()
predict(predictor, sys.argv[2])
t3 = time.perf_counter()
predict(predictor, sys.argv[2])
t4 = time.perf_counter()
trace_and_lower = spent["/jax/core/compile/jaxpr_trace_duration"] + spent["/jax/core/compile/jaxpr_to_mlir_module_duration"]
print(json.dumps({"imports": t1 - t0, "build_and_load": t2 - t1, "first_prediction": t3 - t2, "run_only": t4 - t3,
                  "trace_and_lower": trace_and_lower, "xla_compile": spent["/jax/core/compile/backend_compile_duration"]}))
"""


def write_inputs(directory: str) -> tuple[str, str]:
    """(the .pth, the .skeleton) in `directory`."""
    import numpy as np

    from skeljax.testing import torch_reference as tr

    pth = os.path.join(directory, "pyskl_stgcnpp_ntu60.pth")
    tr.save_released_checkpoint(tr.build_pyskl_recognizer("stgcnpp", "nturgb+d", 60, seed=0), pth, style="pyskl")
    rng = np.random.default_rng(0)
    bodies = []
    for body_id, offset in ((72057594037931101, 0.0), (72057594037931102, 1.0)):
        shape = np.stack([rng.uniform(-0.2, 0.2, 25), rng.uniform(-0.8, 0.8, 25), rng.uniform(-0.1, 0.1, 25)], 1)
        drift = np.cumsum(rng.normal(0, 0.01, (FRAMES, 1, 3)), axis=0)
        bodies.append((body_id, shape + drift + (offset, 0.0, 3.0)))
    lines = [str(FRAMES)]
    for t in range(FRAMES):  # the NTU text format: bodies per frame; per body an info line, 25, 25 joint lines
        lines.append(str(len(bodies)))
        for body_id, joints in bodies:
            lines += [f"{body_id} 0 0 1 0 1 0 0.01 -0.2 2", "25"]
            lines += [f"{x:.4f} {y:.4f} {z:.4f} 0 0 0 0 0 0 0 0 2" for x, y, z in joints[t]]
    skeleton = os.path.join(directory, "S001C002P003R002A013.skeleton")
    with open(skeleton, "w") as f:
        f.write("\n".join(lines) + "\n")
    return pth, skeleton


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    """(wall seconds from start to exit, stdout) of a fresh process; a failure ends the benchmark."""
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[:3])} ... failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return seconds, res.stdout


def predict_command(pth: str, skeleton: str) -> list[str]:
    """The installed `skeljax-predict` next to this Python, else `python -m skeljax.predict` (the same main)."""
    script = os.path.join(os.path.dirname(sys.executable), "skeljax-predict")
    head = [script] if os.path.exists(script) else [sys.executable, "-m", "skeljax.predict"]
    return head + ["--checkpoint", pth, "--input", skeleton, "--json"]


def same_answer(skeljax_out: str, torch_out: str) -> float:
    """The largest difference of the top-5 probabilities; the classes must agree."""
    a, b = json.loads(skeljax_out)["top5"], json.loads(torch_out)["top5"]
    if [t["index"] for t in a] != [t["index"] for t in b]:
        sys.exit(f"error: skeljax and PyTorch disagree on the top-5 classes:\n{skeljax_out}\n{torch_out}")
    return max(abs(x["prob"] - y["prob"]) for x, y in zip(a, b))


def measure(pth: str, skeleton: str, repeats: int, work: str) -> dict:
    """Medians over alternating cold, warm and PyTorch processes, and the phases of one cold and one warm run."""
    base = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    times = {"skeljax_cold_s": [], "skeljax_warm_s": [], "torch_s": []}
    diffs, phases = [], {}
    for i in range(repeats):
        env = {**base, "XDG_CACHE_HOME": os.path.join(work, f"xdg{i}")}  # an empty cache for each cold run
        cold, out = timed(predict_command(pth, skeleton), env)
        warm, _ = timed(predict_command(pth, skeleton), env)
        torch_s, torch_out = timed([sys.executable, "-c", TORCH_PREDICT, pth, skeleton], base)
        for key, value in zip(times, (cold, warm, torch_s)):
            times[key].append(value)
        diffs.append(same_answer(out, torch_out))
        print(f"run {i + 1}: cold {cold:.1f} s, warm {warm:.1f} s, PyTorch {torch_s:.1f} s", flush=True)
    env = {**base, "XDG_CACHE_HOME": os.path.join(work, "xdg_phases")}
    for name in ("cold", "warm"):
        phases[name] = json.loads(timed([sys.executable, "-c", SKELJAX_PHASES, pth, skeleton], env)[1])
    res = {k: statistics.median(v) for k, v in times.items()}
    res.update(runs=times, max_prob_difference=max(diffs), phases=phases)
    res["cold_ratio"], res["warm_ratio"] = (
        res["skeljax_cold_s"] / res["torch_s"],
        res["skeljax_warm_s"] / res["torch_s"],
    )
    return res


def section(res: dict, argv: list[str]) -> str:
    """The "First prediction" section of docs/benchmarks.md."""
    m = res["machine"]
    rows = [
        [
            "skeljax-predict, cold (empty compilation cache)",
            f"{res['skeljax_cold_s']:.1f}",
            f"{res['cold_ratio']:.2f}x",
        ],
        ["skeljax-predict, warm (cache filled)", f"{res['skeljax_warm_s']:.1f}", f"{res['warm_ratio']:.2f}x"],
        ["PyTorch (MMAction2 1.2 STGCN++)", f"{res['torch_s']:.1f}", "1.00x"],
    ]
    phase_rows = [
        [name.replace("_", " ")] + [f"{res['phases'][run][name]:.2f}" for run in ("cold", "warm")]
        for name in ("imports", "build_and_load", "first_prediction", "run_only")
    ]
    inside = [
        [f"of the first prediction: {name.replace('_', ' ')}"]
        + [f"{res['phases'][run].get(name, float('nan')):.2f}" for run in ("cold", "warm")]
        for name in ("trace_and_lower", "xla_compile")
    ]
    phase_rows[3:3] = inside
    return f"""{SECTION}

Generated by `python scripts/benchmark_predict.py {" ".join(argv)}` on {res["date"]} (median of {res["repeats"]}
alternating runs; {m["cpu"]}, {m["threads"]} usable CPUs, 1-minute load average {m["load_average_at_start"]:.1f} at
the start: other processes sharing the CPUs slow every number). Wall time of a fresh process from
start to exit for one raw NTU `.skeleton` file (two people, {FRAMES} frames) and a PYSKL-format ST-GCN++ NTU-60 `.pth`:
`skeljax-predict --checkpoint X.pth --input FILE.skeleton --json`, against PyTorch doing the same work (imports,
building MMAction2 1.2's STGCN++, loading the `.pth`, the 10 test clips of 100 frames, one forward pass). Both give
the same top-5 (probabilities within {res["max_prob_difference"]:.1e}).

{markdown_table(["run", "seconds", "/ PyTorch"], rows)}

Where skeljax's seconds go (one more process each, phases timed inside it, seconds):

{markdown_table(["phase", "cold", "warm"], phase_rows)}

The model is built abstractly and filled from the file (no random initialisation is computed or compiled,
`skeljax.models.stgcn.abstract_recognizer`), and the commands keep their compiled programs in JAX's persistent cache
(`~/.cache/skeljax/jax`, `$XDG_CACHE_HOME/skeljax/jax` or `$JAX_COMPILATION_CACHE_DIR`; `--no-cache` turns it off):
a warm run loads the compiled forward pass instead of compiling it. "xla compile" is JAX's backend-compile event
(cold: XLA compiling the forward pass, the only program compiled; warm: loading it from the cache), "trace and
lower" its tracing and lowering events, both summed over the process by a `jax.monitoring` listener; the rest of
the first prediction is reading and transforming the file and running the forward pass ("run only").

What brought the cold run under 1.5x PyTorch (runs of this script on the idle 2-core CPU, 2026-12-07, cold / warm /
PyTorch seconds): 8.3 / 4.1 / 5.2 before; ml_dtypes below 0.7 (`setup.cfg`: 0.7.0's extension alone took 0.55 s
to import, through jax, in every command) and CPU programs compiled with LLVM at optimisation level 1
(`skeljax.sharding.compiler_options`: the forward compiles ~1 s faster and runs as fast) gave 5.9 / 3.2 / 4.7."""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="alternating cold / warm / PyTorch runs (default 3)")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--update-docs", action="store_true", help=f"replace the '{SECTION}' section of {DOCS}")
    args = p.parse_args(argv)
    machine = machine_info()  # before the runs: its load average says what else shared the CPUs
    with tempfile.TemporaryDirectory(prefix="skeljax_predict_bench_") as work:
        pth, skeleton = write_inputs(work)
        res = measure(pth, skeleton, args.repeats, work)
    res.update(machine=machine, date=time.strftime("%Y-%m-%d"), repeats=args.repeats)
    print(json.dumps({k: v for k, v in res.items() if k not in ("machine", "runs")}, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    if args.update_docs:
        shown = [a for a in argv if a != "--update-docs"]
        if "--json" in shown:  # where this run's JSON went says nothing about the measurement
            del shown[shown.index("--json") : shown.index("--json") + 2]
        replace_section(DOCS, SECTION, section(res, shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
