"""Command line: train, evaluate or test a config; all logic lives in the importable `skeljax.train`.

    python -m skeljax.main --config configs/demo.py --workdir /tmp/demo_run
    python -m skeljax.main --config configs/stgcnpp_ntu60.py:xsub_3d_j --workdir runs/j --config.batch_size=64
    python -m skeljax.main --config configs/stgcnpp_ntu60.py:xsub_3d_j --workdir runs/j --mode test
    python -m skeljax.main --config configs/stgcnpp_ntu60.py:xsub_3d_j --workdir runs/j_pth --mode test \
        --config.init_from.path=j.pth          # a released PYSKL checkpoint, 10-clip test

The NTU configs' data (PYSKL's annotation pickles) is downloaded and prepared on first use
(docs/preparing_ntu.md; `SKELJAX_NO_DOWNLOAD=1` forbids it). `--mode train` resumes from the workdir's last
checkpoint when there is one; SIGTERM saves a checkpoint at the next step and exits 0 (docs/reliability.md).
Several processes (hosts) train together with `--distributed` (SLURM, TPU pods: detected from the environment) or
the explicit `--coordinator_address`, `--num_processes`, `--process_id` (docs/multihost.md). On CPU, XLA is much
faster with glibc's allocator tuned, so on a CPU-only install the command re-executes itself with those settings
before importing JAX (`skeljax.cpu_malloc`; values already set are kept, `SKELJAX_NO_MALLOC_ENV=1` turns it off).

User errors (bad data, paths, configs, checkpoints, out of memory) end with a line `error: <file or field>: <problem>`
on stderr and exit status 1, without a traceback (`--verbose` or `SKELJAX_VERBOSE=1` prints it above the line); a
mistyped `--config.` override exits with status 2. A config file that cannot be loaded
(missing, a syntax error, an exception in `get_config`, an unknown variant) ends in one line naming the file and
its line, e.g. `error: configs/x.py:12 in get_config: KeyError: 'foo'`, without a traceback.

This is the one command line on absl rather than argparse (docs/architecture.md, "Command lines"): its contract,
`--config path.py:variant` with `--config.field=value` overrides checked against a locked config, is
ml_collections' config_flags, which lives on absl flags. `skeljax-train` is the same command (`run`).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from absl import app, flags, logging
from ml_collections import config_flags

from skeljax import cli, cpu_malloc

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, optionally `path.py:variant`.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
_MODE = flags.DEFINE_enum(
    "mode",
    "train",
    ["train", "eval", "test"],
    "train (then test), eval (validation split, 1 clip) or test (test split, test clips).",
)
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed",
    False,
    "Call jax.distributed.initialize() with the cluster "
    "detected from the environment (SLURM, Cloud TPU, Kubernetes, JAX_COORDINATOR_*).",
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address",
    None,
    "host:port of process 0's coordination service (implies --distributed); with --num_processes and --process_id.",
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (hosts) in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0 .. num_processes - 1.")
_VERBOSE = flags.DEFINE_bool(
    "verbose",
    False,
    f"Print the traceback above a user error's `error:` line (also with {cli.VERBOSE_ENV}=1 in the environment).",
)
flags.mark_flags_as_required(["config", "workdir"])


def _deterministic_xla() -> None:
    """Deterministic GPU kernels; must happen before JAX initialises its backend (CPU is deterministic)."""
    xla = os.environ.get("XLA_FLAGS", "")
    if "--xla_gpu_deterministic_ops" not in xla:
        os.environ["XLA_FLAGS"] = (xla + " --xla_gpu_deterministic_ops=true").strip()


def _init_distributed() -> None:
    """jax.distributed.initialize before any other JAX call, from the flags or the environment."""
    explicit = {
        "coordinator_address": _COORDINATOR.value,
        "num_processes": _NUM_PROCESSES.value,
        "process_id": _PROCESS_ID.value,
    }
    if not _DISTRIBUTED.value and all(v is None for v in explicit.values()):
        return
    import jax

    jax.distributed.initialize(**{k: v for k, v in explicit.items() if v is not None})


def _config_arg(argv: list[str]) -> str | None:
    """The config file named by --config (the last one, as absl does), without its `:variant`."""
    path = None
    for i, arg in enumerate(argv[1:], 1):
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        elif arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
    return None if path is None else path.split(":", 1)[0]


def config_error(exc: BaseException, path: str | None) -> str | None:
    """`path:line[ in function]: Type: message` for an exception raised by the config file's own code, else None.

    config_flags loads the config while absl parses the flags and re-raises TypeError/ValueError as other types
    (absl's IllegalFlagValueError), so the original exception is found down the __cause__/__context__ chain.
    """
    if not path:
        return None
    target, seen = os.path.realpath(path), set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, SyntaxError) and exc.filename and os.path.realpath(exc.filename) == target:
            return f"{path}:{exc.lineno}: {type(exc).__name__}: {exc.msg}"
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.realpath(f.filename) == target]
        if frames:
            message = " ".join(str(exc).split())
            return f"{path}:{frames[-1].lineno} in {frames[-1].name}: {type(exc).__name__}: {message}"
        exc = exc.__cause__ or exc.__context__
    return None


def _unloadable_config(exc: OSError) -> str:
    """One line for a config that config_flags could not load (its error surfaces on first use)."""
    path = config_flags.get_config_filename(flags.FLAGS["config"])
    line = config_error(exc, path)
    if line:
        return line
    if not os.path.isfile(path):
        return f"--config: {path}: no such config file"
    return f"--config: {path}: " + " ".join(str(exc.__cause__ or exc).split())


def _parse_flags(argv: list[str]) -> list[str]:
    """absl parsing, with one error line for a config file that fails to load, a bad flag, or a --config.field
    that does not exist (with a suggestion)."""
    try:
        return flags.FLAGS(argv)
    except Exception as e:  # only the errors named below are user errors; anything else propagates
        line = config_error(e, _config_arg(argv))  # raised by the config file's own code
        if line is not None:
            sys.exit(cli.error(line))
        if isinstance(e, flags.Error):  # what absl's own parser prints for a bad or missing flag value
            sys.exit(cli.error(f"{e}\nPass --helpshort or --helpfull to see help on flags."))
        if isinstance(e, (AttributeError, KeyError)):  # ml_collections: unknown field in a --config.x override
            sys.exit(cli.error(_unknown_field(e, argv), status=2))
        raise


def _unknown_field(e: Exception, argv: list[str]) -> str:
    """`--config.x.y: the config has no field 'y'. Did you mean ...` from ml_collections' nested error."""
    inner: object = e
    while isinstance(inner, BaseException) and inner.args:
        inner = inner.args[0]  # AttributeError(KeyError("'name'\nDid you mean ..."))
    first, _, hint = str(inner).partition("\n")
    name = first.strip("'\" ")
    used = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.") and name in a.split("=")[0]]
    return f"{', '.join(used) or '--config override'}: the config has no field {name!r}. {hint}".strip()


def out_of_memory_hint(config, message: str) -> str:
    """One line for an XLA RESOURCE_EXHAUSTED error: what ran out, and which config fields lower the need."""
    import jax

    first = next((ln.strip() for ln in message.splitlines() if "RESOURCE_EXHAUSTED" in ln), message.strip())
    devices = jax.device_count()
    group = config.model.get("bn_group") or None
    hint = (
        f"config.batch_size={config.batch_size} over {devices} {jax.default_backend()} device(s) does not fit; "
        "lower --config.batch_size"
    )
    if group:
        hint += f" (a multiple of config.model.bn_group={group}; lower that too if needed)"
    hint += ", or use more devices (config.optimizer.lr < 0 scales the learning rate with the batch, the linear rule)."
    return f"out of memory: {first[:300]} -- {hint}"


def _user_error(exc: BaseException, message: str) -> int:
    """The `error:` line of a user error (the message names the file or field and what to do); its traceback only
    with --verbose or $SKELJAX_VERBOSE=1, where a developer wants to see where it came from."""
    if _VERBOSE.value or cli.verbose_env():
        traceback.print_exception(exc)
    return cli.error(message)


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    try:
        deterministic = config.deterministic  # a config file that failed to load raises on first use
    except OSError as e:
        sys.exit(cli.error(_unloadable_config(e)))
    logging.set_verbosity(logging.WARNING)  # orbax/tfds log every file operation at INFO
    if deterministic:
        _deterministic_xla()
    _init_distributed()
    from skeljax import compilation_cache, train  # after the XLA flags are set
    from skeljax.config import run_config

    try:
        compilation_cache.setup(config.compilation_cache_dir)  # before anything is compiled
        run = run_config.resolve(config)
        mode = {"train": train.train_and_evaluate, "eval": train.evaluate, "test": train.test}[_MODE.value]
        result = mode(run, _WORKDIR.value)
    except (OSError, ValueError) as e:  # user errors: data, paths, configs, checkpoints (all name the culprit)
        sys.exit(_user_error(e, str(e)))
    except Exception as e:  # only out-of-memory is translated; everything else propagates
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        sys.exit(_user_error(e, out_of_memory_hint(config, str(e))))
    import jax

    if jax.process_index() == 0:
        print(json.dumps(result, indent=1, default=float), flush=True)


def _own_command() -> list[str] | None:
    """The command line of this process when it is the training command itself (`python [opts] -m skeljax.main` or
    `skeljax-train`), else None: another program calling `run()` is not re-executed."""
    argv = sys.orig_argv
    as_module = any(a == "-m" and b == "skeljax.main" for a, b in zip(argv, argv[1:]))
    if as_module or os.path.basename(sys.argv[0]) == "skeljax-train":
        return [sys.executable, *argv[1:]]
    return None


def run() -> None:
    """The `skeljax-train` console command: absl parses the flags (loading the config), then `main` runs.

    On a CPU-only install it first re-executes itself with glibc's malloc tuned for XLA (`skeljax.cpu_malloc`; the
    same command line, before JAX is imported): a faster training step at no cost to the user's settings."""
    command = _own_command()
    if command:
        cpu_malloc.reexec_with_malloc_env(command)
    for holder in (_CONFIG, _WORKDIR, _MODE, _DISTRIBUTED, _COORDINATOR, _NUM_PROCESSES, _PROCESS_ID, _VERBOSE):
        # --help lists the main module's flags; for a console script that module is not skeljax.main
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[holder.name])
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
