"""Command line: train, evaluate or test a config; all logic lives in the importable `skeljax.train`.

    python -m skeljax.main --config configs/demo.py --workdir /tmp/demo_run
    python -m skeljax.main --config configs/stgcnpp_ntu60.py:xsub_3d_j --workdir runs/j --config.batch_size=64
    python -m skeljax.main --config configs/stgcnpp_ntu60.py:xsub_3d_j --workdir runs/j --mode test
    python -m skeljax.main --config configs/stgcnpp_ntu60.py:xsub_3d_j --workdir runs/j_pth --mode test \
        --config.init_from.path=j.pth          # a released PYSKL checkpoint, 10-clip test

`--mode train` resumes from the workdir's last checkpoint when there is one. On CPU, XLA is much faster with
glibc's allocator tuned; set this before starting Python (see docs/stack notes):

    export MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_MMAP_THRESHOLD_=33554432 \
        MALLOC_TRIM_THRESHOLD_=8589934592 MALLOC_TOP_PAD_=536870912
"""

from __future__ import annotations

import json
import os

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, optionally `path.py:variant`.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval", "test"],
                          "train (then test), eval (validation split, 1 clip) or test (test split, test clips).")
flags.mark_flags_as_required(["config", "workdir"])


def _deterministic_xla() -> None:
    """Deterministic GPU kernels; must happen before JAX initialises its backend (CPU is deterministic)."""
    xla = os.environ.get("XLA_FLAGS", "")
    if "--xla_gpu_deterministic_ops" not in xla:
        os.environ["XLA_FLAGS"] = (xla + " --xla_gpu_deterministic_ops=true").strip()


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    logging.set_verbosity(logging.WARNING)  # orbax/tfds log every file operation at INFO
    if config.deterministic:
        _deterministic_xla()
    from skeljax import train  # after the XLA flags are set

    if _MODE.value == "train":
        result = train.train_and_evaluate(config, _WORKDIR.value)
    elif _MODE.value == "eval":
        result = train.evaluate(config, _WORKDIR.value)
    else:
        result = train.test(config, _WORKDIR.value)
    import jax

    if jax.process_index() == 0:
        print(json.dumps(result, indent=1, default=float), flush=True)


if __name__ == "__main__":
    app.run(main)
