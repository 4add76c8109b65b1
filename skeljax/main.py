"""Command line: train, evaluate or test a config; all logic lives in the importable `skeljax.train`.

    python -m skeljax.main --config configs/demo.py --workdir /tmp/demo_run
    python -m skeljax.main --config configs/stgcnpp_ntu60.py:xsub_3d_j --workdir runs/j --config.batch_size=64
    python -m skeljax.main --config configs/stgcnpp_ntu60.py:xsub_3d_j --workdir runs/j --mode test
    python -m skeljax.main --config configs/stgcnpp_ntu60.py:xsub_3d_j --workdir runs/j_pth --mode test \
        --config.init_from.path=j.pth          # a released PYSKL checkpoint, 10-clip test

`--mode train` resumes from the workdir's last checkpoint when there is one; SIGTERM saves a checkpoint at the
next step and exits 0 (docs/reliability.md). Several processes (hosts) train together with `--distributed`
(SLURM, TPU pods: detected from the environment) or the explicit `--coordinator_address`, `--num_processes`,
`--process_id` (docs/multihost.md). On CPU, XLA is much faster with glibc's allocator tuned; set this before
starting Python (see docs/stack notes):

    export MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_MMAP_THRESHOLD_=33554432 \
        MALLOC_TRIM_THRESHOLD_=8589934592 MALLOC_TOP_PAD_=536870912

User errors (bad data, paths, configs, checkpoints) end with a line `error: <file or field>: <problem>` on
stderr and exit status 1; a mistyped `--config.` override exits with status 2.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, optionally `path.py:variant`.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval", "test"],
                          "train (then test), eval (validation split, 1 clip) or test (test split, test clips).")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() with the cluster "
                                 "detected from the environment (SLURM, Cloud TPU, Kubernetes, JAX_COORDINATOR_*).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0's coordination service "
                                   "(implies --distributed); with --num_processes and --process_id.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (hosts) in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0 .. num_processes - 1.")
flags.mark_flags_as_required(["config", "workdir"])


def _deterministic_xla() -> None:
    """Deterministic GPU kernels; must happen before JAX initialises its backend (CPU is deterministic)."""
    xla = os.environ.get("XLA_FLAGS", "")
    if "--xla_gpu_deterministic_ops" not in xla:
        os.environ["XLA_FLAGS"] = (xla + " --xla_gpu_deterministic_ops=true").strip()


def _init_distributed() -> None:
    """jax.distributed.initialize before any other JAX call, from the flags or the environment."""
    explicit = {"coordinator_address": _COORDINATOR.value, "num_processes": _NUM_PROCESSES.value,
                "process_id": _PROCESS_ID.value}
    if not _DISTRIBUTED.value and all(v is None for v in explicit.values()):
        return
    import jax

    jax.distributed.initialize(**{k: v for k, v in explicit.items() if v is not None})


def _parse_flags(argv: list[str]) -> list[str]:
    """absl parsing, with a one-line error (and a suggestion) for a --config.field that does not exist."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:  # what absl's own parser prints for a bad or missing flag value
        print(f"error: {e}\nPass --helpshort or --helpfull to see help on flags.", file=sys.stderr)
        sys.exit(1)
    except (AttributeError, KeyError) as e:  # ml_collections: unknown field in a --config.x override
        inner: object = e
        while isinstance(inner, BaseException) and inner.args:
            inner = inner.args[0]  # AttributeError(KeyError("'name'\nDid you mean ..."))
        first, _, hint = str(inner).partition("\n")
        name = first.strip("'\" ")
        used = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.") and name in a.split("=")[0]]
        print(f"error: {', '.join(used) or '--config override'}: the config has no field {name!r}. {hint}".strip(),
              file=sys.stderr)
        sys.exit(2)


def out_of_memory_hint(config, message: str) -> str:
    """One line for an XLA RESOURCE_EXHAUSTED error: what ran out, and which config fields lower the need."""
    import jax

    first = next((ln.strip() for ln in message.splitlines() if "RESOURCE_EXHAUSTED" in ln), message.strip())
    devices = jax.device_count()
    group = config.model.get("bn_group") or None
    hint = (f"config.batch_size={config.batch_size} over {devices} {jax.default_backend()} device(s) does not fit; "
            "lower --config.batch_size")
    if group:
        hint += f" (a multiple of config.model.bn_group={group}; lower that too if needed)"
    hint += (", or use more devices (config.optimizer.lr < 0 scales the learning rate with the batch, the linear "
             "rule).")
    return f"out of memory: {first[:300]} -- {hint}"


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    try:
        deterministic = config.deterministic  # a config file that failed to load raises on first use
    except OSError as e:
        print(f"error: --config: {str(e).split(': ', 1)[-1]}", file=sys.stderr)
        sys.exit(1)
    logging.set_verbosity(logging.WARNING)  # orbax/tfds log every file operation at INFO
    if deterministic:
        _deterministic_xla()
    _init_distributed()
    from skeljax import compilation_cache, run_config, train  # after the XLA flags are set

    try:
        compilation_cache.setup(config.compilation_cache_dir)  # before anything is compiled
        run = run_config.resolve(config)
        mode = {"train": train.train_and_evaluate, "eval": train.evaluate, "test": train.test}[_MODE.value]
        result = mode(run, _WORKDIR.value)
    except (OSError, ValueError) as e:  # user errors: data, paths, configs, checkpoints (all name the culprit)
        traceback.print_exc()
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception as e:  # only out-of-memory is translated; everything else propagates
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        traceback.print_exc()
        print(f"error: {out_of_memory_hint(config, str(e))}", file=sys.stderr, flush=True)
        sys.exit(1)
    import jax

    if jax.process_index() == 0:
        print(json.dumps(result, indent=1, default=float), flush=True)


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
