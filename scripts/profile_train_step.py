"""Where the CPU training step's time goes: the ST-GCN++ step (batch 16, T=100, no remat, as scripts/benchmark.py
times it) under JAX's profiler, each XLA thunk's time summed by phase and by the operation that produced it.

A thunk is one kernel of the compiled program (a matrix product, a fused elementwise loop, a copy). Its phase and
operation come from the metadata XLA keeps in the optimized HLO: `transpose(jvp(...))` is the backward pass, `jvp(...)`
the forward pass, anything else the optimizer update and the logged norms; matrix products (XLA's dot thunks and
the library fusions that hold a dot) are counted apart from the rest. Library (YNNPACK) fusions also run the
step's reductions (BatchNorm's sums, bias gradients): those count as the reduction they are, not as products.

  python scripts/profile_train_step.py [--batch 16] [--frames 100] [--steps 2] [--top 20]
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import re
import sys
import tempfile

from skeljax.testing.benchmarking import use_malloc_env

PRODUCT_PREFIXES = ("dot", "custom-call")
RUNTIME_EVENTS = ("$", "PjitFunction", "CommonPjRt", "ThunkExecutor", "Thread", "Allocate", "Handle", "Parse")
RUNTIME_EVENTS += ("Python", "Wait", "end:", "Slinky")


def compiled_step(batch: int, frames: int):
    """(compiled step, state, batch arrays): the trainer's step without remat, as the benchmark builds it."""
    import jax
    import numpy as np

    from skeljax.testing.workloads import skeljax_train

    step, data, _, _, compiled, _ = skeljax_train((batch, 2, frames, 25, 3), "float32", "off")
    rng = np.random.default_rng(0)
    arrays = {
        "keypoint": jax.device_put(rng.normal(size=(batch, 1, 2, frames, 25, 3)).astype(np.float32), data),
        "label": jax.device_put(rng.integers(0, 60, batch).astype(np.int32), data),
    }
    return step, compiled, arrays


def thunk_times(step, arrays, steps: int, trace_dir: str) -> collections.Counter:
    """{thunk name: microseconds over `steps` profiled steps} after two warm-up steps."""
    import jax

    for _ in range(2):
        jax.block_until_ready(step(arrays))
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
        for _ in range(steps):
            jax.block_until_ready(step(arrays))
    path = sorted(glob.glob(f"{trace_dir}/**/perfetto_trace.json.gz", recursive=True))[-1]
    with gzip.open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    times = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and not e["name"].startswith(RUNTIME_EVENTS):
            times[e["name"]] += e.get("dur", 0.0)
    return times


def entry_instructions(hlo: str):
    """(name, line) of each instruction of the entry computation: the program's thunks."""
    entry = hlo[hlo.index("\nENTRY") :]
    for m in re.finditer(r"^\s+(?:ROOT )?%?([\w.\-]+) = [^\n]*", entry, re.M):
        yield m.group(1), m.group(0)


def op_names(hlo: str) -> dict[str, str]:
    """{instruction name of the entry computation: its op_name metadata}."""
    names = {}
    for name, line in entry_instructions(hlo):
        op = re.search(r'op_name="([^"]*)"', line)
        names[name] = op.group(1) if op else ""
    return names


def product_thunks(hlo: str) -> set[str]:
    """The entry computation's matrix-product kernels: XLA's dot (and custom-call) thunks, and the library fusions
    (kind=kCustom, e.g. YNNPACK's) whose fused computation holds a dot or a convolution."""
    bodies = {m.group(1): m.group(2) for m in re.finditer(r"^%([\w.\-]+) [^\n]*\{\n(.*?)\n\}$", hlo, re.M | re.S)}
    products = set()
    for name, line in entry_instructions(hlo):
        called = re.search(r"calls=%([\w.\-]+)", line) if "kind=kCustom" in line else None
        if name.startswith(PRODUCT_PREFIXES) or (
            called and re.search(r"\b(?:dot|convolution)\(", bodies.get(called.group(1), ""))
        ):
            products.add(name)
    return products


def category(thunk: str, op_name: str, products: set[str]) -> tuple[str, str]:
    """(phase, what): phase forward / backward / update; what 'matrix products' or the op's last name part."""
    phase = "backward" if "transpose(jvp" in op_name else "forward" if "jvp(" in op_name else "update and norms"
    what = "matrix products" if thunk in products else re.sub(r"\[.*", "", op_name.split("/")[-1])
    return phase, what or "?"


def report(times: collections.Counter, names: dict[str, str], products: set[str], steps: int, top: int) -> None:
    total = sum(times.values())
    by_phase, by_what = collections.Counter(), collections.Counter()
    for thunk, us in times.items():
        phase, what = category(thunk, names.get(thunk, ""), products)
        by_phase[phase + (", matrix products" if what == "matrix products" else ", other")] += us
        by_what[(phase, what)] += us
    print(f"thunk time per step: {total / steps / 1e3:.0f} ms ({len(times)} thunks)")
    for key, us in by_phase.most_common():
        print(f"  {us / total:6.1%}  {key}")
    print(f"largest by operation (top {top}):")
    for (phase, what), us in by_what.most_common(top):
        print(f"  {us / total:6.1%}  {phase:>16}  {what}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    use_malloc_env([sys.argv[0], *argv])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--steps", type=int, default=2, help="profiled steps (after two warm-up steps)")
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args(argv)
    step, compiled, arrays = compiled_step(args.batch, args.frames)
    with tempfile.TemporaryDirectory() as trace_dir:
        times = thunk_times(step, arrays, args.steps, trace_dir)
    hlo = compiled.as_text()
    report(times, op_names(hlo), product_thunks(hlo), args.steps, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
