"""Throughput of the online training pipeline (PYSKL ST-GCN++ train transforms) on synthetic NTU 3D data.

Reads the synthetic TFDS dataset (built on first use into --data_dir, default a temporary folder) and
reports samples/s for the bare per-sample transform and for the grain train iterator with 0 and 2
worker processes, for joint ('j') and bone ('b') input.

Example:
  python scripts/benchmark_pipeline.py --quick
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import jax
import numpy as np

from skeljax.data.input_pipeline import make_train_iterator, sample_seed
from skeljax.data.pipelines import make_pipeline
from skeljax.data.tfds_builders import load_source


def bare_rate(source, transform, n: int) -> float:
    """Samples/s of read + transform in a plain loop (no grain)."""
    transform(source[0], seed=0)  # warm-up
    t = time.perf_counter()
    for i in range(n):
        transform(source[i % len(source)], seed=sample_seed(0, 0, i))
    return n / (time.perf_counter() - t)


def iterator_rate(source, transform, batch: int, steps: int, workers: int, mesh) -> tuple[float, float]:
    """(seconds to the first batch, samples/s over the following ``steps`` batches)."""
    t0 = time.perf_counter()
    it = make_train_iterator(
        source, transform, batch, 0, mesh, repeat_times=5, num_workers=workers, num_steps=steps + 1
    )
    next(it)["keypoint"].block_until_ready()
    t1 = time.perf_counter()
    for b in it:
        b["keypoint"].block_until_ready()
    t2 = time.perf_counter()
    it.close()
    return t1 - t0, steps * batch / (t2 - t1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small dataset, 30 batches per measurement (~30 s)")
    parser.add_argument("--data_dir", default=None, help="TFDS data dir (default: a temporary folder)")
    parser.add_argument("--batch", type=int, default=16, help="global batch (PYSKL: 16 per GPU)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args(argv)
    per_class, steps = (10, 30) if args.quick else (200, 100)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or tmp
        kwargs = {"num_per_class": per_class} if per_class != 200 else {}
        source = load_source("skeljax_synthetic/3d", "train", data_dir, **kwargs)
        frames = np.mean([source[i]["total_frames"] for i in range(len(source))])
        print(
            f"source: {len(source)} synthetic NTU-25 3D samples (mean {frames:.0f} frames), batch {args.batch}, "
            f"{os.cpu_count()} CPUs, jax {jax.__version__}"
        )
        print(f"{'feat':<5}{'pipeline':<26}{'first batch s':>14}{'samples/s':>11}")
        for feat in ("j", "b"):
            transform = make_pipeline("nturgb+d", feat, clip_len=100, mode="train")
            bare = bare_rate(source, transform, steps * args.batch)
            print(f"{feat:<5}{'bare loop (no grain)':<26}{'':>14}{bare:>11.1f}")
            for w in args.workers:
                first, rate = iterator_rate(source, transform, args.batch, steps, w, mesh)
                print(f"{feat:<5}{f'grain, {w} workers':<26}{first:>14.2f}{rate:>11.1f}", flush=True)
    return 0


if __name__ == "__main__":  # guard: grain worker processes re-import this module
    sys.exit(main())
