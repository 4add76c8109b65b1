"""scripts/check_environment.py (the preflight of scripts/accelerator_check.sh) and the package list of
scripts/offline_wheels.sh: missing packages and a CPU-only JAX are reported as problems, versions outside the
tested range only as notes, and every package the offline bundle names resolves to a version here."""

import importlib.metadata
import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "scripts", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _load():
    return _script("check_environment")


def test_requirements_come_from_setup_cfg_with_the_named_test_extras():
    check = _load()
    by_name = {req.name: req for req in check.setup_requirements(("mmaction2",))}
    assert {"jax", "flax", "grain", "tensorflow-datasets", "ml_collections", "mmaction2"} <= set(by_name)
    assert by_name["mmaction2"].specifier.contains("1.2.0")
    assert not by_name["jax"].specifier.contains("0.12.0")  # the upper bound of the tested range
    assert "torch" not in by_name  # only the extras asked for


def test_a_missing_package_is_a_problem_and_an_untested_version_a_note(capsys):
    check = _load()
    problems = check.check_versions(
        [Requirement("numpy"), Requirement("numpy<1.0"), Requirement("skeljax-no-such-package>=1")]
    )
    out = capsys.readouterr().out
    assert problems == ["skeljax-no-such-package is not installed"]
    assert "MISSING" in out and "outside the tested range <1.0" in out


def test_an_import_that_fails_is_reported_with_its_error():
    check = _load()
    problems = check.check_imports(("json", "skeljax_no_such_module"))
    assert len(problems) == 1 and "skeljax_no_such_module" in problems[0] and "ModuleNotFoundError" in problems[0]


def test_this_environment_passes_and_a_required_gpu_fails_on_cpu(capsys):
    check = _load()
    assert check.main([]) == 0
    assert "environment: ok" in capsys.readouterr().out
    import jax

    if jax.default_backend() != "cpu":
        pytest.skip("the GPU requirement is met here")
    assert check.main(["--require-gpu"]) == 1
    assert "JAX computes on cpu, not a GPU" in capsys.readouterr().out


def test_every_package_of_the_offline_bundle_is_installed_here():
    """offline_wheels.sh pins each name to the version installed where it runs; a misspelt or dropped name fails."""
    with open(os.path.join(REPO, "scripts", "offline_wheels.sh")) as f:
        text = f.read()
    body = re.search(r"^packages=\((.*?)^\)", text, re.S | re.M).group(1)
    names = [word for line in body.splitlines() for word in line.split("#")[0].split()]
    assert {"grain", "tensorflow-datasets", "ml_collections", "mmaction2", "portpicker"} <= set(names)
    for name in names:
        importlib.metadata.version(name)  # raises PackageNotFoundError


# A stand-in for the GPU host's python: it runs each script until its argparse has read the command line, then exits
# 0 (a flag a script does not know exits 2, as it would there). The preflight fails when PREFLIGHT_FAILS is set.
_PARSE_ONLY = """
import argparse, os, runpy, sys
script = sys.argv[1]
if script.endswith("check_environment.py") and os.environ.get("PREFLIGHT_FAILS"):
    sys.exit(1)
parse_args = argparse.ArgumentParser.parse_args
def parse_and_stop(self, args=None, namespace=None):
    parse_args(self, args, namespace)
    print("parsed", script, args if args is not None else sys.argv[1:])
    sys.exit(0)
argparse.ArgumentParser.parse_args = parse_and_stop
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def _run_accelerator_check(tmp_path, **env):
    shim = tmp_path / "python"
    shim.write_text(f'#!/usr/bin/env bash\nexec {sys.executable} -c {shlex.quote(_PARSE_ONLY)} "$@"\n')
    shim.chmod(0o755)
    out = tmp_path / "out"
    # The malloc settings benchmark.py would otherwise re-execute itself to get (without the shim).
    run_env = {**os.environ, **_script("benchmark").MALLOC_ENV, "PYTHON": str(shim), "OUT": str(out), **env}
    script = os.path.join(REPO, "scripts", "accelerator_check.sh")
    proc = subprocess.run(["bash", script], env=run_env, capture_output=True, text=True, timeout=300)
    return proc, out


def test_the_accelerator_check_passes_flags_its_scripts_accept(tmp_path):
    """The one-shot GPU script must not lose a device loan to a renamed flag: each step's command line is parsed by
    the script it names."""
    proc, out = _run_accelerator_check(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for step in ("step_and_inference", "pipeline", "e2e"):
        log = (out / f"{step}.log").read_text()
        assert log.startswith("parsed scripts/"), log
    assert proc.stdout.count("exit 0 after") == 3


def test_the_accelerator_check_stops_when_the_environment_check_fails(tmp_path):
    proc, out = _run_accelerator_check(tmp_path, PREFLIGHT_FAILS="1")
    assert proc.returncode == 1
    assert not any(out.glob("*.log"))  # no step started
