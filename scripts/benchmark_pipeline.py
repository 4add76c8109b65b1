"""Throughput of the online training pipeline (PYSKL ST-GCN++ train transforms) on synthetic NTU 3D data.

Reads the synthetic TFDS dataset (built on first use into --data_dir, default a temporary folder) and
reports samples/s for the bare per-sample transform and for the trainer's iterator (`TrainIterator`: grain, global
arrays) with each of --workers grain worker processes (default 0, 1, 2; -1 = config.data.num_workers' auto, one
per usable core), for joint ('j') and bone ('b') input, at NTU's training shapes: one clip of 100 frames, 2
persons, 25 joints, 3 channels per sample. "first batch s" is the start-up: the worker processes' interpreter and
imports (spawned, not forked), or nothing with 0 workers. "main CPU ms/batch" is what reading costs the trainer's
own process (with workers: receiving the batch and making the global array). Nothing consumes the batches here, so
on a small CPU the rates are an upper bound for training, whose step shares the cores.

Example:
  python scripts/benchmark_pipeline.py --quick
  python scripts/benchmark_pipeline.py --workers 0 1 2 4 8 --batch 128
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import jax
import numpy as np

from skeljax.config.run_config import resolve_num_workers, usable_cores
from skeljax.data import generate_synthetic
from skeljax.data.pipelines import make_pipeline
from skeljax.data.tfds_builders import load_source
from skeljax.testing.workloads import bare_rate, iterator_stats


def synthetic_generation_rate(per_class: int) -> str:
    """How fast `skeljax_synthetic` samples are generated in this process (docs/data.md: "generated in seconds";
    about 2 s for 100 per class on this project's 2-core CPU)."""
    t = time.perf_counter()
    n = len(generate_synthetic(per_class, seed=0)["annotations"])
    seconds = time.perf_counter() - t
    return f"synthetic generation: {n} samples ({per_class} per class) in {seconds:.1f} s, {n / seconds:.0f} samples/s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small dataset, 30 batches per measurement (~30 s)")
    parser.add_argument("--data_dir", default=None, help="TFDS data dir (default: a temporary folder)")
    parser.add_argument("--batch", type=int, default=16, help="global batch (PYSKL: 16 per GPU)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[0, 1, 2], help="grain worker counts to time (-1: one per core)"
    )
    parser.add_argument("--clip_len", type=int, default=100, help="frames per training clip (NTU recipes: 100)")
    parser.add_argument("--feats", nargs="+", default=["j", "b"], choices=["j", "b", "jm", "bm"])
    parser.add_argument(
        "--dataset", default="skeljax_synthetic/3d", help="a TFDS builder of skeljax.data.tfds_builders (3D NTU-25)"
    )
    args = parser.parse_args(argv)
    per_class, steps = (10, 30) if args.quick else (200, 100)
    print(synthetic_generation_rate(per_class=100))
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or tmp
        kwargs = {"num_per_class": per_class} if args.quick else {}
        source = load_source(args.dataset, "train", data_dir, **kwargs)
        frames = np.mean([source[i]["total_frames"] for i in range(len(source))])
        shape = make_pipeline("nturgb+d", "j", clip_len=args.clip_len, mode="train")(source[0], seed=0).shape
        print(
            f"source: {len(source)} samples of {args.dataset} (mean {frames:.0f} frames); batch {args.batch} of "
            f"{shape} (clips, persons, frames, joints, channels); {usable_cores()} usable of {os.cpu_count()} "
            f"CPUs, jax {jax.__version__}"
        )
        print(f"{'feat':<5}{'pipeline':<30}{'first batch s':>14}{'samples/s':>11}{'main CPU ms/batch':>19}")
        for feat in args.feats:
            transform = make_pipeline("nturgb+d", feat, clip_len=args.clip_len, mode="train")
            bare = bare_rate(source, transform, steps * args.batch)
            print(f"{feat:<5}{'bare loop (no grain)':<30}{'':>14}{bare:>11.1f}")
            for setting in args.workers:
                w = resolve_num_workers(setting)
                r = iterator_stats(source, transform, args.batch, steps, w, mesh)
                name = f"TrainIterator, {w} workers" + (" (auto)" if setting < 0 else "")
                print(
                    f"{feat:<5}{name:<30}{r['first_batch_s']:>14.2f}{r['samples_per_s']:>11.1f}"
                    f"{r['main_cpu_ms_per_batch']:>19.1f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":  # guard: grain worker processes re-import this module
    sys.exit(main())
