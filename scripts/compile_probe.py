"""Compile time and speed of skeljax's ST-GCN++ programs under this process's XLA_FLAGS: one JSON line per program.

For comparing XLA flag sets and the persistent compilation cache (docs/speed.md): run it once per setting, each
in a fresh process, since XLA reads XLA_FLAGS once at start-up. The programs are scripts/benchmark.py's
(`skeljax.testing.workloads`: eval-mode inference; forward, backward and SGD step), at NTU shapes (M=2, T=100, V=25).

  XLA_FLAGS=--xla_gpu_enable_triton_gemm=false python scripts/compile_probe.py --label triton_off
  XLA_FLAGS=--xla_gpu_deterministic_ops=true python scripts/compile_probe.py --label deterministic
  python scripts/compile_probe.py --label cache --cache /tmp/jaxcache   # twice: cold, then warm
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from skeljax.testing.matmul_floor import median_seconds
from skeljax.testing.workloads import skeljax_infer, skeljax_train


def probe(part: str, batch: int, repeats: int) -> dict:
    """Compile one program ('infer' or 'train', optionally ':bfloat16') and time it after two warm-up calls."""
    kind, _, dtype = part.partition(":")
    dtype = dtype or "float32"
    shape = (batch, 2, 100, 25, 3)
    x = jnp.asarray(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    if kind == "infer":
        fn, compile_s, mem, _ = skeljax_infer(shape, dtype)
        x = x[:, None]  # one clip per sample

        def call():
            fn(x).block_until_ready()
    elif kind == "train":
        fn, data, compile_s, mem, _, _ = skeljax_train(shape, dtype, "off")
        arrays = jax.device_put({"keypoint": x[:, None], "label": jnp.zeros((batch,), jnp.int32)}, data)

        def call():
            fn(arrays)["train/loss"].block_until_ready()
    else:
        raise SystemExit(f"compile_probe: unknown program {part!r} (infer, train, infer:bfloat16, train:bfloat16)")
    step = median_seconds(call, repeats, warmup=2)
    return {
        "part": part,
        "compile_s": round(compile_s, 2),
        "step_ms": round(step * 1e3, 3),
        "samples_per_s": round(batch / step, 1),
        "xla_memory": mem,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--label", required=True, help="name of this setting in the output")
    p.add_argument("--parts", default="infer,train", help="comma-separated: infer, train, infer:bfloat16, ...")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--cache", help="use JAX's persistent compilation cache in this directory")
    p.add_argument("--out", help="append the JSON lines to this file too")
    args = p.parse_args(argv)
    if args.cache:
        jax.config.update("jax_compilation_cache_dir", args.cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    for part in args.parts.split(","):
        rec = {
            "label": args.label,
            "xla_flags": os.environ.get("XLA_FLAGS"),
            "cache": bool(args.cache),
            "device": jax.devices()[0].device_kind,
            "jax": jax.__version__,
            **probe(part, args.batch, args.repeats),
        }
        line = json.dumps(rec)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
