"""`python -m skeljax.main` when XLA runs out of memory (docs/training.md, README "Training"): the run ends with one
line `error: out of memory: <XLA's line> -- <the batch and the fields to lower>` on stderr and exit status 1, without
a traceback unless --verbose / SKELJAX_VERBOSE=1 asks for one.

A real out-of-memory needs more memory than a test machine may use, so the trainer is replaced by a function that
raises what XLA raises there (jax.errors.JaxRuntimeError with a RESOURCE_EXHAUSTED message) from the place a
compiled step would; everything around it (flag parsing, config loading, run_config.resolve, the handler, the
exit) is the real command."""

import os
import re
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XLA_LINE = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 34359738368 bytes."

CONFIG = textwrap.dedent("""
    from skeljax.config import schema

    def get_config(arg=None):
        c = schema.base_config()
        c.data.dataset = "skeljax_synthetic/3d"
        c.model.num_classes = 14
        c.batch_size = 128
        return c
""")

# The trainer as a stand-in that fails the way XLA does when a buffer cannot be allocated, then the real command.
LAUNCH = textwrap.dedent("""
    import sys

    import jax

    import skeljax.main
    from skeljax import train

    def out_of_memory(run, workdir):
        raise jax.errors.JaxRuntimeError({xla_line!r} + "\\n(the allocator's report would follow)")

    train.train_and_evaluate = out_of_memory
    sys.argv = ["skeljax-train", "--config", {config!r}, "--workdir", {workdir!r}]
    skeljax.main.run()
""")


def run_out_of_memory(tmp_path, **env):
    config = tmp_path / "cfg.py"
    config.write_text(CONFIG)
    code = LAUNCH.format(xla_line=XLA_LINE, config=str(config), workdir=str(tmp_path / "run"))
    inherited = {k: v for k, v in os.environ.items() if k != "SKELJAX_VERBOSE"}  # quiet unless a test asks
    run_env = {**inherited, "JAX_PLATFORMS": "cpu", **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=run_env, timeout=300, check=False
    )


def test_out_of_memory_ends_in_one_error_line_and_status_1(tmp_path):
    proc = run_out_of_memory(tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert errors == [lines[-1]], proc.stderr[-3000:]
    line = lines[-1]
    assert line.startswith(f"error: out of memory: {XLA_LINE} -- "), line
    hint = re.search(
        r"config\.batch_size=128 over (\d+) cpu device\(s\) does not fit; lower --config\.batch_size", line
    )
    assert hint and int(hint.group(1)) >= 1, line
    assert "a multiple of config.model.bn_group=16" in line, line
    assert "Traceback" not in proc.stderr
    assert "{" not in proc.stdout  # no results record printed


def test_verbose_puts_the_traceback_above_the_same_line(tmp_path):
    proc = run_out_of_memory(tmp_path, SKELJAX_VERBOSE="1")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: out of memory: {XLA_LINE} -- ")
    assert "Traceback (most recent call last)" in proc.stderr and "in out_of_memory" in proc.stderr
    assert proc.stderr.index("Traceback") < proc.stderr.index("error: out of memory")
