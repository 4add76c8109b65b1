"""skeljax ST-GCN++ vs the PyTorch reference (MMAction2 1.2.0's STGCN): inference and training-step throughput.

One run on one machine, same shapes, alternating skeljax and PyTorch calls so that drift (other processes, CPU
frequency) hits both alike; medians over repeats after warm-up. Also measures the machine's fp32 matmul rate with
XLA's dot (the ceiling for this model), compile times, peak memory and the input pipeline's samples/s.

glibc malloc settings decide CPU speed for both frameworks (docs/benchmarks.md): the script re-executes itself with
MALLOC_ENV set when any of those variables is missing (values already set are kept).

Examples:
  python scripts/benchmark.py                      # full run (~5 min on 2 cores)
  python scripts/benchmark.py --update-docs        # ... and regenerate docs/benchmarks.md
  python scripts/benchmark.py --quick --json /tmp/bench.json
"""

from __future__ import annotations

import contextlib
import os
import sys

# Before jax/torch load: both take scratch memory from glibc malloc on every call; without these settings glibc
# maps and page-faults fresh pages each time (stack notes: ~66k faults per call, 1.6x slower inference).
MALLOC_ENV = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "8589934592",
    "MALLOC_TOP_PAD_": "536870912",
}
if __name__ == "__main__" and "--no-malloc-env" not in sys.argv and any(k not in os.environ for k in MALLOC_ENV):
    for _k, _v in MALLOC_ENV.items():
        os.environ.setdefault(_k, _v)
    os.execv(sys.executable, [sys.executable] + sys.argv)

import argparse
import datetime
import importlib.util
import json
import math
import platform
import resource
import statistics
import subprocess
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "scripts"))  # matmul_floor, a sibling script

from matmul_floor import Dot, matmul_floor, time_dot

from skeljax import inference, sharding
from skeljax.data import input_pipeline
from skeljax.models.stgcn import Recognizer, stgcnpp_spec
from skeljax.run_config import usable_cores
from skeljax.train.compile_step import compile_train_step, memory_plan
from skeljax.train.optim import make_optimizer
from skeljax.train.state import TrainParts
from skeljax.train.step import jit_train_step, make_train_step

GFLOP_PER_SAMPLE = 5.85  # ST-GCN++ forward, NTU layout, M=2, T=100 (2.925 GMAC, counted with PyTorch's FlopCounterMode on PYSKL's model)
NUM_CLASSES = 60
DOCS = os.path.join(REPO, "docs", "benchmarks.md")


# ------------------------------------------------------------------------------------------------------------------
# Machine
# ------------------------------------------------------------------------------------------------------------------


def num_threads() -> int:
    """CPUs this process may run on: XLA sizes its thread pool by them; torch gets the same."""
    return usable_cores()


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "flax": _version("flax"),
        "numpy": np.__version__,
        "jax_backend": jax.default_backend(),
        "jax_device": str(jax.devices()[0].device_kind),
        "malloc_env": {k: os.environ.get(k) for k in MALLOC_ENV},
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    for mod in ("torch", "mmaction"):
        info[mod] = _version(mod)
    return info


def _xla_flags_note(m: dict) -> str:
    return f"\n- XLA_FLAGS: `{m['xla_flags']}`" if m.get("xla_flags") else ""


def _version(mod: str) -> str | None:
    try:
        return __import__(mod).__version__
    except Exception:  # noqa: BLE001 - absent or broken optional package: report None
        return None


def matmul_gflops(n: int, repeats: int, dtype=jnp.float32) -> float:
    """(n x n) @ (n x n) rate with XLA's dot on the default device (`dtype` operands, float32 result), median of
    `repeats`."""
    name = {jnp.dtype(jnp.float32): "f32", jnp.dtype(jnp.bfloat16): "bf16"}[jnp.dtype(dtype)]
    dot = Dot(name, (n, n), name, (n, n), (1,), (0,), (), (), "f32")
    return dot.flops / time_dot(dot, repeats, warmup=1) / 1e9


# ------------------------------------------------------------------------------------------------------------------
# skeljax
# ------------------------------------------------------------------------------------------------------------------


def skeljax_infer(x_shape, compute_dtype):
    """(call(keypoint (B, 1, M, T, V, C)) -> scores, compile seconds, XLA memory analysis, compiled) for eval-mode
    inference: the forward that evaluation and prediction run (`skeljax.inference`), one clip per sample."""
    model = Recognizer(stgcnpp_spec(NUM_CLASSES), rngs=nnx.Rngs(0))
    if compute_dtype != "float32":
        model.set_compute_dtype(compute_dtype)
    mesh = sharding.make_mesh()
    forward, params, stats = inference.model_forward(model, mesh, "prob")
    clips = jax.ShapeDtypeStruct((x_shape[0], 1) + tuple(x_shape[1:]), jnp.float32)
    t = time.perf_counter()
    compiled = forward.lower(params, stats, clips).compile()
    compile_s = time.perf_counter() - t

    def call(keypoint):
        return compiled(forward.rest, params, stats, keypoint)

    return call, compile_s, _memory(compiled), compiled


def skeljax_train(x_shape, compute_dtype, remat="auto"):
    """(step(batch) -> metrics, batch sharding, compile seconds, memory, compiled, remat chosen): the trainer's own
    jitted step (`skeljax.train.make_train_step` / `jit_train_step`: forward, backward, SGD with Nesterov momentum
    and weight decay, donated state) at a constant learning rate, compiled as the trainer compiles it
    (`skeljax.train.compile_step`, which decides `remat` = config.remat); `step` keeps the updated state for the
    next call."""
    model = Recognizer(stgcnpp_spec(NUM_CLASSES), rngs=nnx.Rngs(0))
    if compute_dtype != "float32":
        model.set_compute_dtype(compute_dtype)
    schedule = optax.constant_schedule(0.1)
    tx = make_optimizer(schedule, momentum=0.9, nesterov=True, weight_decay=5e-4)
    parts = TrainParts(model, tx)
    mesh = sharding.make_mesh()
    batch = {
        "keypoint": jax.ShapeDtypeStruct((x_shape[0], 1) + tuple(x_shape[1:]), jnp.float32),
        "label": jax.ShapeDtypeStruct(x_shape[:1], jnp.int32),
    }
    state = sharding.put_replicated(parts.state, mesh)
    built = compile_train_step(
        lambda r: jit_train_step(make_train_step(parts, tx, schedule, seed=0, remat=r), mesh), remat, state, batch
    )
    compiled = built.compiled
    box = [state]

    def step(arrays):
        box[0], metrics = compiled(box[0], arrays)
        return metrics

    return step, input_pipeline.data_sharding(mesh), built.seconds, _memory(compiled), compiled, built.remat


def _memory(compiled) -> dict | None:
    """XLA's memory plan per device (`skeljax.train.compile_step.memory_plan`) as this script's JSON keys (MB)."""
    try:
        plan = memory_plan(compiled)
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if plan is None:
        return None
    # alias: outputs written into donated arguments; total: arguments plus what a call allocates beyond them
    keys = {"temp_mb": plan.temp, "argument_mb": plan.argument, "output_mb": plan.output, "alias_mb": plan.alias}
    return {**keys, "total_mb": plan.argument + plan.new}


# ------------------------------------------------------------------------------------------------------------------
# PyTorch reference
# ------------------------------------------------------------------------------------------------------------------


def torch_setup(threads: int):
    import torch

    from tests import torch_reference as ref

    torch.set_num_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch, ref, device


def torch_model(ref, torch, device, train: bool):
    model = ref.build_pyskl_recognizer("stgcnpp", "nturgb+d", num_classes=NUM_CLASSES, seed=None).to(device)
    return model.train(train)


def torch_autocast(torch, device, compute_dtype):
    """PyTorch's own mixed precision for the same comparison: autocast to bfloat16 (convolutions and matmuls in
    bfloat16, reductions and BatchNorm in float32), or nothing for float32."""
    if compute_dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=getattr(torch, compute_dtype))


def torch_flops_per_sample(torch, ref, x_shape) -> float:
    """Forward FLOPs of one sample at these shapes (PyTorch's FlopCounter: conv + einsum, 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = torch_model(ref, torch, "cpu", train=False)
    x = torch.zeros((1,) + tuple(x_shape[1:]))
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops() / 1e9


# ------------------------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------------------------


def alternate(fns: dict, warmup: int, repeats: int) -> dict:
    """Median seconds per call of each fn, calling them in turn (a, b, a, b, ...) after `warmup` rounds."""
    times = {k: [] for k in fns}
    for r in range(warmup + repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            if r >= warmup:
                times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_inference(batch, frames, joints, repeats, warmup, threads, compute_dtype, with_torch, tctx) -> dict:
    shape = (batch, 2, frames, joints, 3)
    x_np = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    call, compile_s, mem, compiled = skeljax_infer(shape, compute_dtype)
    x = jax.device_put(x_np[:, None], input_pipeline.data_sharding(sharding.make_mesh()))
    fns = {"skeljax": lambda: call(x).block_until_ready()}
    out = {"batch": batch, "skeljax_compile_s": compile_s, "skeljax_xla_memory": mem}
    if with_torch:
        torch, ref, device = tctx
        tmodel = torch_model(ref, torch, device, train=False)
        tx = torch.from_numpy(x_np).to(device)

        def tcall():
            with torch.inference_mode(), torch_autocast(torch, device, compute_dtype):
                tmodel(tx)
            if device == "cuda":
                torch.cuda.synchronize()

        fns["torch"] = tcall
    med = alternate(fns, warmup, repeats)
    out["skeljax_samples_per_s"] = batch / med["skeljax"]
    if with_torch:
        out["torch_samples_per_s"] = batch / med["torch"]
        out["ratio"] = out["skeljax_samples_per_s"] / out["torch_samples_per_s"]
    _add_matmul_floor(out, compiled, batch)
    return out


def bench_train(batch, frames, joints, repeats, warmup, threads, compute_dtype, with_torch, tctx, remat="auto") -> dict:
    shape = (batch, 2, frames, joints, 3)
    rng = np.random.default_rng(1)
    x_np = rng.normal(size=shape).astype(np.float32)
    y_np = rng.integers(0, NUM_CLASSES, size=batch)
    step, data, compile_s, mem, compiled, remat = skeljax_train(shape, compute_dtype, remat)
    arrays = jax.device_put({"keypoint": x_np[:, None], "label": y_np.astype(np.int32)}, data)

    def jstep():
        step(arrays)["train/loss"].block_until_ready()

    fns = {"skeljax": jstep}
    out = {"batch": batch, "remat": remat, "skeljax_compile_s": compile_s, "skeljax_xla_memory": mem}
    if with_torch:
        torch, ref, device = tctx
        tmodel = torch_model(ref, torch, device, train=True)
        opt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
        tx, ty = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)

        def tstep():
            opt.zero_grad(set_to_none=True)
            with torch_autocast(torch, device, compute_dtype):
                loss = torch.nn.functional.cross_entropy(tmodel(tx).float(), ty)
            loss.backward()
            opt.step()
            loss.item()

        fns["torch"] = tstep
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
    med = alternate(fns, warmup, repeats)
    out["skeljax_samples_per_s"] = batch / med["skeljax"]
    if with_torch:
        out["torch_samples_per_s"] = batch / med["torch"]
        out["ratio"] = out["skeljax_samples_per_s"] / out["torch_samples_per_s"]
        if device == "cuda":  # parameters, gradients, momentum and the step's activations, as XLA's total counts
            out["torch_peak_device_mb"] = torch.cuda.max_memory_allocated() / 2**20
    _add_matmul_floor(out, compiled, batch)
    return out


def _add_matmul_floor(out: dict, compiled, batch: int) -> None:
    """The samples/s the program would reach if its matrix products were all it did (scripts/matmul_floor.py),
    and that as a ratio to PyTorch: the bound the XLA kernels of this machine put on the measurement."""
    floor = matmul_floor(compiled, repeats=5)
    if floor is None:  # products are library calls outside the HLO text (GPU, TPU)
        return
    out["matmul_floor"] = floor
    out["matmul_floor_samples_per_s"] = batch / floor["seconds"]
    if "torch_samples_per_s" in out:
        out["matmul_floor_ratio"] = out["matmul_floor_samples_per_s"] / out["torch_samples_per_s"]


def memory_probe(which: str, batch: int, frames: int, joints: int, compute_dtype: str, remat: str = "off") -> float:
    """Peak RSS (MB) of a fresh process that runs only `which` (e.g. 'skeljax-infer') twice (VmHWM)."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--_probe",
        which,
        "--batch",
        str(batch),
        "--frames",
        str(frames),
        "--joints",
        str(joints),
        "--compute-dtype",
        compute_dtype,
        "--remat",
        remat,
    ]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900, env=os.environ.copy())
    if res.returncode != 0:
        raise RuntimeError(f"memory probe {which} failed:\n{res.stderr[-2000:]}")
    return float(res.stdout.strip().splitlines()[-1])


def run_probe(which: str, batch: int, frames: int, joints: int, compute_dtype: str, remat: str = "auto") -> None:
    shape = (batch, 2, frames, joints, 3)
    fw, kind = which.split("-")
    tctx = torch_setup(num_threads()) if fw == "torch" else None
    bench = bench_inference if kind == "infer" else bench_train
    if fw == "skeljax" and kind == "infer":
        bench(batch, frames, joints, 1, 1, num_threads(), compute_dtype, False, None)
    elif fw == "skeljax":
        bench(batch, frames, joints, 1, 1, num_threads(), compute_dtype, False, None, remat)
    else:  # time the torch side only: a stub skeljax would still compile, so run torch by hand
        torch, ref, device = tctx
        model = torch_model(ref, torch, device, train=kind == "train")
        x = torch.zeros(shape, device=device)
        for _ in range(2):
            if kind == "infer":
                with torch.inference_mode():
                    model(x)
            else:
                torch.nn.functional.cross_entropy(model(x), torch.zeros(batch, dtype=torch.long)).backward()
    print(_peak_rss_mb())


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (reset by exec, unlike ru_maxrss, which a child inherits from its parent)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: kB on Linux, best effort


# ------------------------------------------------------------------------------------------------------------------
# Input pipeline (scripts/benchmark_pipeline.py)
# ------------------------------------------------------------------------------------------------------------------


def pipeline_rate(batch: int, quick: bool) -> dict:
    """Samples/s of the ST-GCN++ train transform ('j') on synthetic data: bare loop and grain with 0 workers."""
    spec = importlib.util.spec_from_file_location(
        "benchmark_pipeline", os.path.join(REPO, "scripts", "benchmark_pipeline.py")
    )
    bp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bp)
    from skeljax.data.pipelines import make_pipeline
    from skeljax.data.tfds_builders import load_source

    per_class, steps = (10, 5) if quick else (50, 30)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    with tempfile.TemporaryDirectory() as tmp:
        source = load_source("skeljax_synthetic/3d", "train", tmp, num_per_class=per_class)
        transform = make_pipeline("nturgb+d", "j", clip_len=100, mode="train")
        bare = bp.bare_rate(source, transform, steps * batch)
        _, grain0 = bp.iterator_rate(source, transform, batch, steps, 0, mesh)
    return {"bare_samples_per_s": bare, "grain_0_workers_samples_per_s": grain0}


def fresh_process_pipeline_rate(batch: int, quick: bool) -> dict:
    """`pipeline_rate` in a fresh process: in this one, after the XLA and PyTorch runs, the same loop measured at
    a third to a half of its rate in a fresh process (258 against 729-779 samples/s with grain)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_probe", "pipeline", "--train-batch", str(batch)]
    res = subprocess.run(cmd + (["--quick"] if quick else []), check=False, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        raise RuntimeError(f"input pipeline probe failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------------


def add_rates(res: dict, gflop_per_sample: float) -> None:
    """Achieved GFLOP/s (forward FLOPs; a train step counts 3x) and the fraction of the matmul rate."""
    mm = res["matmul_gflops"]
    for entry in res["inference_batches"]:
        entry["skeljax_gflops"] = entry["skeljax_samples_per_s"] * gflop_per_sample
        entry["fraction_of_matmul"] = entry["skeljax_gflops"] / mm
    ts = res["train_step"]
    for e in (ts, res.get("train_step_without_remat")):
        if e:  # forward + 2x for backward (a rematerialised step computes more: the model's FLOPs are counted)
            e["skeljax_gflops"] = e["skeljax_samples_per_s"] * 3 * gflop_per_sample
            e["fraction_of_matmul"] = e["skeljax_gflops"] / mm
    first = res["inference_batches"][0]
    res["inference"] = {
        k: first[k]
        for k in (
            "batch",
            "skeljax_samples_per_s",
            "torch_samples_per_s",
            "ratio",
            "skeljax_gflops",
            "fraction_of_matmul",
            "matmul_floor",
            "matmul_floor_samples_per_s",
            "matmul_floor_ratio",
        )
        if k in first
    }
    mp = res.get("mixed_precision")
    if mp:
        for key, mult, f32 in (("inference", 1, first), ("train_step", 3, ts)):
            e = mp[key]
            e["skeljax_gflops"] = e["skeljax_samples_per_s"] * mult * gflop_per_sample
            e["fraction_of_matmul"] = e["skeljax_gflops"] / mp["matmul_gflops"]
            e["skeljax_speedup_over_float32"] = e["skeljax_samples_per_s"] / f32["skeljax_samples_per_s"]
            if "torch_samples_per_s" in e and "torch_samples_per_s" in f32:
                e["torch_speedup_over_float32"] = e["torch_samples_per_s"] / f32["torch_samples_per_s"]


def table(res: dict) -> str:
    header = (
        "| measurement | skeljax samples/s | PyTorch samples/s | skeljax / PyTorch | skeljax GFLOP/s "
        "| of matmul rate | skeljax compile s | matmul floor: samples/s, x PyTorch |"
    )
    rows = [header, "|---|---|---|---|---|---|---|---|"]

    def fmt(name, e):
        t = e.get("torch_samples_per_s")
        r = e.get("ratio")
        rows.append(
            f"| {name} | {e['skeljax_samples_per_s']:.1f} | {'-' if t is None else f'{t:.1f}'} | "
            f"{'-' if r is None else f'{r:.2f}x'} | {e['skeljax_gflops']:.0f} | "
            f"{100 * e['fraction_of_matmul']:.0f}% | {e['skeljax_compile_s']:.1f} | {_floor_cell(e)} |"
        )

    measured = _rows(res)
    for name, e in measured:
        fmt(name, e)
    mp = res.get("mixed_precision")
    out = "\n".join(rows)
    if any("matmul_floor" in e for _, e in measured):
        out += (
            "\n\nMatmul floor: the samples/s skeljax would reach if its matrix products were all it computed, "
            "each product of the compiled program timed alone through XLA at its own shapes "
            '(`scripts/matmul_floor.py`); "x PyTorch" is that bound as a ratio to PyTorch\'s measured samples/s. '
            "Rearranging the other work (BatchNorm, ReLU, shifts, copies) cannot pass it; only fewer FLOPs "
            "or faster product kernels can."
        )
        below = [
            name for name, e in measured if e.get("matmul_floor_samples_per_s", math.inf) < e["skeljax_samples_per_s"]
        ]
        if below:
            out += (
                f" Where a floor reads below its measurement ({'; '.join(below)}), the products timed alone took "
                "slower kernels than they do inside the program, and that floor bounds nothing."
            )
    out += f"\n\nfp32 matmul rate (XLA dot, {res['matmul_n']}x{res['matmul_n']}): {res['matmul_gflops']:.0f} GFLOP/s."
    if mp:
        out += f" {mp['compute_dtype']} matmul rate (same dot, float32 result): {mp['matmul_gflops']:.0f} GFLOP/s."
    out += f" Forward cost: {res['gflop_per_sample']:.2f} GFLOP per sample"
    out += " (a training step is counted as 3x the forward)."
    if mp:
        e, t = mp["inference"], mp["train_step"]
        out += (
            f"\n\nMixed precision ({mp['compute_dtype']} rows; `config.compute_dtype='{mp['compute_dtype']}'`): "
            f"skeljax multiplies {mp['compute_dtype']} operands with float32 accumulation and keeps activations, "
            "BatchNorm and the loss in float32; PyTorch runs under `torch.autocast` to the same dtype. "
            f'Their "of matmul rate" is relative to the {mp["compute_dtype"]} rate. Speed-up over float32: '
            f"skeljax {e['skeljax_speedup_over_float32']:.2f}x inference, "
            f"{t['skeljax_speedup_over_float32']:.2f}x train step"
        )
        if "torch_speedup_over_float32" in e:
            out += (
                f"; PyTorch {e['torch_speedup_over_float32']:.2f}x inference, "
                f"{t['torch_speedup_over_float32']:.2f}x train step"
            )
        out += "."
    if res.get("memory_mb"):
        mem = ", ".join(f"{k} {v:.0f} MB" for k, v in res["memory_mb"].items())
        out += f"\n\nPeak RSS of a fresh process running only that workload (VmHWM): {mem}."
    xla = [
        f"{name} {e['skeljax_xla_memory']['temp_mb']:.0f} MB"
        for name, e in [(f"inference batch {e['batch']}", e) for e in res["inference_batches"]]
        + [(f"train step batch {res['train_step']['batch']}", res["train_step"])]
        + [(f"train step batch {e['batch']} without remat", e) for e in [res.get("train_step_without_remat")] if e]
        if e.get("skeljax_xla_memory")
    ]
    if xla:
        out += f"\n\nXLA scratch memory of the compiled skeljax programs (memory_analysis): {', '.join(xla)}."
    steps = [e for e in (res["train_step"], res.get("train_step_without_remat")) if e and "torch_peak_device_mb" in e]
    if steps:
        out += "\n\nDevice memory of the training step (skeljax: XLA's scratch + arguments + outputs - donated; "
        out += "PyTorch: `torch.cuda.max_memory_allocated` over its steps): " + ", ".join(
            f"batch {e['batch']}{' with remat' if e.get('remat') else ''}: skeljax "
            f"{e['skeljax_xla_memory']['total_mb']:.0f} MB, PyTorch {e['torch_peak_device_mb']:.0f} MB"
            for e in steps
        )
        out += "."
    if res.get("pipeline"):
        p = res["pipeline"]
        if "error" in p:
            out += f"\n\nInput pipeline: not measured ({p['error']})."
        else:
            out += (
                f"\n\nInput pipeline (ST-GCN++ train transform, joints, synthetic data; a fresh process): "
                f"{p['bare_samples_per_s']:.0f} samples/s in a bare loop, "
                f"{p['grain_0_workers_samples_per_s']:.0f} with grain (0 workers)."
            )
    return out


def _floor_note(res: dict) -> str:
    """What the matmul floor of this run says about the float32 targets (inference 2x PyTorch, training step 1.2x),
    or nothing when no floor was measured."""
    inf, tr = res["inference_batches"][0], res["train_step"]
    if "matmul_floor_ratio" not in inf or "matmul_floor_ratio" not in tr:
        return ""
    frac = inf["matmul_floor_samples_per_s"] * res["gflop_per_sample"] / res["matmul_gflops"]
    return (
        f"\nWhat bounds these numbers: the matmul floor. The products of the inference program, each timed by "
        f"itself at its own shapes, allow {inf['matmul_floor_ratio']:.2f}x PyTorch at batch {inf['batch']} "
        f"({frac:.0%} of the large-matmul rate); 2x {_target_need(inf, 2.0)}. For the training step the products "
        f"allow {tr['matmul_floor_ratio']:.2f}x; 1.2x {_target_need(tr, 1.2)}. Most of the rest is memory traffic: "
        "elementwise passes (BatchNorm, ReLU, residual sums, temporal shifts, concatenations) that XLA's CPU backend "
        "does not fuse into its matrix-product kernels, over activations of about 20 MB each at batch 16, which "
        "the 32 MB L3 cache of this CPU cannot hold together. Inference avoids that by running one clip at a time "
        "(`skeljax.inference.rows_per_pass`); the training step cannot, since each BatchNorm needs the statistics "
        "of the whole batch before any clip can go on.\n"
    )


def _target_need(row: dict, target: float) -> str:
    """How far a measurement is from `target` x PyTorch, given what its products alone cost."""
    rest = 1 / row["skeljax_samples_per_s"] - 1 / row["matmul_floor_samples_per_s"]
    budget = 1 / (target * row["torch_samples_per_s"]) - 1 / row["matmul_floor_samples_per_s"]
    if rest <= budget:
        return "is met"
    if budget <= 0:
        return "is out of reach even if nothing else cost any time"
    return f"would need the rest cut to {budget / rest:.0%} of its present time"


def _floor_cell(e: dict) -> str:
    if "matmul_floor_samples_per_s" not in e:
        return "-"
    r = e.get("matmul_floor_ratio")
    return f"{e['matmul_floor_samples_per_s']:.1f}" + ("" if r is None else f", {r:.2f}x")


def _rows(res: dict) -> list[tuple[str, dict]]:
    """(table row name, result entry) of every measurement, in table order."""
    rows = [(f"inference, batch {e['batch']}", e) for e in res["inference_batches"]]
    ts = res["train_step"]
    rows.append((f"train step, batch {ts['batch']}" + (", remat" if ts.get("remat") else ""), ts))
    if res.get("train_step_without_remat"):
        rows.append((f"train step, batch {ts['batch']}, no remat", res["train_step_without_remat"]))
    mp = res.get("mixed_precision")
    if mp:
        dt = mp["compute_dtype"]
        rows += [
            (f"{dt} inference, batch {mp['inference']['batch']}", mp["inference"]),
            (f"{dt} train step, batch {mp['train_step']['batch']}", mp["train_step"]),
        ]
    return rows


def _mp_note(res: dict) -> str:
    mp = res.get("mixed_precision")
    if not mp:
        return ""
    return (
        f"; the {mp['compute_dtype']} rows run skeljax with `compute_dtype='{mp['compute_dtype']}'` and PyTorch "
        f"under `torch.autocast(dtype=torch.{mp['compute_dtype']})`"
    )


def _gpu_note(m: dict) -> str:
    """On GPUs XLA's default float32 matmul precision uses TF32 tensor cores: say what the fraction is relative to."""
    if m.get("jax_backend") != "gpu":
        return ""
    return (
        "- GPU: the matmul rate is XLA's default float32 precision, which uses TF32 tensor cores, and the model's\n"
        "  small matrices cannot approach it; read the ratio column. CPU model and thread count above are the host's.\n"
    )


def write_docs(res: dict, argv: list[str], path: str = DOCS) -> None:
    m = res["machine"]
    cmd = "python scripts/benchmark.py " + " ".join(a for a in argv if a != "--update-docs")
    if m.get("xla_flags"):
        cmd = f"XLA_FLAGS={m['xla_flags']} {cmd}"
    text = f"""# Benchmarks: skeljax vs the PyTorch reference

Generated by `scripts/benchmark.py --update-docs` on {res["date"]}. Do not edit by hand; rerun the script.

Model: ST-GCN++ (NTU layout, 60 classes, M=2 persons, T={res["frames"]} frames, V={res["joints"]} joints).
skeljax: the programs the package runs, jitted with explicit shardings: for inference the eval-mode forward of
validation, test and prediction (`skeljax.inference.make_forward`, one clip per sample, 'prob' average); for training
the trainer's step (`skeljax.train.make_train_step` / `jit_train_step`: forward, backward, SGD with Nesterov momentum
and weight decay, the logged norms) with donated state, at a constant learning rate. PyTorch: MMAction2 1.2.0's `STGCN` backbone plus a linear head (`tests/torch_reference.py`),
`torch.inference_mode()` for inference, `loss.backward()` + `torch.optim.SGD` for training,
`torch.set_num_threads({m["threads"]})` (the CPUs XLA uses). Medians over repeats after warm-up, skeljax and PyTorch
calls alternating. Compute dtype: {res["compute_dtype"]}{_mp_note(res)}.

Command: `{cmd.strip()}`

## Results

{table(res)}

## Machine

- CPU: {m["cpu"]}, {m["cpu_count"]} CPUs ({m["threads"]} usable), {m.get("memory_gb", "?")} GB RAM; JAX backend
  {m["jax_backend"]} ({m["jax_device"]}); 1-minute load average when the run started: {m.get("load_average_at_start")}
  (other processes sharing the CPUs lower every number; the matmul rate above shows how much was left)
{_gpu_note(m)}- Python {m["python"]}, jax {m["jax"]}, flax {m["flax"]}, numpy {m["numpy"]}, torch {m["torch"]},
  mmaction2 {m["mmaction"]}; {m["platform"]}{_xla_flags_note(m)}

## Environment: glibc malloc

The script runs with these variables (it re-executes itself with them when any is missing; `--no-malloc-env`
turns that off). Both frameworks take hundreds of MB of scratch memory per call from malloc; with glibc's defaults
every call maps and page-faults fresh pages, which costs 1.5-2x in speed for both. Use the same settings for
training and evaluation runs on CPU:

```
{chr(10).join(f"export {k}={v}" for k, v in MALLOC_ENV.items())}
```

## How skeljax is organised for speed

- Activations are laid out joints-first, (V, N*M, T, C): every 1x1 convolution is one matrix product over the
  channels and the graph aggregation is one matrix product over the joints, with no transposes in between.
- The graph aggregation runs before the 1x1 convolution (fewer channels to aggregate when C_in < C_out); the
  convolution's bias is aggregated through the graph exactly.
- MSTCN: the six branch 1x1 convolutions that share an input are one matrix product; each dilated branch's
  temporal convolution is a small matrix product to its k taps, which one fused pass shifts and sums (a single
  block-diagonal product for all branches did ~5x the FLOPs and cost a third of inference time).
- Inference on one CPU device runs the clips through the network one at a time, in a compiled loop
  (`skeljax.inference.rows_per_pass`): a clip's activations (~1.3 MB per tensor) stay in the L3 cache from layer to
  layer, where batch-16 tensors (~20 MB each, two or three live at once against 32 MB of L3) stream through memory
  at ~6 GB/s. Batch-16 inference became 1.3-1.4x faster (16.9 -> 23.4 samples/s in one process) and its scratch
  memory 250 -> 24 MB. GPUs, TPUs and multi-device meshes keep the whole batch in every kernel.
- In eval mode every BatchNorm is folded at trace time: into the preceding matrix product where there is one,
  into the MSTCN branches for the BN after their concatenation (after the max pool, which it does not commute with).
- Training, CPU: matrix-product weight gradients are computed from materialised operands (an optimization barrier
  in a custom VJP): XLA otherwise fused BatchNorm's backward into transposing copies that read arrays in column
  order (~40% of the step). BatchNorm has a hand-written backward (two reductions, one pass). On GPU the plain
  product is used (XLA 0.11's GPU compiler aborts on the barrier form, and GPUs need no help with transposes).
- Mixed precision (`config.compute_dtype='bfloat16'`): only the operands of the matrix products are rounded to
  bfloat16, with float32 accumulation; activations, BatchNorm, residual sums and the loss stay float32. XLA on CPU
  computes bfloat16 elementwise work in float32 with conversion passes, so bfloat16 activations were slower there
  than float32, while bfloat16 products run about twice as fast on CPUs with AVX512-BF16. On CPU the weight
  gradients stay float32 products (they run outside XLA's fast kernels, where bfloat16 only adds conversions).
- Rematerialisation (`config.remat`, `Recognizer.set_remat`): the training step keeps only each block's input
  for the backward pass and recomputes the block there; the recomputation reads 0 x one element of the output
  gradient, so that XLA cannot merge it back into the forward pass (it did with `jax.checkpoint`, whose
  optimization barriers XLA's CPU pipeline drops). A quarter of the step's scratch memory for one more forward
  pass: the "remat" and "no remat" rows above. `'auto'` turns it on for the CPU backend, where PYSKL's batch of
  128 does not fit 23 GB without it; on a GPU or TPU it compiles the step without remat and keeps it unless XLA's
  memory plan of that step exceeds 80% of the device's free memory (`skeljax.train.compile_step`: the recipe's
  batch on a 16 GB Colab GPU, for instance).
- Parameters, their names and shapes are unchanged (checkpoints and the converter rely on them).

Tried on the 2-core CPU without a gain (within the 5-7% noise of identical runs, or slower), so that nobody repeats
them blindly: the gcn as conv-first with one K-stacked aggregation product, as one product over K*C_in after a
transposing copy, or with per-subset aggregation; an optimization barrier on the MSTCN concatenation's gradient
(so that the branches' gradient slices stop recomputing the BatchNorm backward) or after every block; XLA CPU
flags (oneDNN, XNNPACK, the concurrency-optimised scheduler, YNNPACK fusion types); bfloat16 activations; weight
gradients as standard-form products after an explicit transpose, so that YNNPACK runs them (20% slower step); the
first block's 3-channel products as broadcast multiply-adds instead of matrix products (no change beyond 2% in an
in-process A/B); the MSTCN max pool as shifted maxima with a first-maximum custom backward, which removes the index
arrays and scatter XLA makes of reduce-window's gradient on CPU (train step 1.006x in an in-process A/B).
{_floor_note(res)}
Noise: other processes share this machine; run-to-run differences of 5-25% are normal. Compare numbers from one run.
"""
    with open(path, "w") as f:
        f.write(text)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few repeats, batch 2, 20 frames (CI smoke run)")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--update-docs", action="store_true", help="regenerate docs/benchmarks.md")
    p.add_argument("--batch", type=int, nargs="+", default=None, help="inference batches (default 16 64)")
    p.add_argument("--train-batch", type=int, default=None, help="training step batch (default 16)")
    p.add_argument("--frames", type=int, default=None, help="T (default 100)")
    p.add_argument("--joints", type=int, default=25, help="V; 25 is the NTU layout the models are built with")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per measurement (default 10)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 2)")
    p.add_argument("--compute-dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time bfloat16 matmuls (skeljax compute_dtype, PyTorch autocast) at the first "
        "inference batch and the train batch (default: on when --compute-dtype is float32)",
    )
    p.add_argument(
        "--remat",
        choices=("auto", "on", "off"),
        default="auto",
        help="rematerialise the training step's blocks as config.remat does (auto: on for the CPU backend; on a "
        "GPU/TPU only when the step without it does not fit the device's free memory)",
    )
    p.add_argument("--no-torch", action="store_true", help="skeljax only")
    p.add_argument("--no-pipeline", action="store_true", help="skip the input pipeline measurement")
    p.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="peak RSS per workload in fresh processes (default: on, off with --quick)",
    )
    p.add_argument("--no-malloc-env", action="store_true", help="do not re-execute with the malloc settings")
    p.add_argument("--docs-from-json", metavar="PATH", help="only regenerate docs/benchmarks.md from a --json file")
    p.add_argument(
        "--docs",
        metavar="PATH",
        default=DOCS,
        help="the page --update-docs / --docs-from-json writes (default docs/benchmarks.md)",
    )
    p.add_argument("--_probe", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.joints != 25:
        p.error("--joints: only the NTU layout (25 joints) is benchmarked")
    q = args.quick
    batches = args.batch or ([2] if q else [16, 64])
    train_batch = args.train_batch or (2 if q else 16)
    frames = args.frames or (20 if q else 100)
    repeats = args.repeats or (2 if q else 10)
    warmup = args.warmup if args.warmup is not None else (1 if q else 2)
    memory = (not q) if args.memory is None else args.memory
    if args.docs_from_json:
        with open(args.docs_from_json) as f:
            res = json.load(f)
        write_docs(res, res.get("argv", []), args.docs)
        print(f"wrote {args.docs}")
        return 0
    if args._probe == "pipeline":
        print(json.dumps(pipeline_rate(train_batch, q)))
        return 0
    if args._probe:
        run_probe(args._probe, batches[0], frames, args.joints, args.compute_dtype, args.remat)
        return 0

    threads = num_threads()
    res = {
        "date": datetime.date.today().isoformat(),
        "frames": frames,
        "joints": args.joints,
        "compute_dtype": args.compute_dtype,
        "machine": machine_info(),
        "repeats": repeats,
        "warmup": warmup,
        "argv": argv,
    }
    print(
        f"machine: {res['machine']['cpu']}, {threads} threads, jax {jax.__version__} "
        f"({jax.default_backend()}), torch {res['machine']['torch']}",
        flush=True,
    )
    n = 2048 if jax.default_backend() == "cpu" else 8192
    res["matmul_n"] = n
    res["matmul_gflops"] = matmul_gflops(n, 5 if q else 20)
    print(f"fp32 matmul (XLA dot {n}): {res['matmul_gflops']:.0f} GFLOP/s", flush=True)
    with_torch = not args.no_torch
    tctx = torch_setup(threads) if with_torch else None
    shape1 = (1, 2, frames, args.joints, 3)
    res["gflop_per_sample"] = (
        torch_flops_per_sample(tctx[0], tctx[1], shape1) if with_torch else GFLOP_PER_SAMPLE * frames / 100
    )
    res["inference_batches"] = []
    for b in batches:
        e = bench_inference(b, frames, args.joints, repeats, warmup, threads, args.compute_dtype, with_torch, tctx)
        res["inference_batches"].append(e)
        print(f"inference batch {b}: {json.dumps(_short(e))}", flush=True)

    def train(compute_dtype, remat):  # the training step at train_batch, as every row of the run times it
        return bench_train(
            train_batch,
            frames,
            args.joints,
            max(2, repeats * 2 // 3),
            warmup,
            threads,
            compute_dtype,
            with_torch,
            tctx,
            remat,
        )

    e = res["train_step"] = train(args.compute_dtype, args.remat)
    print(f"train step batch {train_batch}: {json.dumps(_short(e))}", flush=True)
    if e["remat"] and not q:  # what remat costs or gains: the same step without it, same run
        res["train_step_without_remat"] = train(args.compute_dtype, "off")
        print(f"train step batch {train_batch}, remat off: {json.dumps(_short(res['train_step_without_remat']))}")
    if args.mixed_precision and args.compute_dtype == "float32":
        dt = "bfloat16"
        mp = {"compute_dtype": dt, "matmul_gflops": float(matmul_gflops(n, 5 if q else 20, jnp.bfloat16))}
        print(f"{dt} matmul (XLA dot {n}): {mp['matmul_gflops']:.0f} GFLOP/s", flush=True)
        mp["inference"] = bench_inference(
            batches[0], frames, args.joints, repeats, warmup, threads, dt, with_torch, tctx
        )
        print(f"{dt} inference batch {batches[0]}: {json.dumps(_short(mp['inference']))}", flush=True)
        mp["train_step"] = train(dt, args.remat)
        print(f"{dt} train step batch {train_batch}: {json.dumps(_short(mp['train_step']))}", flush=True)
        res["mixed_precision"] = mp
    add_rates(res, res["gflop_per_sample"])
    if memory:
        res["memory_mb"] = {}
        for which, b in (
            ("skeljax-infer", batches[-1]),
            ("torch-infer", batches[-1]),
            ("skeljax-train", train_batch),
            ("torch-train", train_batch),
        ):
            if which.startswith("torch") and not with_torch:
                continue
            res["memory_mb"][f"{which} (batch {b})"] = memory_probe(
                which, b, frames, args.joints, args.compute_dtype, args.remat
            )
    if not args.no_pipeline:
        try:
            res["pipeline"] = fresh_process_pipeline_rate(train_batch, q)
        except Exception as err:  # noqa: BLE001 - the pipeline is another module's; report, do not hide it
            print(f"WARNING: input pipeline benchmark failed: {err!r}", file=sys.stderr)
            res["pipeline"] = {"error": repr(err)}
    res["matmul_gflops"] = float(res["matmul_gflops"])
    print()
    print(table(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=float)
    if args.update_docs:
        write_docs(res, argv, args.docs)
        print(f"wrote {args.docs}")
    return 0


def _short(e: dict) -> dict:
    return {k: round(v, 2) for k, v in e.items() if isinstance(v, float)}


if __name__ == "__main__":
    sys.exit(main())
