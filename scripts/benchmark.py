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

import os
import sys

from skeljax.testing import benchmarking

# Before jax/torch load: both take scratch memory from glibc malloc on every call (skeljax.testing.benchmarking).
MALLOC_ENV = benchmarking.MALLOC_ENV
if __name__ == "__main__":
    benchmarking.use_malloc_env(sys.argv)

import argparse
import contextlib
import datetime
import json
import math
import subprocess

import jax
import jax.numpy as jnp
import numpy as np

from skeljax import sharding
from skeljax.config.run_config import usable_cores
from skeljax.data import input_pipeline
from skeljax.testing.benchmarking import (
    alternate,
    cell,
    generated_header,
    machine_info,
    markdown_table,
    peak_rss_mb,
    rounded,
    section_of,
    without_page_flags,
    write_page,
)
from skeljax.testing.matmul_floor import Dot, matmul_floor, time_dot
from skeljax.testing.workloads import NUM_CLASSES, pipeline_rate, skeljax_infer, skeljax_train

GFLOP_PER_SAMPLE = 5.85  # ST-GCN++ forward, NTU layout, M=2, T=100 (2.925 GMAC, counted with PyTorch's FlopCounterMode on PYSKL's model)
DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "benchmarks.md")


def num_threads() -> int:
    """CPUs this process may run on: XLA sizes its thread pool by them; torch gets the same."""
    return usable_cores()


def matmul_gflops(n: int, repeats: int, dtype=jnp.float32) -> float:
    """(n x n) @ (n x n) rate with XLA's dot on the default device (`dtype` operands, float32 result), median of
    `repeats`."""
    name = {jnp.dtype(jnp.float32): "f32", jnp.dtype(jnp.bfloat16): "bf16"}[jnp.dtype(dtype)]
    dot = Dot(name, (n, n), name, (n, n), (1,), (0,), (), (), "f32")
    return dot.flops / time_dot(dot, repeats, warmup=1) / 1e9


# ------------------------------------------------------------------------------------------------------------------
# PyTorch reference
# ------------------------------------------------------------------------------------------------------------------


def torch_setup(threads: int):
    import torch

    from skeljax.testing import torch_reference as ref

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
    print(peak_rss_mb())


# ------------------------------------------------------------------------------------------------------------------
# Input pipeline (scripts/benchmark_pipeline.py)
# ------------------------------------------------------------------------------------------------------------------


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


TABLE_HEADER = (
    "measurement",
    "skeljax samples/s",
    "PyTorch samples/s",
    "skeljax / PyTorch",
    "skeljax GFLOP/s",
    "of matmul rate",
    "skeljax compile s",
    "matmul floor: samples/s, x PyTorch",
)


def table(res: dict) -> str:
    """The results table of the page, then one paragraph per kind of note the run has data for."""
    measured = _rows(res)
    rows = [
        (
            name,
            f"{e['skeljax_samples_per_s']:.1f}",
            cell(e.get("torch_samples_per_s")),
            cell(e.get("ratio"), "{:.2f}x"),
            f"{e['skeljax_gflops']:.0f}",
            f"{100 * e['fraction_of_matmul']:.0f}%",
            f"{e['skeljax_compile_s']:.1f}",
            _floor_cell(e),
        )
        for name, e in measured
    ]
    notes = [
        _floor_explanation(measured),
        _rates_note(res),
        _mixed_precision_note(res.get("mixed_precision")),
        _memory_note(res),
        _pipeline_note(res.get("pipeline")),
    ]
    return "\n\n".join([markdown_table(TABLE_HEADER, rows), *filter(None, notes)])


def _floor_explanation(measured: list[tuple[str, dict]]) -> str:
    """What the matmul floor column means, when any row has one."""
    if not any("matmul_floor" in e for _, e in measured):
        return ""
    out = (
        "Matmul floor: the samples/s skeljax would reach if its matrix products were all it computed, "
        "each product of the compiled program timed alone through XLA at its own shapes "
        '(`skeljax/testing/matmul_floor.py`); "x PyTorch" is that bound as a ratio to PyTorch\'s measured '
        "samples/s. Rearranging the other work (BatchNorm, ReLU, shifts, copies) cannot pass it; only fewer FLOPs "
        "or faster product kernels can."
    )
    below = [name for name, e in measured if e.get("matmul_floor_samples_per_s", math.inf) < e["skeljax_samples_per_s"]]
    if below:
        out += (
            f" Where a floor reads below its measurement ({'; '.join(below)}), the products timed alone took "
            "slower kernels than they do inside the program, and that floor bounds nothing."
        )
    return out


def _rates_note(res: dict) -> str:
    mp = res.get("mixed_precision")
    out = f"fp32 matmul rate (XLA dot, {res['matmul_n']}x{res['matmul_n']}): {res['matmul_gflops']:.0f} GFLOP/s."
    if mp:
        out += f" {mp['compute_dtype']} matmul rate (same dot, float32 result): {mp['matmul_gflops']:.0f} GFLOP/s."
    return out + (
        f" Forward cost: {res['gflop_per_sample']:.2f} GFLOP per sample (a training step is counted as 3x the forward)."
    )


def _mixed_precision_note(mp: dict | None) -> str:
    if not mp:
        return ""
    dt, e, t = mp["compute_dtype"], mp["inference"], mp["train_step"]
    out = (
        f"Mixed precision ({dt} rows; `config.compute_dtype='{dt}'`): skeljax multiplies {dt} operands with float32 "
        "accumulation and keeps activations, BatchNorm and the loss in float32; PyTorch runs under `torch.autocast` "
        f'to the same dtype. Their "of matmul rate" is relative to the {dt} rate. Speed-up over float32: '
        f"skeljax {e['skeljax_speedup_over_float32']:.2f}x inference, {t['skeljax_speedup_over_float32']:.2f}x "
        "train step"
    )
    if "torch_speedup_over_float32" in e:
        out += (
            f"; PyTorch {e['torch_speedup_over_float32']:.2f}x inference, "
            f"{t['torch_speedup_over_float32']:.2f}x train step"
        )
    return out + "."


def _memory_note(res: dict) -> str:
    """Peak RSS of the fresh-process probes, XLA's scratch memory, and the training step's device memory."""
    out = []
    if res.get("memory_mb"):
        mem = ", ".join(f"{k} {v:.0f} MB" for k, v in res["memory_mb"].items())
        out.append(f"Peak RSS of a fresh process running only that workload (VmHWM): {mem}.")
    steps = [(f"train step batch {res['train_step']['batch']}", res["train_step"])]
    if res.get("train_step_without_remat"):
        e = res["train_step_without_remat"]
        steps.append((f"train step batch {e['batch']} without remat", e))
    programs = [(f"inference batch {e['batch']}", e) for e in res["inference_batches"]] + steps
    xla = [f"{name} {e['skeljax_xla_memory']['temp_mb']:.0f} MB" for name, e in programs if e.get("skeljax_xla_memory")]
    if xla:
        out.append(f"XLA scratch memory of the compiled skeljax programs (memory_analysis): {', '.join(xla)}.")
    device = [e for _, e in steps if "torch_peak_device_mb" in e]
    if device:
        sizes = ", ".join(
            f"batch {e['batch']}{' with remat' if e.get('remat') else ''}: skeljax "
            f"{e['skeljax_xla_memory']['total_mb']:.0f} MB, PyTorch {e['torch_peak_device_mb']:.0f} MB"
            for e in device
        )
        out.append(
            "Device memory of the training step (skeljax: XLA's scratch + arguments + outputs - donated; "
            f"PyTorch: `torch.cuda.max_memory_allocated` over its steps): {sizes}."
        )
    return "\n\n".join(out)


def _pipeline_note(p: dict | None) -> str:
    if not p:
        return ""
    if "error" in p:
        return f"Input pipeline: not measured ({p['error']})."
    return (
        f"Input pipeline (ST-GCN++ train transform, joints, synthetic data; a fresh process): "
        f"{p['bare_samples_per_s']:.0f} samples/s in a bare loop, "
        f"{p['grain_0_workers_samples_per_s']:.0f} with grain (0 workers)."
    )


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
        "(`skeljax.models.forward.rows_per_pass`); the training step cannot, since each BatchNorm needs the statistics "
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
    # Which step the trainer picked (config.remat; 'auto' follows the free memory): ", remat" or ", no remat".
    chosen = "" if "remat" not in ts else ", remat" if ts["remat"] else ", no remat"
    rows.append((f"train step, batch {ts['batch']}{chosen}", ts))
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


# What the page says about the code, the same for every run (measured facts carry their own run's numbers above).
SPEED_NOTES = """\
## How skeljax is organised for speed

- Activations are laid out joints-first, (V, N*M, T, C): every 1x1 convolution is one matrix product over the
  channels and the graph aggregation is one matrix product over the joints, with no transposes in between.
- The graph aggregation runs before the 1x1 convolution (fewer channels to aggregate when C_in < C_out); the
  convolution's bias is aggregated through the graph exactly.
- MSTCN: the six branch 1x1 convolutions that share an input are one matrix product (a single block-diagonal
  product for all branches did ~5x the FLOPs and cost a third of inference time). Each dilated branch's temporal
  convolution is one small matrix product, arranged per mode (`skeljax.models.stgcn.dilated_conv`): in inference
  to its k taps, which one fused pass shifts and sums; in training from its k shifted inputs side by side (im2col).
  The gradient of the taps form is the output gradient shifted back into k taps, and XLA on CPU fused the
  transform BatchNorm's backward into that pass, evaluating it k times per element at strided channel slices
  (13% of the step); the im2col form's gradient goes straight into matrix products. Train step 1.05x and 1.10x
  faster in two in-process A/Bs on 2026-12-07 (same process, both programs, alternating calls); inference keeps
  the taps form, 2-5% faster there.
- Inference on one CPU device runs the clips through the network one at a time, in a compiled loop
  (`skeljax.models.forward.rows_per_pass`): a clip's activations (~1.3 MB per tensor) stay in the L3 cache from layer to
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
  pass. `'auto'` compiles the step without remat and keeps it unless XLA's memory plan of that step exceeds 80% of
  the free memory per device: on a GPU or TPU the allocator's, on a CPU the host's available memory (cgroup limits
  included) shared by its devices (`skeljax.train.compile_step`). So batch 16 trains without remat on a CPU with a
  few GB free, while PYSKL's batch of 128 (34 GB without remat) on a 23 GB host, or the recipe's batch on a 16 GB
  Colab GPU, gets it; the train-step row says which one the trainer picked.
- The CPU training step, where its time goes (`scripts/profile_train_step.py` on the idle 2-core CPU: batch 16, no
  remat, XLA's kernels under JAX's profiler, shares of their time), after the MSTCN change above: matrix products
  50% (forward 18%, backward 32%); reductions 13% (the backward's 11%: BatchNorm's two sums per layer and the
  bias gradients; the forward's 3%: BatchNorm statistics), which YNNPACK runs like the products (before
  2026-12-07 the profile counted every YNNPACK kernel as a product and read 64%); the rest of the backward pass
  21% (BatchNorm's backward 8.0%, the splits of the MSTCN concatenation 4.5%, ReLU masks 4.3%, sums of gradients
  2.2%); the rest of the forward pass 13% (ReLU 3.6%, the concatenation 3.0%, slices 2.0%); the SGD update over
  the 434 tensors with the logged norms 2.2%. Before it, the MSTCN branches' shifted taps gradient alone was 13%
  and the backward's elementwise work 29%. Leaving the biases in front of a training-mode BatchNorm out (they
  cancel there; their gradient reductions are about a seventh of the backward's reductions) measured no
  difference (this script's `bench_train` in fresh processes taken in turns, ratio to PyTorch: 1.00, 1.02, 1.07
  and 1.01x without them, 1.01, 1.08 and 1.01x with them) and was not kept. The kernels' times add up to ~1.2x the step's wall time: XLA runs independent kernels on both cores
  at once, so a product inside the step shows half the rate it reaches alone (80-98 against 170 GFLOP/s for the
  20000x256x256 products) without being a slower kernel. Fusing the optax update into one flat vector could buy
  at most ~1.5%, and was not done (torch-exact SGD and the bit-exact resume stay as they are). What sped up the default CPU trainer on 2026-12-07 is `remat='auto'`
  following the host's free memory: at batch 16 it now picks the step without remat (the "no remat" row: 0.99x
  PyTorch against 0.73x with remat in the run of 2026-12-07, before the change), and the whole loop of
  `scripts/benchmark_e2e.py --quick` went from 0.68x to 0.96x PyTorch (3.3 against 3.4 samples/s, idle machine,
  one run; peak memory of the job 6.0 GB, PyTorch's 5.9 GB).
- XLA compiles CPU programs with LLVM at optimisation level 1 instead of 3 (`skeljax.sharding.compiler_options`,
  passed to the forward's and the train step's `jax.jit`): on the 2-core CPU the evaluation forward compiles
  ~1 s faster and the train step ~2 s faster, and both run as fast (in one process, compiled both ways: forward
  0.40 s either way for one sample, train step 4.21 / 4.23 s at batch 16). Almost all of their run time is in
  library matrix-product kernels and simple loops, which LLVM's expensive passes do not speed up.
- Parameters, their names and shapes are unchanged (checkpoints and the converter rely on them).

Tried on the 2-core CPU without a gain (within the 5-7% noise of identical runs, or slower), so that nobody repeats
them blindly: the gcn as conv-first with one K-stacked aggregation product, as one product over K*C_in after a
transposing copy, or with per-subset aggregation; an optimization barrier on the MSTCN concatenation's gradient
(so that the branches' gradient slices stop recomputing the BatchNorm backward) or after every block (XLA's CPU
pipeline removes optimization barriers before it fuses: the compiled step has none left, so a barrier cannot
make XLA keep a value it prefers to recompute); a custom VJP for the taps form that shifts the gradient back
from a barrier (same time, for that reason); XLA CPU
flags (oneDNN, XNNPACK, the concurrency-optimised scheduler, YNNPACK fusion types); bfloat16 activations; weight
gradients as standard-form products after an explicit transpose, so that YNNPACK runs them (20% slower step); the
first block's 3-channel products as broadcast multiply-adds instead of matrix products (no change beyond 2% in an
in-process A/B); the MSTCN max pool as shifted maxima with a first-maximum custom backward, which removes the index
arrays and scatter XLA makes of reduce-window's gradient on CPU (train step 1.006x in an in-process A/B); the
weight gradients with small outputs (64x64 1x1-convolution weights, the 75x25 graph gradients, K = 80,000-200,000
rows), which run at 33-40 GFLOP/s inside the step (~15% of it), as split-K batched products summed afterwards or
after a transposing copy (timed alone: 0.9-1.3x, no consistent gain).
"""


def write_docs(res: dict, argv: list[str], path: str = DOCS) -> None:
    """docs/benchmarks.md (or `path`) from a result: what was measured, the results, the machine, the settings."""
    m = res["machine"]
    cmd = " ".join(["python scripts/benchmark.py", *without_page_flags(argv)])
    if m.get("xla_flags"):
        cmd = f"XLA_FLAGS={m['xla_flags']} {cmd}"
    sections = [
        generated_header("Benchmarks: skeljax vs the PyTorch reference", "benchmark.py", res["date"]),
        _what_runs(res),
        f"Command: `{cmd}`",
        "## Results\n\n" + table(res),
        _machine_section(m),
        _malloc_section(),
        (SPEED_NOTES + _floor_note(res)).rstrip(),
        "Noise: other processes share this machine; run-to-run differences of 5-25% are normal. Compare numbers "
        "from one run.",
        section_of(path, "## First prediction"),  # scripts/benchmark_predict.py's section, kept as it was
    ]
    write_page(path, "\n\n".join(s for s in sections if s))


def _what_runs(res: dict) -> str:
    return f"""Model: ST-GCN++ (NTU layout, 60 classes, M=2 persons, T={res["frames"]} frames, V={res["joints"]} joints).
skeljax: the programs the package runs, jitted with explicit shardings: for inference the eval-mode forward of
validation, test and prediction (`skeljax.models.forward.make_forward`, one clip per sample, 'prob' average); for training
the trainer's step (`skeljax.train.make_train_step` / `jit_train_step`: forward, backward, SGD with Nesterov momentum
and weight decay, the logged norms) with donated state, at a constant learning rate. PyTorch: MMAction2 1.2.0's
`STGCN` backbone plus a linear head (`skeljax/testing/torch_reference.py`), `torch.inference_mode()` for inference,
`loss.backward()` + `torch.optim.SGD` for training, `torch.set_num_threads({res["machine"]["threads"]})` (the CPUs
XLA uses). Medians over repeats after warm-up, skeljax and PyTorch calls alternating. Compute dtype:
{res["compute_dtype"]}{_mp_note(res)}."""


def _machine_section(m: dict) -> str:
    xla_flags = f"\n- XLA_FLAGS: `{m['xla_flags']}`" if m.get("xla_flags") else ""
    return f"""## Machine

- CPU: {m["cpu"]}, {m["cpu_count"]} CPUs ({m["threads"]} usable), {m.get("memory_gb", "?")} GB RAM; JAX backend
  {m["jax_backend"]} ({m["jax_device"]}); 1-minute load average when the run started: {m.get("load_average_at_start")}
  (other processes sharing the CPUs lower every number; the matmul rate above shows how much was left)
{_gpu_note(m)}- Python {m["python"]}, jax {m["jax"]}, flax {m["flax"]}, numpy {m["numpy"]}, torch {m["torch"]},
  mmaction2 {m["mmaction"]}; {m["platform"]}{xla_flags}"""


def _malloc_section() -> str:
    exports = "\n".join(f"export {k}={v}" for k, v in MALLOC_ENV.items())
    return f"""## Environment: glibc malloc

The script runs with these variables (it re-executes itself with them when any is missing; `--no-malloc-env`
turns that off). Both frameworks take hundreds of MB of scratch memory per call from malloc; with glibc's defaults
every call maps and page-faults fresh pages, which costs 1.5-2x in speed for both. Use the same settings for
training and evaluation runs on CPU. `python -m skeljax.main` adds the missing ones itself on a CPU-only install
(`skeljax.cpu_malloc`): its loop at batch 16 ran at 3.45 samples/s so, against 3.11 under glibc's defaults
(`scripts/benchmark_e2e.py --no-torch --steps 6 [--no-malloc-env]`, one run each, 2026-12-07):

```
{exports}
```"""


def parser() -> argparse.ArgumentParser:
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
        help="rematerialise the training step's blocks as config.remat does (auto: only when the step without it "
        "does not fit 80%% of the free memory, of the device or on a CPU of the host)",
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
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    """The flags, with the defaults that depend on --quick filled in."""
    p = parser()
    args = p.parse_args(argv)
    if args.joints != 25:
        p.error("--joints: only the NTU layout (25 joints) is benchmarked")
    q = args.quick
    args.batch = args.batch or ([2] if q else [16, 64])
    args.train_batch = args.train_batch or (2 if q else 16)
    args.frames = args.frames or (20 if q else 100)
    args.repeats = args.repeats or (2 if q else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if q else 2)
    args.memory = (not q) if args.memory is None else args.memory
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.docs_from_json:
        with open(args.docs_from_json) as f:
            res = json.load(f)
        write_docs(res, res.get("argv", []), args.docs)
        print(f"wrote {args.docs}")
        return 0
    if args._probe == "pipeline":
        print(json.dumps(pipeline_rate(args.train_batch, args.quick)))
        return 0
    if args._probe:
        run_probe(args._probe, args.batch[0], args.frames, args.joints, args.compute_dtype, args.remat)
        return 0
    res = measure(args, argv)
    print()
    print(table(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=float)
    if args.update_docs:
        write_docs(res, argv, args.docs)
        print(f"wrote {args.docs}")
    return 0


def measure(args: argparse.Namespace, argv: list[str]) -> dict:
    """Every measurement of a run, in the JSON layout of docs/benchmarks.md."""
    res = {
        "date": datetime.date.today().isoformat(),
        "frames": args.frames,
        "joints": args.joints,
        "compute_dtype": args.compute_dtype,
        "machine": machine_info(),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "argv": argv,
    }
    m = res["machine"]
    print(f"machine: {m['cpu']}, {m['threads']} threads, jax {m['jax']} ({m['jax_backend']}), torch {m['torch']}")
    res["matmul_n"] = 2048 if jax.default_backend() == "cpu" else 8192
    res["matmul_gflops"] = matmul_gflops(res["matmul_n"], 5 if args.quick else 20)
    print(f"fp32 matmul (XLA dot {res['matmul_n']}): {res['matmul_gflops']:.0f} GFLOP/s", flush=True)
    tctx = None if args.no_torch else torch_setup(num_threads())
    shape1 = (1, 2, args.frames, args.joints, 3)
    res["gflop_per_sample"] = (
        GFLOP_PER_SAMPLE * args.frames / 100 if tctx is None else torch_flops_per_sample(tctx[0], tctx[1], shape1)
    )
    measure_speed(res, args, tctx)
    add_rates(res, res["gflop_per_sample"])
    if args.memory:
        res["memory_mb"] = measure_memory(args)
    if not args.no_pipeline:
        try:
            res["pipeline"] = fresh_process_pipeline_rate(args.train_batch, args.quick)
        except Exception as err:  # noqa: BLE001 - the pipeline is another module's; report, do not hide it
            print(f"WARNING: input pipeline benchmark failed: {err!r}", file=sys.stderr)
            res["pipeline"] = {"error": repr(err)}
    res["matmul_gflops"] = float(res["matmul_gflops"])
    return res


def measure_speed(res: dict, args: argparse.Namespace, tctx) -> None:
    """The inference batches, the training step (also without remat when remat was chosen, outside --quick) and,
    for a float32 run, the same at bfloat16 (`mixed_precision`)."""
    threads, with_torch = num_threads(), tctx is not None

    def infer(batch, compute_dtype):
        shape = (batch, args.frames, args.joints, args.repeats, args.warmup, threads)
        return bench_inference(*shape, compute_dtype, with_torch, tctx)

    def train(compute_dtype, remat):  # the training step at --train-batch, as every row of the run times it
        settings = (args.train_batch, args.frames, args.joints, max(2, args.repeats * 2 // 3), args.warmup, threads)
        return bench_train(*settings, compute_dtype, with_torch, tctx, remat)

    res["inference_batches"] = []
    for b in args.batch:
        res["inference_batches"].append(infer(b, args.compute_dtype))
        print(f"inference batch {b}: {json.dumps(rounded(res['inference_batches'][-1]))}", flush=True)
    e = res["train_step"] = train(args.compute_dtype, args.remat)
    print(
        f"train step batch {args.train_batch} (config.remat={args.remat!r}: remat {'on' if e['remat'] else 'off'}): "
        f"{json.dumps(rounded(e))}",
        flush=True,
    )
    if e["remat"] and not args.quick:  # what remat costs or gains: the same step without it, same run
        res["train_step_without_remat"] = train(args.compute_dtype, "off")
        print(f"train step batch {args.train_batch}, remat off: {json.dumps(rounded(res['train_step_without_remat']))}")
    if args.mixed_precision and args.compute_dtype == "float32":
        dt = "bfloat16"
        mp = {
            "compute_dtype": dt,
            "matmul_gflops": float(matmul_gflops(res["matmul_n"], 5 if args.quick else 20, jnp.bfloat16)),
        }
        print(f"{dt} matmul (XLA dot {res['matmul_n']}): {mp['matmul_gflops']:.0f} GFLOP/s", flush=True)
        mp["inference"] = infer(args.batch[0], dt)
        print(f"{dt} inference batch {args.batch[0]}: {json.dumps(rounded(mp['inference']))}", flush=True)
        mp["train_step"] = train(dt, args.remat)
        print(f"{dt} train step batch {args.train_batch}: {json.dumps(rounded(mp['train_step']))}", flush=True)
        res["mixed_precision"] = mp


def measure_memory(args: argparse.Namespace) -> dict:
    """Peak RSS per workload, each in a fresh process (PyTorch's only with PyTorch)."""
    out = {}
    for which, b in (
        ("skeljax-infer", args.batch[-1]),
        ("torch-infer", args.batch[-1]),
        ("skeljax-train", args.train_batch),
        ("torch-train", args.train_batch),
    ):
        if not (which.startswith("torch") and args.no_torch):
            out[f"{which} (batch {b})"] = memory_probe(
                which, b, args.frames, args.joints, args.compute_dtype, args.remat
            )
    return out


if __name__ == "__main__":
    sys.exit(main())
